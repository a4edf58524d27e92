# Builtins only (no nixpkgs), for .ci/check-nix: each example host's configuration.nix evaluated
# with just enough of `lib` and `config` to read its `age.secrets` and the secret files its
# Paddock services are given. Returns, per host, what the check compares: every secret file a
# service reads is the path of one of the host's `age.secrets` (agenix's default
# `/run/agenix/<name>`, age.nix's `path` default), and each of those has its `.age` file, which
# secrets/secrets.nix encrypts for the host's key (secrets/example-keys/<host>.pub).
let
  lib = {
    genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  };
  host = name:
    let
      cfg = import (../hosts + "/${name}/configuration.nix") {
        inherit lib;
        pkgs = { };
        # agenix's module: age.secrets.<name>.path defaults to "${age.secretsDir}/<name>",
        # secretsDir to /run/agenix.
        config.age.secrets = secrets;
      };
      secrets = builtins.mapAttrs (n: s: s // { path = "/run/agenix/${n}"; }) cfg.age.secrets;
      p = cfg.services.paddock;
      files = builtins.filter (f: f != null) (
        builtins.concatMap (s: [ s.tokenFile ]) (builtins.attrValues (p.supervisors or { }))
        ++ [
          (p.audit.tokenFile or null)
          (p.deploy.tokenFile or null)
          (p.deploy.webhookSecretFile or null)
          (p.deploy.sshKeyFile or null)
          (p.switchboard.databaseUrlFile or null)
        ]);
      recipients = import ../secrets/secrets.nix;
      key = builtins.concatStringsSep " " (builtins.genList
        (i: builtins.elemAt (builtins.filter builtins.isString
          (builtins.split " " (builtins.readFile (../secrets/example-keys + "/${name}.pub")))) i) 2);
      keyOf = k: builtins.concatStringsSep " " (builtins.genList
        (i: builtins.elemAt (builtins.filter builtins.isString (builtins.split " " k)) i) 2);
    in
    {
      secrets = builtins.attrNames cfg.age.secrets;
      # Service secret files that are no declared secret's path.
      undeclared = builtins.filter (f: !(builtins.elem f (map (s: s.path) (builtins.attrValues secrets)))) files;
      used = files;
      # Declared secrets whose .age file is missing, or not encrypted for this host.
      missing = builtins.filter (n: !(builtins.pathExists cfg.age.secrets.${n}.file)) (builtins.attrNames cfg.age.secrets);
      notForHost = builtins.filter
        (n: !(builtins.elem key (map keyOf (recipients."${n}.age".publicKeys or [ ]))))
        (builtins.attrNames cfg.age.secrets);
    };
in
{
  switchboard-example = host "switchboard-example";
  site-example = host "site-example";
}
