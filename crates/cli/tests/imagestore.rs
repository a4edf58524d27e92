//! Issue 4's acceptance walk-through, as written, with the real `paddock-imagestore` and
//! `paddock` binaries, plus `pull`, `show`, `list` against the server, `gc` and `check`.

#![allow(clippy::unwrap_used)]

mod shell;

use std::path::Path;
use std::process::Command;

const PADDOCK: &str = env!("CARGO_BIN_EXE_paddock");

fn bash(dir: &Path, script: &str) -> (String, String) {
    let out = shell::run(dir, script);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let serve = std::fs::read_to_string(dir.join("serve.err")).unwrap_or_default();
    assert!(
        out.status.success(),
        "script failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- serve\n{serve}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn acceptance_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("some-file"),
        "#!/bin/sh\necho demo workload\n",
    )
    .unwrap();
    let script = format!(
        r#"
set -euo pipefail
PORT={port}
TOKEN=$(paddock-imagestore token add ci --root S | tail -1)
paddock-imagestore serve --root S --listen 127.0.0.1:$PORT 2> serve.err &
SERVER=$!
trap 'kill $SERVER' EXIT
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
export PADDOCK_IMAGESTORE_URL=http://127.0.0.1:$PORT PADDOCK_IMAGESTORE_TOKEN=$TOKEN
ID=$(paddock image push ./some-file --label demo)
echo "$ID" > id.txt
sleep 0.3
curl -s $PADDOCK_IMAGESTORE_URL/all.txt > all.txt
paddock image mirror $PADDOCK_IMAGESTORE_URL M 2> mirror1.err
paddock image mirror $PADDOCK_IMAGESTORE_URL M 2> mirror2.err
OTHER=aabbcc$(printf '0%.0s' $(seq 58))
curl -s -o /dev/null -w '%{{http_code}}' -X PUT --data-binary 'x' -H "Authorization: Bearer $TOKEN" $PADDOCK_IMAGESTORE_URL/blobs/aa/bb/cc/$OTHER > put.txt
# Beyond the walk-through.
paddock image push ./some-file --label demo > id2.txt
paddock image list --json > list.json
paddock image show demo@1 --json > show.json
paddock image pull demo P > pulled.txt
paddock-imagestore check --root M > check.txt
"#,
        port = shell::free_port()
    );
    let d = dir.path();
    bash(d, &script);
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let id = read("id.txt").trim().to_string();
    assert!(
        id.parse::<paddock_core::ImageId>().is_ok(),
        "only the id: {id:?}"
    );
    let all = read("all.txt");
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 2, "{all}");
    assert!(
        lines
            .contains(&format!("./images/{}/{}/{}/{id}", &id[0..2], &id[2..4], &id[4..6]).as_str())
    );
    assert!(lines.iter().any(|l| l.starts_with("./blobs/")));
    assert!(
        read("mirror1.err").contains("2 fetched"),
        "{}",
        read("mirror1.err")
    );
    assert!(
        read("mirror2.err").contains("nothing to transfer"),
        "{}",
        read("mirror2.err")
    );
    for l in &lines {
        assert!(d.join("M").join(l.trim_start_matches("./")).is_file());
    }
    assert_eq!(read("put.txt"), "400");
    // A second push of the same file is revision 2.
    let id2 = read("id2.txt").trim().to_string();
    assert_ne!(id2, id);
    let list: serde_json::Value = serde_json::from_str(&read("list.json")).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let show: serde_json::Value = serde_json::from_str(&read("show.json")).unwrap();
    assert_eq!(show["id"], id);
    assert_eq!(
        read("pulled.txt").trim(),
        id2,
        "a label pulls its newest revision"
    );
    paddock_imagestore::LocalStore::new(d.join("P"))
        .verified_image(&id2.parse().unwrap())
        .unwrap();

    // gc and check on the server's store, offline.
    let (_, err) = bash(d, "paddock-imagestore gc --root S --grace-s 0 --dry-run");
    assert!(err.contains("0 unreferenced"), "{err}");
    let blob = lines.iter().find(|l| l.starts_with("./blobs/")).unwrap();
    std::fs::write(d.join("S").join(blob.trim_start_matches("./")), "rot").unwrap();
    let out = Command::new(
        Path::new(PADDOCK)
            .parent()
            .unwrap()
            .join("paddock-imagestore"),
    )
    .args(["check", "--root", "S"])
    .current_dir(d)
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CORRUPT"));
    bash(
        d,
        "paddock-imagestore check --root S --repair > repaired.txt",
    );
    assert!(read("repaired.txt").contains("moved to"));
    assert!(!d.join("S").join(blob.trim_start_matches("./")).exists());
}

/// `paddock image assemble` (what the Nix `mkImageStore` runs) writes the same manifest, byte
/// for byte, as `import`/`push` for the same content, names it in image.txt, leaves only the
/// store layout; `paddock image push DIR` publishes such a directory as it is.
#[test]
fn assembled_images_are_byte_identical_and_push_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.sh"), "#!/bin/sh\necho hello\n").unwrap();
    std::fs::write(dir.path().join("disk.img"), vec![7u8; 100_000]).unwrap();
    let script = format!(
        r#"
set -euo pipefail
paddock image import ./hello.sh --label hello --revision 3 --description 'says hello' --store I > imported.txt
paddock image assemble --store A --label hello --revision 3 --description 'says hello' \
  --blob workload=./hello.sh --attr org.paddock.local.kind=script \
  --attr org.paddock.local.entry-point=hello.sh --attr org.paddock.local.ready=start > assembled.txt
paddock image assemble --store Q --label vm --revision 1 --blob disk=./disk.img --blob lower=./hello.sh \
  --attr org.tockos.treadmill.image.qemu_layered_v0.head=disk \
  --blob-attr disk.org.example.format=raw > qemu.txt
if paddock image assemble --store X --label bad --revision 1 --blob disk=./disk.img --blob-attr nodisk.k=v 2> bad.err; then exit 1; fi
(cd A && find . -type f | sort) > layout.txt
PORT={port}
TOKEN=$(paddock-imagestore token add ci --root S | tail -1)
paddock-imagestore serve --root S --listen 127.0.0.1:$PORT 2> serve.err &
SERVER=$!
trap 'kill $SERVER' EXIT
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
export PADDOCK_IMAGESTORE_URL=http://127.0.0.1:$PORT PADDOCK_IMAGESTORE_TOKEN=$TOKEN
paddock image push ./Q > pushed.txt
paddock image show vm@1 --json > show.json
paddock image pull vm@1 P > /dev/null
if paddock image push ./hello.sh 2> nolabel.err; then exit 1; fi
"#,
        port = shell::free_port()
    );
    let d = dir.path();
    bash(d, &script);
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let imported = read("imported.txt").trim().to_string();
    assert_eq!(
        read("assembled.txt").trim(),
        imported,
        "same content, same manifest bytes, same id"
    );
    assert_eq!(read("A/image.txt").trim(), imported);
    let layout: Vec<String> = read("layout.txt").lines().map(str::to_string).collect();
    assert_eq!(
        layout.len(),
        3,
        "image.txt, one manifest, one blob: {layout:?}"
    );
    assert!(layout.contains(&"./image.txt".to_string()));
    assert!(
        layout
            .iter()
            .any(|l| l.starts_with("./images/") && l.ends_with(&imported))
    );
    let qemu = read("qemu.txt").trim().to_string();
    assert_eq!(read("pushed.txt").trim(), qemu);
    let show: serde_json::Value = serde_json::from_str(&read("show.json")).unwrap();
    assert_eq!(show["id"], qemu.as_str(), "{show}");
    assert!(
        read("bad.err").contains("no --blob named nodisk"),
        "{}",
        read("bad.err")
    );
    assert!(
        read("nolabel.err").contains("--label is required"),
        "{}",
        read("nolabel.err")
    );
}

/// The Nix `mkImageStore`'s arguments, evaluated by Nix itself (images/mk-image-store-args.nix
/// needs builtins only, no nixpkgs), given to `paddock image assemble`: the image is the one
/// `import` makes of the same content (the example of images/mk-image-store.nix), and the one
/// the same flags written by hand make for several blobs with blob attributes.
#[test]
fn the_nix_mk_image_store_arguments_assemble_the_same_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::write(dir.path().join("hello.sh"), "#!/bin/sh\necho hello\n").unwrap();
    std::fs::write(dir.path().join("disk.img"), vec![7u8; 100_000]).unwrap();
    let script = format!("ROOT={}\n", root.canonicalize().unwrap().display())
        + r#"
set -euo pipefail
nixargs() { nix-instantiate --eval --strict --json -E "import $ROOT/images/mk-image-store-args.nix ($1)" | jq -r '.[]'; }
paddock image import ./hello.sh --label hello --revision 3 --description 'says hello' --store I > imported.txt
mapfile -t argv < <(nixargs "{ out = \"$PWD/N\"; label = \"hello\"; revision = 3; description = \"says hello\";
  blobs.workload = \"$PWD/hello.sh\";
  attrs = { \"org.paddock.local.kind\" = \"script\"; \"org.paddock.local.entry-point\" = \"hello.sh\"; \"org.paddock.local.ready\" = \"start\"; }; }")
printf '%s\n' "${argv[@]}" > hello.argv
paddock image assemble "${argv[@]}" > nix-hello.txt
paddock image assemble --store Q --label vm --revision 1 --blob disk=./disk.img --blob lower=./hello.sh \
  --attr org.tockos.treadmill.image.qemu_layered_v0.head=disk \
  --blob-attr disk.org.example.format=raw > qemu.txt
mapfile -t argv < <(nixargs "{ out = \"$PWD/NQ\"; label = \"vm\"; revision = 1;
  blobs = { disk = \"$PWD/disk.img\"; lower = \"$PWD/hello.sh\"; };
  attrs.\"org.tockos.treadmill.image.qemu_layered_v0.head\" = \"disk\";
  blobAttrs.disk.\"org.example.format\" = \"raw\"; }")
paddock image assemble "${argv[@]}" > nix-qemu.txt
# An argument mkImageStore does not take is refused by Nix, naming it.
if nixargs '{ out = "x"; label = "l"; revision = 1; blobs = {}; colour = "red"; }' 2> unknown.err; then exit 1; fi
"#;
    let d = dir.path();
    bash(d, &script);
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let imported = read("imported.txt").trim().to_string();
    assert_eq!(
        read("nix-hello.txt").trim(),
        imported,
        "{}",
        read("hello.argv")
    );
    assert_eq!(read("N/image.txt").trim(), imported);
    assert_eq!(read("nix-qemu.txt").trim(), read("qemu.txt").trim());
    assert!(
        read("unknown.err").contains("colour"),
        "{}",
        read("unknown.err")
    );
}

/// A plain static Treadmill store (python3's http.server here, nginx in production: no
/// `/api/v1/images`) serves a pull by full image id from its store paths, as `mirror` and the
/// supervisor's cache read it (issue 15 item 12); a label needs a Paddock server, and says so.
#[test]
fn pull_by_full_id_from_a_plain_static_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.sh"), "#!/bin/sh\necho hello\n").unwrap();
    let script = format!(
        r#"
set -euo pipefail
PORT={port}
ID=$(paddock image import ./hello.sh --label hello --store W)
echo "$ID" > id.txt
(cd W && exec python3 -m http.server $PORT --bind 127.0.0.1 2> ../www.err) &
SERVER=$!
trap 'kill $SERVER' EXIT
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/ >/dev/null && break; sleep 0.1; done
paddock image pull "$ID" P --url http://127.0.0.1:$PORT > pulled.txt
if paddock image pull hello Q --url http://127.0.0.1:$PORT 2> label.err; then exit 1; fi
"#,
        port = shell::free_port()
    );
    let d = dir.path();
    bash(d, &script);
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let id = read("id.txt").trim().to_string();
    assert_eq!(read("pulled.txt").trim(), id);
    paddock_imagestore::LocalStore::new(d.join("P"))
        .verified_image(&id.parse().unwrap())
        .unwrap();
    let err = read("label.err");
    assert!(
        err.contains("no image \"hello\"") && err.contains("full image ids"),
        "{err}"
    );
    assert!(!err.contains("<html"), "no HTML page in the error: {err}");
}
