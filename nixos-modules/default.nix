# All the Paddock modules at once: `imports = [ paddock.nixosModules.default ];`.
self:
{ ... }:
{
  imports = [
    (import ./switchboard.nix self)
    (import ./supervisor.nix self)
    (import ./imagestore.nix self)
    (import ./audit.nix self)
    (import ./deploy.nix self)
    (import ./puppet.nix self)
  ];
}
