# The VM image of a supervisor's QEMU host (`nix build .#vm-image`: a qcow2): NixOS with
# paddock-puppet, which tells the supervisor when the job's host is up (docs/puppet.md).
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

  services.paddock.puppet.enable = true;

  services.openssh.enable = true;
  # The console for the supervisor's console stream.
  boot.kernelParams = [ "console=ttyS0,115200" ];
}
