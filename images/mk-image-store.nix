# mkImageStore { label; revision; description ? ""; blobs; attrs ? {}; blobAttrs ? {}; }:
# an image in the Paddock/Treadmill store layout (images/aa/bb/cc/<id>, blobs/aa/bb/cc/<sha256>,
# image.txt naming the image), built by `paddock image assemble` — the same manifest
# serializer as `paddock image push`, so the bytes are identical. Publish it with
# `paddock image push ./result`.
#
#   paddock.lib.mkImageStore pkgs {
#     label = "hello"; revision = 1; description = "says hello";
#     blobs.workload = ./hello.sh;
#     attrs = {
#       "org.paddock.local.kind" = "script";
#       "org.paddock.local.entry-point" = "hello.sh";
#       "org.paddock.local.ready" = "start";
#     };
#   }
{ pkgs, paddock }:
{ label, revision, description ? "", blobs, attrs ? { }, blobAttrs ? { } }:
let
  lib = pkgs.lib;
  pairs = flag: attrset: lib.concatLists (lib.mapAttrsToList (n: v: [ flag "${n}=${v}" ]) attrset);
  args = [ "--store" (placeholder "out") "--label" label "--revision" (toString revision) "--description" description ]
    ++ pairs "--blob" (lib.mapAttrs (_: p: "${p}") blobs)
    ++ pairs "--attr" attrs
    ++ lib.concatLists (lib.mapAttrsToList (blob: as: pairs "--blob-attr" (lib.mapAttrs' (n: v: lib.nameValuePair "${blob}.${n}" v) as)) blobAttrs);
in
pkgs.runCommand "paddock-image-${label}-${toString revision}" { nativeBuildInputs = [ paddock ]; } ''
  paddock image assemble ${lib.escapeShellArgs args} > /dev/null
''
