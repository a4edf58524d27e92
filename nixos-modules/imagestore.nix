# services.paddock.imagestore: the content-addressed image store server (docs/images.md).
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.paddock.imagestore;
  common = import ./common.nix { inherit lib pkgs; };
  port = common.portOf cfg.settings.listen;
  root = cfg.settings.root;
  # The root's StateDirectory under /var/lib/, or null: elsewhere (nixos-modules/settings.nix).
  stateDirectory = (import ./settings.nix).imagestoreStateDirectory root;
  user = "paddock-imagestore";
in
{
  options.services.paddock.imagestore = {
    enable = lib.mkEnableOption "the Paddock image store server";
    package = common.packageOption self "paddock-imagestore";
    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType = common.toml.type;
        options.root = lib.mkOption {
          # Absolute: a relative root would be taken from the rendered file's directory, in
          # the read-only store.
          type = lib.types.strMatching "/.*";
          default = "/var/lib/paddock-imagestore";
          example = "/srv/paddock/store";
          description = ''
            The store's root directory (images/, blobs/, all.txt, uploads staged in tmp/, push
            tokens). Under /var/lib/ it is the unit's StateDirectory: systemd creates it and
            hands it to the unit's dynamic user at each start. Anywhere else the unit runs as
            the system user `paddock-imagestore` instead of a dynamic one, the directory is
            created (mode 0750) and owned by it through systemd-tmpfiles, and the unit may
            write it (ReadWritePaths). Content already there must be that user's
            (`chown -R paddock-imagestore: ROOT` once). Not under /home, /root or /run/user
            (ProtectHome hides them from the unit).
          '';
        };
        options.listen = lib.mkOption {
          type = lib.types.str;
          default = "127.0.0.1:8081";
          description = "Address the store listens on.";
        };
      };
      default = { };
      description = ''
        imagestore.toml, as in `crates/imagestore-server/imagestore.example.toml`; checked with
        `paddock-imagestore check-config` at build time.
      '';
    };
    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open the store's port in the firewall (mirrors and supervisors read it).";
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.paddock-imagestore = {
      description = "Paddock image store";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      serviceConfig = common.hardening // {
        ExecStart = "${cfg.package}/bin/paddock-imagestore serve --config ${common.checkedConfig {
          name = "imagestore";
          package = cfg.package;
          binary = "paddock-imagestore";
          settings = cfg.settings;
        }}";
      } // (if stateDirectory != null then {
        # systemd creates /var/lib/<dir> and chowns it to the dynamic user at each start
        # (the UID of a dynamic user may change between starts).
        StateDirectory = stateDirectory;
      } else {
        # A root elsewhere: a fixed user that owns it (a dynamic user's UID cannot be given
        # the directory beforehand), and the path opened under ProtectSystem = "strict".
        DynamicUser = false;
        User = user;
        Group = user;
        ReadWritePaths = [ root ];
      });
    };
    users.users.${user} = lib.mkIf (stateDirectory == null) {
      isSystemUser = true;
      group = user;
    };
    users.groups.${user} = lib.mkIf (stateDirectory == null) { };
    # The root made, with this mode and owner, by systemd-tmpfiles (tmpfiles.d "d") at boot and
    # at each switch; only the directory itself, not what is already inside it.
    systemd.tmpfiles.settings."10-paddock-imagestore" = lib.mkIf (stateDirectory == null) {
      ${root}.d = {
        mode = "0750";
        inherit user;
        group = user;
      };
    };
    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ port ];
  };
}
