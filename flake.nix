{
  description = "Paddock: a fleet system for hardware test labs";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
  # Secrets of the example hosts (secrets/, docs/nix.md "Secrets"): its NixOS module decrypts
  # each `age.secrets.<name>.file` to /run/agenix/<name> at activation. Its nixpkgs is ours
  # (one nixpkgs in the closure); flake.lock pins it (docs/nix.md says which rev and where that
  # lock entry was taken from).
  inputs.agenix = {
    url = "github:ryantm/agenix";
    inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, agenix }:
    let
      lib = nixpkgs.lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # One NixOS system from this flake's modules and a configuration file (the platform set
      # the way current NixOS asks: nixpkgs.hostPlatform, not nixosSystem's `system`); `extra`:
      # more modules (agenix's for the example hosts, whose secrets it decrypts).
      nixos = system: extra: file: lib.nixosSystem {
        modules = [ { nixpkgs.hostPlatform = system; } self.nixosModules.default ] ++ extra ++ [ file ];
      };
    in
    {
      packages = forAll (pkgs: rec {
        # Every binary: paddock, paddock-switchboard, -supervisor, -imagestore, -deploy,
        # -audit, -puppet.
        paddock = pkgs.rustPlatform.buildRustPackage {
          pname = "paddock";
          version = "0.1.0";
          src = lib.cleanSource ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # libssh2 (paddock-audit --host) links OpenSSL.
          nativeBuildInputs = [ pkgs.pkg-config ];
          buildInputs = [ pkgs.openssl pkgs.zlib ];
          # The test suite needs PostgreSQL, sshd and git; CI runs it outside the Nix build.
          doCheck = false;
          meta = {
            description = "Paddock: switchboard, supervisor, image store, deploy, audit, puppet and the paddock command";
            mainProgram = "paddock";
          };
        };
        default = paddock;
      } // lib.optionalAttrs (pkgs.stdenv.hostPlatform.system == "x86_64-linux") {
        # The live audit ISO.
        iso = self.nixosConfigurations.iso.config.system.build.isoImage;
        # The qcow2 of a supervisor's QEMU host.
        vm-image = import "${nixpkgs}/nixos/lib/make-disk-image.nix" {
          inherit pkgs lib;
          config = self.nixosConfigurations.vm-image.config;
          format = "qcow2";
          diskSize = "auto";
          partitionTableType = "legacy";
        };
      });

      apps = forAll (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.paddock}/bin/paddock";
          meta.description = "paddock: the lab's command line (jobs, supervisors, images, deploy)";
        };
        paddock = self.apps.${pkgs.stdenv.hostPlatform.system}.default;
      });

      # mkImageStore pkgs { label; revision; description; blobs; attrs; blobAttrs; }: an image
      # in the store layout (images/mk-image-store.nix); `paddock image push ./result`.
      # `lib` is an output `nix flake check` knows (src/nix/flake.cc lists it among the "known
      # but unchecked community" outputs, as nixpkgs' own `lib`); a Nix older than that list
      # warns "unknown flake output 'lib'", which changes nothing (docs/nix.md).
      lib.mkImageStore = pkgs: import ./images/mk-image-store.nix {
        inherit pkgs;
        paddock = self.packages.${pkgs.stdenv.hostPlatform.system}.paddock;
      };

      # switchboard, supervisor, imagestore, audit, deploy, puppet and default (all of them),
      # each with its file and a key, so that any of them imported together are each one module
      # (nixos-modules/default.nix).
      nixosModules = import ./nixos-modules self;

      nixosConfigurations = {
        switchboard-example = nixos "x86_64-linux" [ agenix.nixosModules.default ] ./hosts/switchboard-example/configuration.nix;
        site-example = nixos "x86_64-linux" [ agenix.nixosModules.default ] ./hosts/site-example/configuration.nix;
        iso = nixos "x86_64-linux" [ ] ./images/iso.nix;
        vm-image = nixos "x86_64-linux" [ ] ./images/vm-image.nix;
      };

      # NixOS VM tests (they need KVM and nixpkgs: not run by .ci/run).
      checks.x86_64-linux = let pkgs = nixpkgs.legacyPackages.x86_64-linux; in {
        end-to-end = import ./checks/end-to-end.nix { inherit self pkgs; };
        deploy = import ./checks/deploy.nix { inherit self pkgs; };
      };

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.paddock ];
          packages = [
            pkgs.cargo pkgs.rustc pkgs.clippy pkgs.rustfmt pkgs.rust-analyzer
            pkgs.postgresql pkgs.sqlite pkgs.git pkgs.openssh pkgs.jq pkgs.curl
            pkgs.pciutils pkgs.dmidecode pkgs.smartmontools pkgs.nvme-cli pkgs.iproute2
            pkgs.qemu_kvm pkgs.nix
          ];
        };
      });
    };
}
