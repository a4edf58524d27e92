{
  description = "Paddock: a fleet system for hardware test labs";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # One NixOS system from this flake's modules and a configuration file (the platform set
      # the way current NixOS asks: nixpkgs.hostPlatform, not nixosSystem's `system`).
      nixos = system: file: lib.nixosSystem {
        modules = [ { nixpkgs.hostPlatform = system; } self.nixosModules.default file ];
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
      lib.mkImageStore = pkgs: import ./images/mk-image-store.nix {
        inherit pkgs;
        paddock = self.packages.${pkgs.stdenv.hostPlatform.system}.paddock;
      };

      nixosModules = {
        switchboard = import ./nixos-modules/switchboard.nix self;
        supervisor = import ./nixos-modules/supervisor.nix self;
        imagestore = import ./nixos-modules/imagestore.nix self;
        audit = import ./nixos-modules/audit.nix self;
        deploy = import ./nixos-modules/deploy.nix self;
        puppet = import ./nixos-modules/puppet.nix self;
        default = import ./nixos-modules/default.nix self;
      };

      nixosConfigurations = {
        switchboard-example = nixos "x86_64-linux" ./hosts/switchboard-example/configuration.nix;
        site-example = nixos "x86_64-linux" ./hosts/site-example/configuration.nix;
        iso = nixos "x86_64-linux" ./images/iso.nix;
        vm-image = nixos "x86_64-linux" ./images/vm-image.nix;
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
