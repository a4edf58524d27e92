# The flake's `nixosModules` (flake.nix: `nixosModules = import ./nixos-modules self;`).
#
# Each module file is a function of the flake (`self`, for the default packages) returning a
# NixOS module, so none of them can be imported as a plain path, which is what would give a
# module its file (error messages) and its key (deduplication) for free. Without them the
# module system keys an anonymous module by where it is imported (lib/modules.nix,
# collectStructuredModules: "<parent key>:anon-<n>"), so `nixosModules.default` imported next
# to `nixosModules.switchboard` declared every option twice ("The option
# `services.paddock.switchboard.enable' ... is already declared") and errors read
# `<unknown-file>`. Here each module carries `_file` (its file) and `key` (the same string: the
# file's path in the flake's source, as a path import would be keyed): the module system keeps
# one module per key (genericClosure in filterModules), and `default` imports these very
# values, so any mix of them is each module once.
self:
let
  module = name:
    let file = toString (./. + "/${name}.nix"); in
    {
      _file = file;
      key = file;
      imports = [ (import (./. + "/${name}.nix") self) ];
    };
in
rec {
  switchboard = module "switchboard";
  supervisor = module "supervisor";
  imagestore = module "imagestore";
  audit = module "audit";
  deploy = module "deploy";
  puppet = module "puppet";

  # All the Paddock modules at once: `imports = [ paddock.nixosModules.default ];`.
  default = {
    _file = toString ./default.nix;
    key = toString ./default.nix;
    imports = [ switchboard supervisor imagestore audit deploy puppet ];
  };
}
