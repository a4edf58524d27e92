//! Issue 15: the store server against what Treadmill's tools do and read. `all.txt` follows
//! files published outside the server (the book's `rsync`) and includes an image as soon as its
//! manifest PUT returns; Treadmill's netboot attribute names are accepted; manifests Treadmill
//! cannot read are refused; a stored image with a problem is listed with it, never hidden; the
//! manifest is shown as stored; pulls by full id work against a plain static store.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paddock_core::ImageId;
use paddock_core::manifest::sha256_id;
use paddock_imagestore::paths::StorePath;
use paddock_imagestore_server::server::ServerSettings;

struct Server {
    base: String,
    root: PathBuf,
    token: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("S");
    std::fs::create_dir_all(&root).unwrap();
    let token = paddock_imagestore_server::tokens::add(&root, "ci").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = ServerSettings {
        root: root.clone(),
        listen: addr,
        max_upload_bytes: 1 << 30,
    };
    tokio::spawn(async move {
        paddock_imagestore_server::server::serve(&settings, listener, std::future::pending())
            .await
            .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        root,
        token,
        _dir: dir,
    }
}

fn rel(p: &StorePath) -> String {
    p.relative().display().to_string()
}

fn line(p: &StorePath) -> String {
    p.index_line()
}

pub const NETBOOT_SIZE_ATTR: &str =
    "org.tockos.treadmill.image.nbd_qcow2_layered_v0.blob-virtual-size";

/// A manifest as Treadmill's netboot builder writes it: two blobs, the root one with the
/// 65-byte `blob-virtual-size` attribute, an empty description, and a Treadmill `sources` list
/// and an unknown key that Paddock does not read.
/// The root blob's size attribute is named `size_attr` ([`NETBOOT_SIZE_ATTR`] in Treadmill's).
fn manifest_with_size_attr(label: &str, boot: &[u8], root: &[u8], size_attr: &str) -> String {
    format!(
        r#"manifest_version = 0
manifest_extensions = [ "org.tockos.treadmill.manifest-ext.base" ]

"org.tockos.treadmill.manifest-ext.base.label" = "{label}"
"org.tockos.treadmill.manifest-ext.base.revision" = 0
"org.tockos.treadmill.manifest-ext.base.description" = ""
"org.example.unknown" = "kept"

["org.tockos.treadmill.manifest-ext.base.attrs"]
"org.tockos.treadmill.image.nbd_qcow2_layered_v0.head" = "layer-0"

["org.tockos.treadmill.manifest-ext.base.blobs".layer-0-boot]
"org.tockos.treadmill.manifest-ext.base.sha256-digest" = "{}"
"org.tockos.treadmill.manifest-ext.base.size" = {}
"org.tockos.treadmill.manifest-ext.base.attrs" = {{}}
sources = [ {{ type = "HttpGet", url = "https://example.org/boot" }} ]

["org.tockos.treadmill.manifest-ext.base.blobs".layer-0-root]
"org.tockos.treadmill.manifest-ext.base.sha256-digest" = "{}"
"org.tockos.treadmill.manifest-ext.base.size" = {}

["org.tockos.treadmill.manifest-ext.base.blobs".layer-0-root."org.tockos.treadmill.manifest-ext.base.attrs"]
"{size_attr}" = "10737418240"
"#,
        sha256_id(boot),
        boot.len(),
        sha256_id(root),
        root.len()
    )
}

/// Writes files into a store the way `rsync -r -L result/ STORE/` does: straight to their
/// final paths, behind the server's back.
fn write_files(root: &Path, files: &[(StorePath, Vec<u8>)]) {
    for (p, bytes) in files {
        let path = root.join(p.relative());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// A netboot image's files (blobs first, then the manifest) and its id.
fn netboot_image(label: &str) -> (ImageId, Vec<(StorePath, Vec<u8>)>) {
    image_with_size_attr(label, NETBOOT_SIZE_ATTR)
}

/// An image like Treadmill's netboot one with a short attribute name, which every version of
/// Paddock accepts.
fn plain_image(label: &str) -> (ImageId, Vec<(StorePath, Vec<u8>)>) {
    image_with_size_attr(label, "org.example.blob-virtual-size")
}

fn image_with_size_attr(label: &str, size_attr: &str) -> (ImageId, Vec<(StorePath, Vec<u8>)>) {
    let boot = format!("boot archive of {label}").into_bytes();
    let root = format!("root qcow2 of {label}").repeat(100).into_bytes();
    let m = manifest_with_size_attr(label, &boot, &root, size_attr);
    let id = sha256_id(m.as_bytes());
    (
        id.clone(),
        vec![
            (StorePath::Blob(sha256_id(&boot)), boot),
            (StorePath::Blob(sha256_id(&root)), root),
            (StorePath::Image(id), m.into_bytes()),
        ],
    )
}

async fn get_text(http: &reqwest::Client, url: &str) -> (u16, String) {
    let r = http.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_txt_follows_files_published_outside_the_server() {
    let s = start().await;
    let http = reqwest::Client::new();
    // The server is up and has written its all.txt (empty).
    let (status, text) = get_text(&http, &format!("{}/all.txt", s.base)).await;
    assert_eq!((status, text.as_str()), (200, ""));

    // The book's publish step: files appear under the store, the server is not told.
    let (_, files) = plain_image("rsynced");
    write_files(&s.root, &files);
    let started = Instant::now();
    let want: Vec<String> = files.iter().map(|(p, _)| line(p)).collect();
    let mut text = String::new();
    // Documented bound: within 2 s; allow the test machine some slack, and stop at 10 s.
    while started.elapsed() < Duration::from_secs(10) {
        text = get_text(&http, &format!("{}/all.txt", s.base)).await.1;
        if want.iter().all(|w| text.lines().any(|l| l == w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        want.iter().all(|w| text.lines().any(|l| l == w)),
        "all.txt never listed the rsynced image in 10 s:\n{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "all.txt took {:?} to list the rsynced image (documented: within 2 s)",
        started.elapsed()
    );

    // A file removed behind its back (an operator's rm) leaves all.txt too.
    std::fs::remove_file(s.root.join(files[0].0.relative())).unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        text = get_text(&http, &format!("{}/all.txt", s.base)).await.1;
        if !text.lines().any(|l| l == want[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!text.lines().any(|l| l == want[0]), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_txt_lists_an_image_as_soon_as_its_manifest_put_returns() {
    let s = start().await;
    let http = reqwest::Client::new();
    for i in 0..5 {
        let (id, files) = plain_image(&format!("pushed-{i}"));
        for (p, bytes) in &files {
            let r = http
                .put(format!("{}/{}", s.base, rel(p)))
                .bearer_auth(&s.token)
                .body(bytes.clone())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}: {}", rel(p), r.status());
        }
        // Read-your-writes: the very next read of all.txt lists the manifest and its blobs.
        let (_, text) = get_text(&http, &format!("{}/all.txt", s.base)).await;
        for (p, _) in &files {
            assert!(
                text.lines().any(|l| l == line(p)),
                "image {id} (round {i}): all.txt lacks {} right after the PUT returned:\n{text}",
                line(p)
            );
        }
    }
}

async fn put_all(s: &Server, files: &[(StorePath, Vec<u8>)]) -> Vec<(u16, String)> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for (p, bytes) in files {
        let r = http
            .put(format!("{}/{}", s.base, rel(p)))
            .bearer_auth(&s.token)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        out.push((r.status().as_u16(), r.text().await.unwrap()));
    }
    out
}

async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn treadmill_netboot_images_are_accepted_listed_and_shown() {
    let s = start().await;
    // Uploaded: the 65-byte attribute name Treadmill's netboot builder writes is accepted.
    let (id, files) = netboot_image("netboot-pushed");
    for (status, body) in put_all(&s, &files).await {
        assert!(status == 201, "{status}: {body}");
    }
    // Published behind the server's back (rsync), as a served Treadmill store holds them.
    let (rsynced, files) = netboot_image("netboot-rsynced");
    write_files(&s.root, &files);

    let (status, list) = get_json(&format!("{}/api/v1/images", s.base)).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&id.as_str()), "{list}");
    assert!(ids.contains(&rsynced.as_str()), "{list}");
    for name in [
        id.to_string(),
        "netboot-pushed".to_string(),
        rsynced.to_string(),
        "netboot-rsynced@0".to_string(),
    ] {
        let (status, v) = get_json(&format!("{}/api/v1/images/{name}", s.base)).await;
        assert_eq!(status, 200, "{name}: {v}");
        assert!(v.get("problem").is_none(), "{name}: {v}");
    }
    // The local store reads it for use too (what a supervisor does before a job).
    let img = paddock_imagestore::LocalStore::new(&s.root)
        .verified_image(&rsynced)
        .unwrap();
    assert_eq!(
        img.manifest.blobs["layer-0-root"].attrs[NETBOOT_SIZE_ATTR],
        "10737418240"
    );
}

#[test]
fn assemble_accepts_treadmills_netboot_attribute_name() {
    let dir = tempfile::tempdir().unwrap();
    let root_fs = dir.path().join("root.qcow2");
    std::fs::write(&root_fs, "qcow2").unwrap();
    let store = paddock_imagestore::LocalStore::new(dir.path().join("OUT"));
    let id = store
        .assemble(&paddock_imagestore::import::AssembleOptions {
            label: "netboot".into(),
            revision: 1,
            description: String::new(),
            attrs: [(
                "org.tockos.treadmill.image.nbd_qcow2_layered_v0.head".to_string(),
                "layer-0".to_string(),
            )]
            .into(),
            blobs: [(
                "layer-0-root".to_string(),
                (
                    root_fs,
                    [(NETBOOT_SIZE_ATTR.to_string(), "10737418240".to_string())].into(),
                ),
            )]
            .into(),
        })
        .unwrap();
    store.verified_image(&id).unwrap();
}

/// A store file that is not a usable image is listed with its problem, never hidden: a
/// manifest over the attribute-name bound, one that does not parse, and one whose bytes no
/// longer hash to its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_image_with_a_problem_is_listed_with_it() {
    let s = start().await;
    let long_name = format!("org.example.{}", "x".repeat(300));
    let (too_long, files) = image_with_size_attr("too-long", &long_name);
    write_files(&s.root, &files);
    let garbage = b"this is not toml = [".to_vec();
    let unparsable = sha256_id(&garbage);
    write_files(&s.root, &[(StorePath::Image(unparsable.clone()), garbage)]);
    let (corrupt, files) = plain_image("corrupt");
    write_files(&s.root, &files);
    std::fs::write(
        s.root.join(StorePath::Image(corrupt.clone()).relative()),
        "tampered",
    )
    .unwrap();

    let (status, list) = get_json(&format!("{}/api/v1/images", s.base)).await;
    assert_eq!(status, 200, "{list}");
    let find = |id: &ImageId| {
        list["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{id} is not listed: {list}"))
    };
    let i = find(&too_long);
    assert_eq!(i["label"], "too-long", "{i}");
    assert!(
        i["problem"].as_str().unwrap().contains("attribute name"),
        "{i}"
    );
    assert!(find(&unparsable)["problem"].as_str().is_some());
    assert!(
        find(&corrupt)["problem"]
            .as_str()
            .unwrap()
            .contains("hashes to"),
        "{list}"
    );
    // Shown by id, with the problem; never taken for its label's newest revision.
    let (status, v) = get_json(&format!("{}/api/v1/images/{too_long}", s.base)).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["problem"].as_str().is_some(), "{v}");
    let (status, _) = get_json(&format!("{}/api/v1/images/too-long", s.base)).await;
    assert_eq!(status, 404);
}

/// Removes the line that sets `key` (a top-level key of the manifest) and, for a table, its
/// whole section.
fn without(manifest: &str, key: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for l in manifest.lines() {
        if l.starts_with('[') {
            skipping = l.starts_with(&format!("[\"{key}\""));
        }
        if skipping || l.starts_with(&format!("\"{key}\"")) {
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_treadmill_cannot_read_are_refused_and_reported_by_check() {
    let s = start().await;
    let (_, files) = plain_image("partial");
    let blobs = &files[..2];
    for (status, body) in put_all(&s, blobs).await {
        assert_eq!(status, 201, "{body}");
    }
    let full = String::from_utf8(files[2].1.clone()).unwrap();
    for key in [
        "org.tockos.treadmill.manifest-ext.base.description",
        "org.tockos.treadmill.manifest-ext.base.blobs",
    ] {
        let m = without(&full, key);
        assert!(!m.contains(key), "{m}");
        let id = sha256_id(m.as_bytes());
        let r = put_all(&s, &[(StorePath::Image(id.clone()), m.into_bytes())]).await;
        assert_eq!(r[0].0, 400, "without {key}: {}", r[0].1);
        assert!(r[0].1.contains(key), "the error names {key}: {}", r[0].1);
        assert!(
            !s.root.join(StorePath::Image(id).relative()).exists(),
            "nothing stored without {key}"
        );
    }

    // Such manifests already in a store (published by an older Paddock, or by hand) are
    // reported by check, and listed with their problem.
    let m = without(&full, "org.tockos.treadmill.manifest-ext.base.blobs");
    let id = sha256_id(m.as_bytes());
    write_files(&s.root, &[(StorePath::Image(id.clone()), m.into_bytes())]);
    let r = paddock_imagestore::maintenance::check(&s.root, false, |_, _| {}).unwrap();
    assert_eq!(r.invalid.len(), 1, "{:?}", r.invalid);
    assert!(r.invalid[0].0.ends_with(id.as_str()));
    assert!(
        r.invalid[0]
            .1
            .contains("org.tockos.treadmill.manifest-ext.base.blobs"),
        "{}",
        r.invalid[0].1
    );
    // gc does not refuse to run for a manifest it can still read the blobs of (one without
    // a description), and keeps those blobs.
    let m = without(&full, "org.tockos.treadmill.manifest-ext.base.description");
    let id = sha256_id(m.as_bytes());
    write_files(&s.root, &[(StorePath::Image(id), m.into_bytes())]);
    let r = paddock_imagestore::maintenance::gc(&s.root, Duration::ZERO, true).unwrap();
    assert_eq!(r.removed.len(), 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_the_manifest_as_stored() {
    let s = start().await;
    let (id, files) = plain_image("as-stored");
    for (status, body) in put_all(&s, &files).await {
        assert_eq!(status, 201, "{body}");
    }
    for name in [id.to_string(), "as-stored".to_string()] {
        let (status, v) = get_json(&format!("{}/api/v1/images/{name}", s.base)).await;
        assert_eq!(status, 200, "{v}");
        let m = &v["manifest"];
        assert_eq!(m["org.example.unknown"], "kept", "{v}");
        let boot = &m["org.tockos.treadmill.manifest-ext.base.blobs"]["layer-0-boot"];
        assert_eq!(boot["sources"][0]["type"], "HttpGet", "{v}");
        assert_eq!(boot["sources"][0]["url"], "https://example.org/boot", "{v}");
        // The root blob has no `attrs` key in the file: none is made up.
        let root = &m["org.tockos.treadmill.manifest-ext.base.blobs"]["layer-0-root"];
        assert_eq!(
            root["org.tockos.treadmill.manifest-ext.base.attrs"]
                .as_object()
                .unwrap()
                .len(),
            1,
            "{v}"
        );
    }
}

/// Issue 15 item 14: a Treadmill-written manifest with an empty label and an upper-case blob
/// digest is stored, listed (named by its id) and verified for use, its blob found at the
/// lower-case path the store names it by; `manifest_version = 1` is refused on upload and a
/// stored one listed with its problem; Paddock's own builders still want a label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn treadmill_readable_variants_are_decided() {
    let s = start().await;
    let (_, files) = plain_image("lenient");
    let blobs = &files[..2];
    for (status, body) in put_all(&s, blobs).await {
        assert_eq!(status, 201, "{body}");
    }
    let full = String::from_utf8(files[2].1.clone()).unwrap();
    let boot = match &files[0].0 {
        StorePath::Blob(d) => d.to_string(),
        _ => unreachable!(),
    };
    let lenient = full
        .replace("\"lenient\"", "\"\"")
        .replace(&boot, &boot.to_ascii_uppercase());
    let id = sha256_id(lenient.as_bytes());
    let r = put_all(&s, &[(StorePath::Image(id.clone()), lenient.into_bytes())]).await;
    assert_eq!(r[0].0, 201, "{}", r[0].1);
    let (status, v) = get_json(&format!("{}/api/v1/images/{id}", s.base)).await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("problem").is_none(), "{v}");
    assert_eq!(v["label"], "", "{v}");
    paddock_imagestore::LocalStore::new(&s.root)
        .verified_image(&id)
        .unwrap();

    let v1 = full.replace("manifest_version = 0", "manifest_version = 1");
    let v1_id = sha256_id(v1.as_bytes());
    let r = put_all(
        &s,
        &[(StorePath::Image(v1_id.clone()), v1.clone().into_bytes())],
    )
    .await;
    assert_eq!(r[0].0, 400, "{}", r[0].1);
    assert!(r[0].1.contains("manifest_version 1"), "{}", r[0].1);
    write_files(
        &s.root,
        &[(StorePath::Image(v1_id.clone()), v1.into_bytes())],
    );
    let (_, v) = get_json(&format!("{}/api/v1/images/{v1_id}", s.base)).await;
    assert!(
        v["problem"].as_str().unwrap().contains("manifest_version"),
        "{v}"
    );

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("x.sh");
    std::fs::write(&script, "echo x\n").unwrap();
    let e = paddock_imagestore::LocalStore::new(dir.path().join("S"))
        .import(
            &script,
            &paddock_imagestore::import::ImportOptions {
                label: String::new(),
                revision: None,
                description: String::new(),
                entry_point: None,
                ready_on_puppet: false,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("label"), "{e}");
}
