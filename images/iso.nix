# The live audit ISO: `nix build .#iso`. Boots, copies itself to RAM (the boot medium may go
# away), starts SSH without waiting for the network (keys from paddock.iso.authorizedKeys),
# runs `paddock-audit collect` at boot without ever blocking the boot, serves the report on
# port 80, and prints the URL on the console. The bee boot flow (reference 000), on NixOS.
{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [ "${modulesPath}/installer/cd-dvd/iso-image.nix" ];

  options.paddock.iso.authorizedKeys = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = [ ];
    description = "SSH public keys allowed to log in as root on the live system.";
  };

  config = {
    system.stateVersion = "26.05";
    networking.hostName = "paddock-audit";
    # The file keeps NixOS's name (result/iso/nixos-*.iso): the option naming it moved between
    # releases (isoImage.isoName, then image.fileName).
    isoImage = {
      makeEfiBootable = true;
      makeUsbBootable = true;
    };
    # Stage 1 copies the squashfs into RAM before mounting it.
    boot.kernelParams = [ "copytoram" "console=tty0" "console=ttyS0,115200" ];

    # SSH is independent of the network: sshd starts at boot, DHCP comes when it comes.
    services.openssh = {
      enable = true;
      settings.PasswordAuthentication = false;
      settings.PermitRootLogin = "prohibit-password";
    };
    users.users.root.openssh.authorizedKeys.keys = config.paddock.iso.authorizedKeys;
    networking.useDHCP = lib.mkDefault true;
    # DHCP in the background (bee's `dhclient -nw`): no lease never holds up the boot.
    networking.dhcpcd.wait = "background";
    systemd.network.wait-online.enable = false;

    # The audit at boot (its unit waits for no network and never fails the boot) and the page.
    services.paddock.audit = {
      enable = true;
      interval = "1h";
      extraPackages = [ pkgs.lshw ];
      serve = {
        enable = true;
        listen = "0.0.0.0:80";
        openFirewall = true;
      };
    };

    # The console shows where to look (agetty replaces \4 with this machine's IPv4 address).
    services.getty.helpLine = lib.mkForce ''

      Paddock audit: report at http://\4/ (JSON: http://\4/report.json), SSH as root.
      Local: paddock-audit collect | jq .summary
    '';
    environment.systemPackages = [ pkgs.jq pkgs.pciutils pkgs.smartmontools pkgs.nvme-cli pkgs.dmidecode pkgs.ipmitool ];
  };
}
