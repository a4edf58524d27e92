# A site server: two supervisors, the audit agent, and the deploy daemon watching the
# operators' working tree of the deployments repo, activating hosts/site-example/ with
# nixos-rebuild. Service settings are the TOML files next to this one. Secrets: agenix's module
# (flake.nix imports it for this host) decrypts each of secrets/<name>.age with this host's SSH
# host key (age.identityPaths defaults to services.openssh.hostKeys) to /run/agenix/<name>,
# root-only (mode 0400, owner root), at activation; the units get them through LoadCredential,
# which systemd reads as root before dropping privileges.
{ config, lib, pkgs, ... }:
let
  toml = file: builtins.fromTOML (builtins.readFile file);
  secret = name: config.age.secrets.${name}.path;
  supervisor = name: {
    settings = toml ./supervisor-${name}.toml;
    tokenFile = secret "supervisor-${name}";
  };
  audit = toml ./audit.toml;
in
{
  # The recipients of each file are in secrets/secrets.nix (this host: site-example).
  age.secrets = lib.genAttrs [
    "supervisor-lab1-local-1"
    "supervisor-lab1-local-2"
    "audit-token"
    "deploy-token"
    "deploy-key"
  ] (name: { file = ../../secrets/${name}.age; });

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
    tokenFile = secret "audit-token";
  };

  services.paddock.deploy = {
    enable = true;
    activation = true;
    settings = toml ./deploy.toml;
    tokenFile = secret "deploy-token";
    sshKeyFile = secret "deploy-key";
  };
}
