# services.paddock.imagestore: the content-addressed image store server (docs/images.md).
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.paddock.imagestore;
  common = import ./common.nix { inherit lib pkgs; };
  port = common.portOf cfg.settings.listen;
in
{
  options.services.paddock.imagestore = {
    enable = lib.mkEnableOption "the Paddock image store server";
    package = common.packageOption self "paddock-imagestore";
    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType = common.toml.type;
        options.root = lib.mkOption {
          type = lib.types.str;
          default = "/var/lib/paddock-imagestore";
          description = "The store's root directory (images/, blobs/, all.txt).";
        };
        options.listen = lib.mkOption {
          type = lib.types.str;
          default = "127.0.0.1:8081";
          description = "Address the store listens on.";
        };
      };
      default = { };
      description = ''
        imagestore.toml, as in `crates/imagestore/imagestore.example.toml`; checked with
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
        StateDirectory = "paddock-imagestore";
        # A root outside the state directory must exist and be writable by the unit.
        ReadWritePaths = lib.optional (cfg.settings.root != "/var/lib/paddock-imagestore") cfg.settings.root;
      };
    };
    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ port ];
  };
}
