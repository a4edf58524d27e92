# services.paddock.puppet: inside a job's host (a VM image of the qemu driver): `paddock-puppet`
# on the PATH and the guest puppet, `paddock-puppet guest`, as a service (docs/puppet.md, "The
# guest puppet"). At boot it fetches the job's data over the VM's puppet port, writes
# /run/paddock (job-id; parameters/, secret ones 0600; authorized_keys and
# authorized_keys.d/<jobUser>), reports the job ready once `readyTarget` is active, and relays
# `paddock-puppet ready|exit|terminate` run anywhere in the guest to the port it holds.
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.paddock.puppet;
  common = import ./common.nix { inherit lib pkgs; };
  systemctl = "${config.systemd.package}/bin/systemctl";
  args =
    lib.optionals (cfg.jobUser != null) [ "--ssh-user" cfg.jobUser ]
    ++ (
      if !cfg.readyAtBoot then [ "--no-ready" ]
      else lib.optionals (cfg.readyTarget != null) [
        "--ready-command"
        "${systemctl} is-active --quiet ${cfg.readyTarget}"
      ]
    );
in
{
  options.services.paddock.puppet = {
    enable = lib.mkEnableOption "paddock-puppet and the guest puppet service in this (job) host";
    package = common.packageOption self "paddock-puppet";
    readyAtBoot = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Whether the guest puppet reports the job ready (when `readyTarget` is active). When
        false, something in the image runs `paddock-puppet ready` itself (through the guest
        puppet's relay socket).
      '';
    };
    readyTarget = lib.mkOption {
      # A unit name, so that it needs no quoting inside ExecStart.
      type = lib.types.nullOr (lib.types.strMatching "[A-Za-z0-9@:._-]+");
      default = "multi-user.target";
      example = "my-workload.service";
      description = ''
        The unit whose activity makes the job ready: the guest puppet runs
        `systemctl is-active --quiet <unit>` every second and reports `ready` once it
        succeeds. `null`: ready as soon as the job's data is written.
      '';
    };
    jobUser = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = "paddock";
      description = ''
        The job user: a normal user whose SSH logins use the job's SSH keys (written to
        /run/paddock/authorized_keys.d/<user>, which sshd reads). `null`: no job user, the
        keys are only in /run/paddock/authorized_keys.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];

    users.users = lib.mkIf (cfg.jobUser != null) {
      ${cfg.jobUser} = {
        isNormalUser = true;
        description = "Paddock job user (SSH keys from the job)";
      };
    };
    # Added to the defaults (the option's definitions are merged).
    services.openssh.authorizedKeysFiles = lib.mkIf (cfg.jobUser != null) [
      "/run/paddock/authorized_keys.d/%u"
    ];

    systemd.services.paddock-puppet = {
      description = "Paddock guest puppet: the job's data, readiness and reports";
      wantedBy = [ "multi-user.target" ];
      # Type=notify: the unit is started once the job's data is written, so a workload unit
      # with `after`/`wants` paddock-puppet.service finds /run/paddock complete (and the
      # default target waits for it). sshd needs no ordering: it reads the keys at each login.
      serviceConfig = {
        Type = "notify";
        ExecStart = lib.escapeShellArgs ([ "${cfg.package}/bin/paddock-puppet" "guest" ] ++ args);
        # Root: the port is root's, and the parameter files are written as root (0600 for
        # the secret ones). /run/paddock is its runtime directory (kept readable: 0755).
        RuntimeDirectory = "paddock";
        RuntimeDirectoryMode = "0755";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        Restart = "on-failure";
        RestartSec = 2;
      };
    };
  };
}
