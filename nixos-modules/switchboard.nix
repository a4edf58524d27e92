# services.paddock.switchboard: the central coordinator (docs/switchboard.md).
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.paddock.switchboard;
  common = import ./common.nix { inherit lib pkgs; };
  port = common.portOf cfg.settings.listen;
in
{
  options.services.paddock.switchboard = {
    enable = lib.mkEnableOption "the Paddock switchboard";
    package = common.packageOption self "paddock-switchboard";
    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType = common.toml.type;
        options.listen = lib.mkOption {
          type = lib.types.str;
          default = "127.0.0.1:8080";
          description = "Address the API listens on.";
        };
        options.data_dir = lib.mkOption {
          type = lib.types.str;
          default = "/var/lib/paddock-switchboard";
          description = "SQLite database directory (unused with `database_url`).";
        };
      };
      default = { };
      description = ''
        switchboard.toml, field by field as in `crates/switchboard/switchboard.example.toml`;
        checked with `paddock-switchboard check-config` at build time.
      '';
    };
    databaseUrlFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/run/agenix/switchboard-db";
      description = ''
        File holding the database URL when it carries a password (a PostgreSQL server
        elsewhere; an agenix secret). Passed to the unit with LoadCredential;
        `settings.database_url_file` points at the credential. Not with
        `settings.database_url`.
      '';
    };
    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open the API port in the firewall.";
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.paddock-switchboard = {
      description = "Paddock switchboard";
      wantedBy = [ "multi-user.target" ];
      # postgresql-setup.service (where it exists) creates ensureDatabases/ensureUsers.
      after = [ "network-online.target" "postgresql.service" "postgresql-setup.service" ];
      wants = [ "network-online.target" ];
      serviceConfig = common.hardening // {
        ExecStart = "${cfg.package}/bin/paddock-switchboard serve --config ${common.checkedConfig {
          name = "switchboard";
          package = cfg.package;
          binary = "paddock-switchboard";
          settings = (import ./settings.nix).switchboard {
            inherit (cfg) settings;
            databaseUrl = cfg.databaseUrlFile != null;
          };
          extraArgs = [ "--no-secrets" ];
        }}";
        LoadCredential = common.credentials { database-url = cfg.databaseUrlFile; };
        StateDirectory = "paddock-switchboard";
        # A unix socket for PostgreSQL peer authentication: a fixed user, not a dynamic one.
        DynamicUser = false;
        User = "paddock-switchboard";
        Group = "paddock-switchboard";
      };
    };
    users.users.paddock-switchboard = {
      isSystemUser = true;
      group = "paddock-switchboard";
    };
    users.groups.paddock-switchboard = { };
    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ port ];
  };
}
