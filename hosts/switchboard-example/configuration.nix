# The central server: switchboard on PostgreSQL (peer authentication), the image store, and
# the deploy daemon applying the deployments repo. Service settings are the TOML files next to
# this one (.ci/run checks them with each service's check-config). Secrets: agenix's module
# (flake.nix imports it for this host) decrypts each of secrets/<name>.age with this host's SSH
# host key to /run/agenix/<name>, root-only, at activation; the units get them through
# LoadCredential (read by systemd as root).
{ config, lib, pkgs, ... }:
let
  secret = name: config.age.secrets.${name}.path;
in
{
  # The recipients of each file are in secrets/secrets.nix (this host: switchboard-example).
  # With databaseUrlFile below, add "switchboard-db" here too.
  age.secrets = lib.genAttrs [ "deploy-token" "deploy-webhook" "deploy-key" ]
    (name: { file = ../../secrets/${name}.age; });

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
    # databaseUrlFile = secret "switchboard-db";
  };

  services.paddock.imagestore = {
    enable = true;
    settings = builtins.fromTOML (builtins.readFile ./imagestore.toml);
    openFirewall = true;
  };

  services.paddock.deploy = {
    enable = true;
    settings = builtins.fromTOML (builtins.readFile ./deploy.toml);
    tokenFile = secret "deploy-token";
    webhookSecretFile = secret "deploy-webhook";
    sshKeyFile = secret "deploy-key";
    # The push webhook (deploy.toml's listen).
    openFirewall = true;
  };
}
