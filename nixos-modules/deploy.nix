# services.paddock.deploy: keeps the switchboard at the newest valid commit of the deployments
# repo, applies this server's working-tree edits, activates hosts/<host>/ (docs/deployments.md).
# It reloads live state in the running services; it restarts nothing.
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.paddock.deploy;
  common = import ./common.nix { inherit lib pkgs; };
  unit = "paddock-deploy";
in
{
  options.services.paddock.deploy = {
    enable = lib.mkEnableOption "the Paddock deploy daemon";
    package = common.packageOption self "paddock-deploy";
    tokenFile = lib.mkOption {
      type = lib.types.str;
      description = "File holding an admin API token of the switchboard (an agenix secret).";
    };
    webhookSecretFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "File holding the push webhook's shared secret; required with `settings.listen`.";
    };
    sshKeyFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "Deploy key (read-only) for an ssh:// repo URL.";
    };
    sshKnownHosts = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "git.example.org ssh-ed25519 AAAA…" ];
      description = ''
        known_hosts lines of the git server. Empty: the first key seen is trusted and kept in
        the state directory (trust on first use).
      '';
    };
    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open the port of `settings.listen` (the push webhook) in the firewall.";
    };
    activation = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Let `[activation]` commands (`nixos-rebuild switch`) change this machine: the unit
        then runs as root without the filesystem protections.
      '';
    };
    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType = common.toml.type;
        options.switchboard_url = lib.mkOption {
          type = lib.types.str;
          description = "The switchboard the state is applied to.";
        };
        options.repo = lib.mkOption {
          type = lib.types.str;
          description = "The deployments repository: a local path or a URL fetched with gix.";
        };
      };
      description = ''
        deploy.toml, as in `crates/deploy/deploy.example.toml`; `token_file`,
        `webhook_secret_file` and `state_dir` are set by the module. Checked with
        `paddock-deploy check-config --no-secrets` at build time.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.${unit} = {
      description = "Paddock deploy daemon";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" "paddock-switchboard.service" ];
      wants = [ "network-online.target" ];
      # With activation the daemon runs `nixos-rebuild switch` itself: a switch must not
      # restart (kill) the unit it runs in. A new paddock-deploy takes over at the next
      # restart of the unit or boot (as nixos-upgrade.service does).
      restartIfChanged = !cfg.activation;
      path = [ pkgs.openssh pkgs.git ]
        ++ lib.optionals cfg.activation [ config.system.build.nixos-rebuild config.nix.package pkgs.systemd ];
      environment = lib.optionalAttrs (cfg.sshKeyFile != null) {
        GIT_SSH_COMMAND = (import ./settings.nix).deploySshCommand {
          knownHostsFile = if cfg.sshKnownHosts != [ ]
            then pkgs.writeText "paddock-deploy-known-hosts" (lib.concatLines cfg.sshKnownHosts)
            else null;
        };
      };
      serviceConfig = (if cfg.activation then {
        # Host activation rebuilds the system: root, no filesystem protections.
        Restart = "on-failure";
        RestartSec = 5;
        StateDirectory = unit;
      } else common.hardening // {
        StateDirectory = unit;
      }) // {
        ExecStart = "${cfg.package}/bin/paddock-deploy serve --config ${common.checkedConfig {
          name = unit;
          package = cfg.package;
          binary = "paddock-deploy";
          settings = (import ./settings.nix).deploy {
            inherit (cfg) settings;
            webhook = cfg.webhookSecretFile != null;
          };
          extraArgs = [ "--no-secrets" ];
        }}";
        LoadCredential = common.credentials {
          token = cfg.tokenFile;
          webhook = cfg.webhookSecretFile;
          ssh-key = cfg.sshKeyFile;
        };
      };
    };
    networking.firewall.allowedTCPPorts = lib.mkIf (cfg.openFirewall && cfg.settings ? listen)
      [ (common.portOf cfg.settings.listen) ];
  };
}
