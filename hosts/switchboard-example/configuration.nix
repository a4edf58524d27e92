# The central server: switchboard on PostgreSQL (peer authentication), the image store, and
# the deploy daemon applying the deployments repo. Service settings are the TOML files next to
# this one (.ci/run checks them with each service's check-config).
{ config, lib, pkgs, ... }:
{
  networking.hostName = "switchboard-example";
  system.stateVersion = "26.05";

  # An example host: no real disks.
  boot.loader.grub.enable = false;
  fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };

  services.openssh.enable = true;

  services.postgresql = {
    enable = true;
    ensureDatabases = [ "paddock-switchboard" ];
    ensureUsers = [{ name = "paddock-switchboard"; ensureDBOwnership = true; }];
  };

  services.paddock.switchboard = {
    enable = true;
    settings = builtins.fromTOML (builtins.readFile ./switchboard.toml);
    openFirewall = true;
    # A PostgreSQL server elsewhere, with a password: drop database_url from switchboard.toml
    # and give the URL as a secret instead.
    # databaseUrlFile = "/run/agenix/switchboard-db";
  };

  services.paddock.imagestore = {
    enable = true;
    settings = builtins.fromTOML (builtins.readFile ./imagestore.toml);
    openFirewall = true;
  };

  services.paddock.deploy = {
    enable = true;
    settings = builtins.fromTOML (builtins.readFile ./deploy.toml);
    tokenFile = "/run/agenix/deploy-token";
    webhookSecretFile = "/run/agenix/deploy-webhook";
    sshKeyFile = "/run/agenix/deploy-key";
    # The push webhook (deploy.toml's listen).
    openFirewall = true;
  };
}
