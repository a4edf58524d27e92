{
  description = "Paddock: a fleet system for hardware test labs";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs: rec {
        paddock = pkgs.rustPlatform.buildRustPackage {
          pname = "paddock";
          version = "0.1.0";
          src = pkgs.lib.cleanSource ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # The test suite needs a PostgreSQL server; CI runs it outside the Nix build.
          doCheck = false;
          meta = {
            description = "Paddock switchboard and command line";
            mainProgram = "paddock";
          };
        };
        default = paddock;
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.paddock ];
          packages = [ pkgs.cargo pkgs.rustc pkgs.clippy pkgs.rustfmt pkgs.rust-analyzer pkgs.postgresql pkgs.sqlite ];
        };
      });
    };
}
