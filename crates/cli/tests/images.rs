//! `paddock image import` and `paddock image list` against a local store, with the real binary.

#![allow(clippy::unwrap_used)]

use std::process::Command;

const PADDOCK: &str = env!("CARGO_BIN_EXE_paddock");

#[test]
fn import_then_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let script = dir.path().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho hello\n").unwrap();
    let out = Command::new(PADDOCK)
        .args(["image", "import"])
        .arg(&script)
        .args(["--label", "hello", "--description", "says hello", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        id.parse::<paddock_core::ImageId>().is_ok(),
        "prints only the id: {id:?}"
    );

    let out = Command::new(PADDOCK)
        .args(["image", "list", "--json"])
        .env("PADDOCK_STORE", &store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], id.as_str());
    assert_eq!(v[0]["label"], "hello");
    assert_eq!(v[0]["revision"], 1);
    assert_eq!(v[0]["size"], 21);

    let out = Command::new(PADDOCK)
        .args([
            "image",
            "import",
            "/nonexistent/thing",
            "--label",
            "x",
            "--store",
        ])
        .arg(&store)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/thing"));
}

/// `paddock image show --json` shows the manifest as stored: Treadmill's blob `sources` and
/// keys Paddock does not know are kept, not dropped by a rewrite (issue 15 item 13).
#[test]
fn show_json_gives_the_manifest_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let blob = b"boot archive".to_vec();
    let d = paddock_core::manifest::sha256_id(&blob);
    let manifest = format!(
        r#"manifest_version = 0
manifest_extensions = ["org.tockos.treadmill.manifest-ext.base", "org.tockos.treadmill.manifest-ext.source"]
"org.tockos.treadmill.manifest-ext.base.label" = "netboot"
"org.tockos.treadmill.manifest-ext.base.revision" = 2
"org.tockos.treadmill.manifest-ext.base.description" = ""
"org.example.unknown" = {{ kept = true }}

["org.tockos.treadmill.manifest-ext.base.attrs"]

["org.tockos.treadmill.manifest-ext.base.blobs".boot]
"org.tockos.treadmill.manifest-ext.base.sha256-digest" = "{d}"
"org.tockos.treadmill.manifest-ext.base.size" = {}
"org.tockos.treadmill.manifest-ext.base.attrs" = {{}}
sources = [ {{ type = "HttpGet", url = "https://example.org/boot" }} ]
"#,
        blob.len()
    );
    let id = paddock_core::manifest::sha256_id(manifest.as_bytes());
    for (rel, bytes) in [
        (paddock_core::manifest::blob_path(&d), blob),
        (
            paddock_core::manifest::image_path(&id),
            manifest.into_bytes(),
        ),
    ] {
        let p = store.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    for name in [id.to_string(), "netboot".to_string()] {
        let out = Command::new(PADDOCK)
            .args(["image", "show", &name, "--json", "--store"])
            .arg(&store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let m = &v["manifest"];
        assert_eq!(m["org.example.unknown"]["kept"], true, "{v}");
        assert_eq!(
            m["org.tockos.treadmill.manifest-ext.base.blobs"]["boot"]["sources"][0]["url"],
            "https://example.org/boot",
            "{v}"
        );
        assert_eq!(
            m["manifest_extensions"][1], "org.tockos.treadmill.manifest-ext.source",
            "{v}"
        );
    }
}

/// Issue 15, item 19: `paddock image list` lines its columns up whatever the labels' lengths.
#[test]
fn list_columns_line_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let script = dir.path().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho hello\n").unwrap();
    for label in ["a", "a-label-much-longer-than-thirty-two-characters"] {
        let out = Command::new(PADDOCK)
            .args(["image", "import"])
            .arg(&script)
            .args(["--label", label, "--store"])
            .arg(&store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(PADDOCK)
        .args(["image", "list"])
        .env("PADDOCK_STORE", &store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    // Every column ends (numbers) or starts (text) at the same place on every line.
    let id = lines[0].find("ID").unwrap();
    let revision_end = lines[0].find("REVISION").unwrap() + "REVISION".len();
    let size_end = lines[0].len();
    for l in &lines[1..] {
        assert_eq!(l.len(), size_end, "SIZE misaligned:\n{list}");
        assert_eq!(
            &l[revision_end - 1..revision_end],
            "1",
            "REVISION misaligned:\n{list}"
        );
        assert!(
            l[id..].starts_with(|c: char| c.is_ascii_hexdigit()),
            "ID misaligned:\n{list}"
        );
        assert_eq!(&l[id - 2..id], "  ", "ID misaligned:\n{list}");
    }
}
