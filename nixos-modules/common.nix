# Shared pieces of the Paddock NixOS modules: the TOML format, the build-time configuration
# check, and the systemd hardening every service starts from (each module adds back only the
# exceptions it needs).
{ lib, pkgs }:
rec {
  toml = pkgs.formats.toml { };

  # The `package` option of every module: this flake's package by default.
  packageOption = self: binary: lib.mkOption {
    type = lib.types.package;
    default = self.packages.${pkgs.stdenv.hostPlatform.system}.paddock;
    defaultText = lib.literalExpression "paddock.packages.\${system}.paddock";
    description = "The package providing `${binary}`.";
  };

  # The settings rendered to TOML and checked with the service's own `check-config` at build
  # time (secret files are not there yet: `--no-secrets` skips reading them where a service
  # has any). A configuration the service would refuse fails the build, not the boot.
  # `unchecked`: settings added to the file after the check, for values naming files the
  # build's sandbox cannot read (the audit's baseline kept on the host).
  checkedConfig = { name, package, binary, settings, extraArgs ? [ ], unchecked ? { } }:
    let
      checked = toml.generate "${name}.toml" settings;
      file = if unchecked == { } then checked else toml.generate "${name}.toml" (settings // unchecked);
    in
    pkgs.runCommand "${name}-checked.toml" { nativeBuildInputs = [ package ]; } ''
      ${binary} check-config --config ${checked} ${lib.escapeShellArgs extraArgs} > /dev/null
      cp ${file} $out
    '';

  # `LoadCredential` entries for the secret files of a service: name:path.
  credentials = files: lib.mapAttrsToList (name: path: "${name}:${path}") (lib.filterAttrs (_: p: p != null) files);

  # The port of a `listen` address ("0.0.0.0:80", "[::]:8080"), for openFirewall.
  portOf = listen: lib.toInt (lib.last (lib.splitString ":" listen));

  # Where a credential appears inside the unit.
  inherit (import ./settings.nix) credentialPath;

  hardening = {
    DynamicUser = true;
    NoNewPrivileges = true;
    PrivateTmp = true;
    PrivateDevices = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    ProtectProc = "invisible";
    RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
    CapabilityBoundingSet = "";
    UMask = "0077";
    Restart = "on-failure";
    RestartSec = 5;
  };
}
