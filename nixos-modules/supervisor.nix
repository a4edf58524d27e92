# services.paddock.supervisors.<name>: one paddock-supervisor per host and device under test
# (docs/supervisor.md). Each gets its own unit, state directory and token credential.
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.paddock.supervisors;
  common = import ./common.nix { inherit lib pkgs; };
  rendered = import ./settings.nix;
  unit = rendered.supervisorUnit;
  instance = { name, ... }: {
    options = {
      package = common.packageOption self "paddock-supervisor";
      tokenFile = lib.mkOption {
        type = lib.types.str;
        example = "/run/agenix/supervisor-lab1-gpu01";
        description = ''
          File holding this supervisor's token (an agenix secret). Passed to the unit with
          LoadCredential; `settings.token_file` points at the credential.
        '';
      };
      vms = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = ''
          The host driver starts QEMU VMs (`settings.driver.kind = "qemu"`, see
          docs/supervisor.md): give the unit /dev/kvm, /dev/net/tun, the network bridge and
          QEMU (and qemu-img) on its PATH.
        '';
      };
      settings = lib.mkOption {
        type = lib.types.submodule {
          freeformType = common.toml.type;
          options.switchboard_url = lib.mkOption {
            type = lib.types.str;
            description = "Base URL of the switchboard.";
          };
        };
        description = ''
          supervisor.toml, as in `crates/supervisor/supervisor.example.toml`; `token_file` and
          `work_dir` are set by the module. Checked with `paddock-supervisor check-config
          --no-secrets` at build time.
        '';
      };
    };
  };
in
{
  options.services.paddock.supervisors = lib.mkOption {
    type = lib.types.attrsOf (lib.types.submodule instance);
    default = { };
    description = "Supervisors of this site server, by name (the name in the deployments repo).";
  };

  config = lib.mkIf (cfg != { }) {
    systemd.services = lib.mapAttrs' (name: s: lib.nameValuePair (unit name) {
      description = "Paddock supervisor ${name}";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      path = lib.optionals s.vms [ pkgs.qemu_kvm pkgs.iproute2 ];
      serviceConfig = common.hardening // {
        ExecStart = "${s.package}/bin/paddock-supervisor run --config ${common.checkedConfig {
          name = unit name;
          package = s.package;
          binary = "paddock-supervisor";
          settings = rendered.supervisor name s.settings;
          extraArgs = [ "--no-secrets" ];
        }}";
        LoadCredential = common.credentials { token = s.tokenFile; };
        StateDirectory = unit name;
        # Jobs are process groups the supervisor stops as a whole.
        KillMode = "mixed";
        # A job's workload may need more than a service's usual syscalls.
        SystemCallFilter = [ "@system-service" ];
        MemoryDenyWriteExecute = false;
      } // lib.optionalAttrs s.vms {
        # QEMU: /dev/kvm and /dev/net/tun, the bridge's netlink.
        PrivateDevices = false;
        DeviceAllow = [ "/dev/kvm rw" "/dev/net/tun rw" ];
        SupplementaryGroups = [ "kvm" ];
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" "AF_NETLINK" ];
        AmbientCapabilities = [ "CAP_NET_ADMIN" ];
        CapabilityBoundingSet = [ "CAP_NET_ADMIN" ];
      };
    }) cfg;
  };
}
