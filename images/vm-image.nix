# The VM image of a supervisor's QEMU host (`nix build .#vm-image`: a qcow2): NixOS with the
# guest puppet (services.paddock.puppet: `paddock-puppet guest`), which fetches the job's data
# over the VM's puppet port into /run/paddock and reports the job ready once multi-user.target
# is active (docs/puppet.md); the job's SSH keys log in as the job user `paddock`.
{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [ "${modulesPath}/profiles/qemu-guest.nix" ];

  system.stateVersion = "26.05";
  networking.hostName = "paddock-vm";

  boot.loader.grub.device = "/dev/vda";
  boot.growPartition = true;
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
    autoResize = true;
  };

  # Defaults: readyTarget = "multi-user.target", jobUser = "paddock".
  services.paddock.puppet.enable = true;

  services.openssh.enable = true;
  services.openssh.settings.PasswordAuthentication = false;
  # The console for the supervisor's console stream.
  boot.kernelParams = [ "console=ttyS0,115200" ];
}
