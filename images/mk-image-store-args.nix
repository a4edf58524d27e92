# The `paddock image assemble` arguments of mkImageStore (images/mk-image-store.nix), written
# with builtins only so that CI evaluates them without nixpkgs: crates/cli/tests/imagestore.rs
# runs `paddock image assemble` with exactly what this returns.
{ out, label, revision, description ? "", blobs, attrs ? { }, blobAttrs ? { } }:
let
  # [ flag "name=value" ... ] for each attribute, in name order.
  pairs = flag: set:
    builtins.concatLists (map (n: [ flag "${n}=${toString set.${n}}" ]) (builtins.attrNames set));
  # blobAttrs.<blob>.<name> = value  ->  "<blob>.<name>" = value
  blobAttrPairs = blob:
    pairs "--blob-attr" (builtins.listToAttrs (map
      (n: { name = "${blob}.${n}"; value = blobAttrs.${blob}.${n}; })
      (builtins.attrNames blobAttrs.${blob})));
in
[ "--store" out "--label" label "--revision" (toString revision) "--description" description ]
# A blob is a path (copied into the store) or a derivation (its output): "${…}" either way.
++ pairs "--blob" (builtins.mapAttrs (_: p: "${p}") blobs)
++ pairs "--attr" attrs
++ builtins.concatLists (map blobAttrPairs (builtins.attrNames blobAttrs))
