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
# The arguments are checked by mk-image-store-args.nix's signature (label, revision,
# description, blobs, attrs, blobAttrs; nothing else).
args@{ label, revision, ... }:
let
  argv = import ./mk-image-store-args.nix (args // { out = placeholder "out"; });
in
pkgs.runCommand "paddock-image-${label}-${toString revision}" { nativeBuildInputs = [ paddock ]; } ''
  paddock image assemble ${pkgs.lib.escapeShellArgs argv} > /dev/null
''
