# services.paddock.puppet: inside a job's host (a VM image): `paddock-puppet` on the PATH and,
# optionally, a unit that reports the host ready once it has booted (docs/puppet.md).
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.paddock.puppet;
  common = import ./common.nix { inherit lib pkgs; };
in
{
  options.services.paddock.puppet = {
    enable = lib.mkEnableOption "paddock-puppet in this (job) host";
    package = common.packageOption self "paddock-puppet";
    readyAtBoot = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Report the job ready when multi-user.target is reached.";
    };
  };

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];
    systemd.services.paddock-puppet-ready = lib.mkIf cfg.readyAtBoot {
      description = "Tell the supervisor this job's host is up";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${cfg.package}/bin/paddock-puppet ready";
        DynamicUser = true;
        NoNewPrivileges = true;
        ProtectSystem = "strict";
      };
    };
  };
}
