# A site server: two supervisors, the audit agent, and the deploy daemon watching the
# operators' working tree of the deployments repo, activating hosts/site-example/ with
# nixos-rebuild. Service settings are the TOML files next to this one.
{ config, lib, pkgs, ... }:
let
  toml = file: builtins.fromTOML (builtins.readFile file);
  supervisor = name: {
    settings = toml ./supervisor-${name}.toml;
    tokenFile = "/run/agenix/supervisor-${name}";
  };
  audit = toml ./audit.toml;
in
{
  networking.hostName = "site-example";
  system.stateVersion = "26.05";

  boot.loader.grub.enable = false;
  fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };

  services.openssh.enable = true;

  services.paddock.supervisors = {
    lab1-local-1 = supervisor "lab1-local-1";
    lab1-local-2 = supervisor "lab1-local-2";
  };

  services.paddock.audit = {
    enable = true;
    # The module sets output, baseline and token_file itself.
    settings = builtins.removeAttrs audit [ "output" "baseline" "token_file" ];
    baseline = ../../examples/baselines/site-server.yaml;
    tokenFile = "/run/agenix/audit-token";
  };

  services.paddock.deploy = {
    enable = true;
    activation = true;
    settings = toml ./deploy.toml;
    tokenFile = "/run/agenix/deploy-token";
    sshKeyFile = "/run/agenix/deploy-key";
  };
}
