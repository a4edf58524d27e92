# services.paddock.audit: the audit agent (docs/audit.md): `paddock-audit run` at boot and on a
# timer (collect, check the baseline, report to the switchboard), and optionally
# `paddock-audit serve` for the report page.
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.paddock.audit;
  common = import ./common.nix { inherit lib pkgs; };
  unit = "paddock-audit";
  rendered = import ./settings.nix;
  # A baseline in the store is checked with the rest at build time; one kept on the host (an
  # absolute path string) cannot be read in the build's sandbox: the file names it, unchecked,
  # and the unit reads it when it runs (a bad one: exit 2, the unit fails and says why).
  baselineAtBuild = cfg.baseline == null || rendered.auditBaselineAtBuild cfg.baseline;
  configFile = common.checkedConfig {
    name = unit;
    package = cfg.package;
    binary = "paddock-audit";
    settings = rendered.audit {
      inherit (cfg) settings;
      baseline = if baselineAtBuild then cfg.baseline else null;
      token = cfg.tokenFile != null;
    };
    unchecked = lib.optionalAttrs (!baselineAtBuild) { baseline = toString cfg.baseline; };
    extraArgs = [ "--no-secrets" ];
  };
in
{
  options.services.paddock.audit = {
    enable = lib.mkEnableOption "the Paddock audit agent";
    package = common.packageOption self "paddock-audit";
    baseline = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = lib.literalExpression "../../examples/baselines/site-server.yaml";
      description = ''
        A baseline checked after each collect. A Nix path (`./baseline.yaml`) is copied to the
        store and validated at build time with the rest of the configuration. An absolute path
        string (`"/etc/paddock/baseline.yaml"`, a file kept on the host) is read only when the
        unit runs, so it is not validated at build time: a bad one makes the run exit 2 (the
        unit fails and its log says why). Not under /home or /root (ProtectHome).
      '';
    };
    tokenFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "File holding a token with manage_supervisors, for `settings.report_to`.";
    };
    extraPackages = lib.mkOption {
      type = lib.types.listOf lib.types.package;
      default = [ ];
      example = lib.literalExpression "[ config.hardware.nvidia.package.bin ]";
      description = "More tools on the collectors' PATH (nvidia-smi's package on GPU hosts).";
    };
    interval = lib.mkOption {
      type = lib.types.str;
      default = "6h";
      description = "How often the audit runs again after boot (a systemd time span).";
    };
    serve = {
      enable = lib.mkEnableOption "the report page (`paddock-audit serve`)";
      listen = lib.mkOption {
        type = lib.types.str;
        default = "127.0.0.1:8099";
        description = "Address of the report page.";
      };
      openFirewall = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Open the report page's port.";
      };
    };
    settings = lib.mkOption {
      type = lib.types.submodule { freeformType = common.toml.type; };
      default = { };
      description = ''
        audit.toml, as in `crates/audit/audit.example.toml` (`collectors`, `timeout_s`,
        `report_to`, `supervisor`); `output`, `baseline` and `token_file` are set by the
        module. Checked with `paddock-audit check-config --no-secrets` at build time.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.${unit} = {
      description = "Paddock audit: hardware inventory and baseline check";
      # Started by its timer, not wanted by multi-user.target: the boot never waits for it.
      # Local work: never waits for the network (a failed check or an unreachable switchboard
      # is logged; the report is written first).
      path = [ pkgs.util-linux pkgs.pciutils pkgs.dmidecode pkgs.smartmontools pkgs.nvme-cli pkgs.ipmitool pkgs.iproute2 pkgs.systemd ]
        ++ cfg.extraPackages;
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${cfg.package}/bin/paddock-audit run --config ${configFile}";
        SuccessExitStatus = [ 1 ];
        StateDirectory = unit;
        LoadCredential = common.credentials { token = cfg.tokenFile; };
        # Raw device reads (SMBIOS, SMART, NVMe, IPMI) need root and the devices; the rest of
        # the system stays read-only.
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        NoNewPrivileges = true;
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" "AF_NETLINK" ];
        CapabilityBoundingSet = [ "CAP_SYS_RAWIO" "CAP_SYS_ADMIN" "CAP_DAC_READ_SEARCH" ];
      };
    };
    systemd.timers.${unit} = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "5s";
        OnUnitActiveSec = cfg.interval;
        Unit = "${unit}.service";
      };
    };
    systemd.services."${unit}-serve" = lib.mkIf cfg.serve.enable {
      description = "Paddock audit report page";
      wantedBy = [ "multi-user.target" ];
      serviceConfig = common.hardening // {
        ExecStart = "${cfg.package}/bin/paddock-audit serve --report /var/lib/${unit}/report.json --listen ${cfg.serve.listen}";
        # Reads the report the audit unit writes (the same state directory, made if absent).
        DynamicUser = false;
        StateDirectory = unit;
        AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
        CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
      };
    };
    networking.firewall.allowedTCPPorts = lib.mkIf (cfg.serve.enable && cfg.serve.openFirewall)
      [ (common.portOf cfg.serve.listen) ];
  };
}
