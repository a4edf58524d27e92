//! The store server over real HTTP on loopback: uploads verified before they are visible,
//! traversal refused, ranges, caching headers, `all.txt`, label resolution, and the mirror
//! client against it (a Treadmill-format store, resume, corruption).

#![allow(clippy::unwrap_used)]

#[path = "support/tmpfs.rs"]
mod tmpfs;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use paddock_client::StoreClient;
use paddock_core::ImageId;
use paddock_core::manifest::{ImageManifest, sha256_id};
use paddock_imagestore::mirror::{Durability, MirrorOptions, mirror, try_fetch_file};
use paddock_imagestore::paths::StorePath;
use paddock_imagestore_server::server::ServerSettings;

struct Server {
    base: String,
    addr: std::net::SocketAddr,
    root: PathBuf,
    token: String,
    _dir: Option<tempfile::TempDir>,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_at(dir.path().join("S")).await;
    s._dir = Some(dir);
    s
}

/// A server on the store at `root` (created).
async fn start_at(root: PathBuf) -> Server {
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
        addr,
        root,
        token,
        _dir: None,
    }
}

fn digest(bytes: &[u8]) -> ImageId {
    sha256_id(bytes)
}

fn blob_url(base: &str, d: &ImageId) -> String {
    format!("{base}/{}", StorePath::Blob(d.clone()).relative().display())
}

fn image_url(base: &str, d: &ImageId) -> String {
    format!(
        "{base}/{}",
        StorePath::Image(d.clone()).relative().display()
    )
}

/// A manifest in Treadmill's own spelling: a layered qcow2 image of two blobs.
fn treadmill_manifest(label: &str, revision: u64, lower: &[u8], head: &[u8]) -> String {
    format!(
        r#"manifest_version = 0
manifest_extensions = ["org.tockos.treadmill.manifest-ext.base"]
"org.tockos.treadmill.manifest-ext.base.label" = "{label}"
"org.tockos.treadmill.manifest-ext.base.revision" = {revision}
"org.tockos.treadmill.manifest-ext.base.description" = "layered test image"

["org.tockos.treadmill.manifest-ext.base.attrs"]
"org.tockos.treadmill.image.qemu_layered_v0.head" = "layer-1"

["org.tockos.treadmill.manifest-ext.base.blobs".layer-0]
"org.tockos.treadmill.manifest-ext.base.sha256-digest" = "{}"
"org.tockos.treadmill.manifest-ext.base.size" = {}
"org.tockos.treadmill.manifest-ext.base.attrs" = {{}}

["org.tockos.treadmill.manifest-ext.base.blobs".layer-1]
"org.tockos.treadmill.manifest-ext.base.sha256-digest" = "{}"
"org.tockos.treadmill.manifest-ext.base.size" = {}

["org.tockos.treadmill.manifest-ext.base.blobs".layer-1."org.tockos.treadmill.manifest-ext.base.attrs"]
"org.tockos.treadmill.image.qemu_layered_v0.lower" = "layer-0"
"#,
        digest(lower),
        lower.len(),
        digest(head),
        head.len()
    )
}

/// Sends a raw request line (no client-side normalisation of `..` or `%2F`); returns the
/// status code.
fn raw_status(addr: std::net::SocketAddr, method: &str, target: &str, token: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn wait_index(root: &Path, line: &str) -> String {
    for _ in 0..200 {
        let text = std::fs::read_to_string(root.join("all.txt")).unwrap_or_default();
        if text.lines().any(|l| l == line) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("all.txt never listed {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_verified_and_served_with_ranges_and_cache_headers() {
    let s = start().await;
    let http = reqwest::Client::new();
    let lower = vec![7u8; 300_000];
    let head = b"head layer".to_vec();
    let (dl, dh) = (digest(&lower), digest(&head));

    // No token, wrong token: 401.
    let r = http
        .put(blob_url(&s.base, &dl))
        .body(lower.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .put(blob_url(&s.base, &dl))
        .bearer_auth("pdi_nope")
        .body(lower.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Its body may be unread: the connection is not reused (a client writing its next request
    // into it got "broken pipe" now and then).
    assert_eq!(r.headers()["connection"], "close");
    // Content that does not match its name: 400, and nothing is left anywhere.
    let r = http
        .put(blob_url(&s.base, &dl))
        .bearer_auth(&s.token)
        .body(head.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(!s.root.join(StorePath::Blob(dl.clone()).relative()).exists());
    assert_eq!(std::fs::read_dir(s.root.join("tmp")).unwrap().count(), 0);

    // A manifest before its blobs: refused.
    let m = treadmill_manifest("vm-test", 1, &lower, &head);
    let id = digest(m.as_bytes());
    let r = http
        .put(image_url(&s.base, &id))
        .bearer_auth(&s.token)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("layer-0"));

    // Eight concurrent uploads of the same blob all succeed; one file results.
    let mut puts = Vec::new();
    for _ in 0..8 {
        let (http, url, t, body) = (
            http.clone(),
            blob_url(&s.base, &dl),
            s.token.clone(),
            lower.clone(),
        );
        puts.push(tokio::spawn(async move {
            http.put(url)
                .bearer_auth(t)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for p in puts {
        assert!(matches!(p.await.unwrap(), 200 | 201));
    }
    let r = http
        .put(blob_url(&s.base, &dh))
        .bearer_auth(&s.token)
        .body(head.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(std::fs::read_dir(s.root.join("tmp")).unwrap().count(), 0);

    // A manifest whose bytes are not its name: 400.
    let r = http
        .put(image_url(&s.base, &dl))
        .bearer_auth(&s.token)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .put(image_url(&s.base, &id))
        .bearer_auth(&s.token)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let index = wait_index(&s.root, &StorePath::Image(id.clone()).index_line()).await;
    assert_eq!(
        index,
        {
            let mut l = [
                StorePath::Blob(dl.clone()).index_line(),
                StorePath::Blob(dh.clone()).index_line(),
                StorePath::Image(id.clone()).index_line(),
            ];
            l.sort();
            l.join("\n") + "\n"
        },
        "all.txt is sorted find -type f output"
    );
    let served = http
        .get(format!("{}/all.txt", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, index);

    // GET, HEAD, Range, ETag, If-None-Match.
    let url = blob_url(&s.base, &dl);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], format!("\"{dl}\"").as_str());
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), lower.as_slice());
    let r = http.head(&url).send().await.unwrap();
    assert_eq!(r.headers()["content-length"], "300000");
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    let r = http
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/300000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &lower[100..200]);
    let r = http
        .get(&url)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 10);
    let r = http
        .get(&url)
        .header("range", "bytes=999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = http
        .get(&url)
        .header("if-none-match", format!("\"{dl}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let other = digest(b"absent");
    assert_eq!(
        http.get(blob_url(&s.base, &other))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Traversal and malformed paths: 400, whatever the method.
    let hex = "aabbcc".to_string() + &"0".repeat(58);
    for target in [
        "/blobs/../../etc/passwd".to_string(),
        "/blobs/aa/bb/cc/..%2F..%2Fetc%2Fpasswd".to_string(),
        format!("/blobs/aa%2Fbb/cc/{hex}"),
        format!("/blobs/aa/bb/cd/{hex}"),
        format!("/blobs/AA/BB/CC/{}", hex.to_uppercase()),
        "/images/aa/bb/cc/not-hex".to_string(),
    ] {
        assert_eq!(
            raw_status(s.addr, "GET", &target, &s.token),
            400,
            "GET {target}"
        );
        assert_eq!(
            raw_status(s.addr, "PUT", &target, &s.token),
            400,
            "PUT {target}"
        );
    }

    // Listing and label resolution.
    let list: serde_json::Value = http
        .get(format!("{}/api/v1/images", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["images"][0]["label"], "vm-test");
    assert_eq!(list["images"][0]["size"], 300_000 + head.len());
    let m2 = treadmill_manifest("vm-test", 2, &lower, &head);
    let id2 = digest(m2.as_bytes());
    let r = http
        .put(image_url(&s.base, &id2))
        .bearer_auth(&s.token)
        .body(m2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let shown: serde_json::Value = http
        .get(format!("{}/api/v1/images/vm-test", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["id"], id2.to_string());
    assert_eq!(shown["revision"], 2);
    let r = http
        .get(format!("{}/api/v1/images/vm-test@1", s.base))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["id"], id.to_string());
    let r = http
        .get(format!("{}/api/v1/images/nope", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Writes a Treadmill-format store by hand (as `rsync` of a Nix build result would leave it).
fn write_treadmill_store(root: &Path, images: usize) -> Vec<ImageId> {
    let mut ids = Vec::new();
    for i in 0..images {
        let lower = format!("lower layer of image {i}")
            .repeat(1000)
            .into_bytes();
        let head = format!("head {i}").into_bytes();
        for b in [&lower, &head] {
            let p = root.join(StorePath::Blob(digest(b)).relative());
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        }
        let m = treadmill_manifest(&format!("vm-{i}"), 1, &lower, &head);
        let id = digest(m.as_bytes());
        let p = root.join(StorePath::Image(id.clone()).relative());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, m).unwrap();
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_copies_a_treadmill_store_resumes_and_refuses_corruption() {
    let s = start().await;
    let ids = write_treadmill_store(&s.root, 5);
    paddock_imagestore::index::write(&s.root).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("M");

    // A partial download from an earlier, interrupted run is continued with Range.
    let first = ImageManifest::parse(
        &std::fs::read(s.root.join(StorePath::Image(ids[0].clone()).relative())).unwrap(),
    )
    .unwrap();
    let big: ImageId = first.blobs["layer-0"].sha256_digest.parse().unwrap();
    let big_bytes = std::fs::read(s.root.join(StorePath::Blob(big.clone()).relative())).unwrap();
    std::fs::create_dir_all(m.join(".partial")).unwrap();
    std::fs::write(
        m.join(".partial").join(format!("{big}.part")),
        &big_bytes[..big_bytes.len() / 2],
    )
    .unwrap();

    let opts = MirrorOptions::default();
    let r = mirror(&s.base, &m, &opts).await.unwrap();
    assert_eq!(r.listed, 15);
    assert_eq!(r.fetched, 15, "{:?}", r.failed);
    assert_eq!(r.resumed, 1);
    assert!(r.failed.is_empty());
    assert!(
        r.fetched_bytes < 5 * 22_000 + 1000,
        "the resumed half was not fetched again"
    );
    // Every mirrored manifest parses, with Treadmill's layered attributes, and verifies.
    let store = paddock_imagestore::LocalStore::new(&m);
    for id in &ids {
        let img = store.verified_image(id).unwrap();
        assert_eq!(
            img.manifest.attrs["org.tockos.treadmill.image.qemu_layered_v0.head"],
            "layer-1"
        );
        assert_eq!(
            img.manifest.blobs["layer-1"].attrs["org.tockos.treadmill.image.qemu_layered_v0.lower"],
            "layer-0"
        );
    }
    assert_eq!(
        std::fs::read_to_string(m.join("all.txt")).unwrap(),
        std::fs::read_to_string(s.root.join("all.txt")).unwrap()
    );
    // Second run: nothing to transfer.
    let r = mirror(&s.base, &m, &opts).await.unwrap();
    assert_eq!((r.fetched, r.present, r.fetched_bytes), (0, 15, 0));

    // A corrupt file on the server is refused, reported, and never lands in the mirror.
    let extra = write_treadmill_store(&s.root, 6).pop().unwrap();
    let em = ImageManifest::parse(
        &std::fs::read(s.root.join(StorePath::Image(extra.clone()).relative())).unwrap(),
    )
    .unwrap();
    let bad: ImageId = em.blobs["layer-1"].sha256_digest.parse().unwrap();
    std::fs::write(
        s.root.join(StorePath::Blob(bad.clone()).relative()),
        "tampered",
    )
    .unwrap();
    paddock_imagestore::index::write(&s.root).unwrap();
    let r = mirror(&s.base, &m, &opts).await.unwrap();
    assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
    assert!(r.failed[0].0.contains(bad.as_str()));
    assert!(r.failed[0].1.contains("hashes to"), "{}", r.failed[0].1);
    assert!(!m.join(StorePath::Blob(bad.clone()).relative()).exists());

    // fetch_file alone: a digest mismatch leaves no partial file behind.
    let counter = AtomicU64::new(0);
    let e = try_fetch_file(
        &StoreClient::new(&s.base, None),
        &StorePath::Blob(bad.clone()),
        &m,
        &counter,
        Durability::Fsync,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("discarded"), "{e}");
    assert!(!m.join(".partial").join(format!("{bad}.part")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_reads_a_plain_static_file_server() {
    // The Treadmill store as it is served today: static files (python3's http.server here,
    // nginx in production), all.txt made by find.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let ids = write_treadmill_store(&root, 3);
    std::fs::write(root.join("image.txt"), "not part of the store\n").unwrap();
    let find = std::process::Command::new("sh")
        .arg("-c")
        .arg("find -type f ! -path './image.txt' ! -path './all.txt' > all.txt")
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(find.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut py = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(&root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 is needed for this test");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/all.txt")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = dir.path().join("M");
    let r = mirror(&base, &m, &MirrorOptions::default()).await;
    let _ = py.kill();
    let _ = py.wait();
    let r = r.unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.fetched, 9);
    let store = paddock_imagestore::LocalStore::new(&m);
    for id in &ids {
        store.verified_image(id).unwrap();
    }
    assert!(!m.join("image.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_is_resumed() {
    let s = start().await;
    let blob: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let d = digest(&blob);
    let rel = StorePath::Blob(d.clone()).relative();
    std::fs::create_dir_all(s.root.join(&rel).parent().unwrap()).unwrap();
    std::fs::write(s.root.join(&rel), &blob).unwrap();
    // A server that sends half the body, then drops the connection.
    let half = blob[..blob.len() / 2].to_vec();
    let len = blob.len();
    let flaky = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let flaky_addr = flaky.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut c, _) = flaky.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = c.read(&mut buf);
        write!(c, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").unwrap();
        c.write_all(&half).unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let counter = AtomicU64::new(0);
    let http = reqwest::Client::new();
    let path = StorePath::Blob(d.clone());
    let e = try_fetch_file(
        &StoreClient::with_http(&format!("http://{flaky_addr}"), None, http.clone()),
        &path,
        dir.path(),
        &counter,
        Durability::Deferred,
    )
    .await
    .unwrap_err();
    assert!(!dir.path().join(&rel).exists(), "{e}");
    let part = dir.path().join(".partial").join(format!("{d}.part"));
    assert_eq!(
        std::fs::metadata(&part).unwrap().len() as usize,
        len / 2,
        "{e}"
    );
    // The next attempt (here from the real server) asks only for the rest.
    let paddock_imagestore::mirror::Fetched { bytes, resumed } = try_fetch_file(
        &StoreClient::with_http(&s.base, None, http),
        &path,
        dir.path(),
        &counter,
        Durability::Deferred,
    )
    .await
    .unwrap();
    assert!(resumed);
    assert_eq!(bytes as usize, len - len / 2);
    assert_eq!(std::fs::read(dir.path().join(&rel)).unwrap(), blob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_after_a_restart_refetches_what_was_not_on_disk() {
    use paddock_imagestore::unsynced::MARKER;
    let s = start().await;
    let ids = write_treadmill_store(&s.root, 3);
    paddock_imagestore::index::write(&s.root).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("M");
    let opts = MirrorOptions::default();
    let r = mirror(&s.base, &m, &opts).await.unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    // Nothing was fsynced file by file: the marker says so, with this boot's id.
    let marker = std::fs::read_to_string(m.join(MARKER)).unwrap();
    let boot = paddock_imagestore::unsynced::boot_id().unwrap();
    assert!(marker.contains(&format!("boot {boot}")), "{marker}");

    // What a power cut before writeback leaves: a file at its final name with other content.
    let first = ImageManifest::parse(
        &std::fs::read(m.join(StorePath::Image(ids[0].clone()).relative())).unwrap(),
    )
    .unwrap();
    let lost: ImageId = first.blobs["layer-0"].sha256_digest.parse().unwrap();
    let lost_path = m.join(StorePath::Blob(lost.clone()).relative());
    let good = std::fs::read(&lost_path).unwrap();
    std::fs::write(&lost_path, vec![0u8; good.len()]).unwrap();

    // Same boot: the page cache is the truth, one syncfs settles it and nothing is re-checked
    // (the zeroed file stays: only a restart can lose data this way).
    let r = mirror(&s.base, &m, &opts).await.unwrap();
    assert!(r.recovery.synced);
    assert_eq!(r.recovery.rechecked, 0);
    assert_eq!(r.fetched, 0);

    // Another boot: every file changed since the marker is hashed again, the bad one is
    // removed and fetched again.
    let since = marker.lines().find(|l| l.starts_with("since")).unwrap();
    std::fs::write(
        m.join(MARKER),
        format!("boot before-the-power-cut\n{since}\n"),
    )
    .unwrap();
    let r = mirror(&s.base, &m, &opts).await.unwrap();
    assert!(!r.recovery.synced);
    assert!(r.recovery.rechecked >= 6, "{:?}", r.recovery);
    assert_eq!(
        r.recovery.removed,
        vec![StorePath::Blob(lost.clone()).index_line()]
    );
    assert_eq!(r.fetched, 1);
    assert_eq!(std::fs::read(&lost_path).unwrap(), good);

    // --sync: everything is on disk at the end and the marker is gone.
    let r = mirror(
        &s.base,
        &m,
        &MirrorOptions {
            sync: true,
            ..MirrorOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(r.failed.is_empty());
    assert!(!m.join(MARKER).exists());
}

/// Every file under `images/` and `blobs/` of `root` hashes to its name (nothing truncated at a
/// final path), `all.txt` (when there) lists only such files, and `check` finds nothing wrong.
/// Returns the store paths found.
fn assert_store_whole(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.join("images"), root.join("blobs")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            let sp = StorePath::parse(&rel).unwrap_or_else(|_| panic!("stray file {rel}"));
            let bytes = std::fs::read(&p).unwrap();
            assert_eq!(
                &digest(&bytes),
                sp.digest().unwrap(),
                "{rel} ({} bytes) does not hash to its name",
                bytes.len()
            );
            found.push(sp.index_line());
        }
    }
    found.sort();
    if let Ok(index) = std::fs::read_to_string(root.join("all.txt")) {
        for line in index.lines() {
            assert!(found.iter().any(|f| f == line), "all.txt lists {line}");
        }
    }
    let r = paddock_imagestore::maintenance::check(root, false, |_, _| {}).unwrap();
    assert!(r.corrupt.is_empty(), "check: {:?}", r.corrupt);
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_on_a_full_disk_are_refused_never_published_truncated() {
    let Some(fs) = tmpfs::Tmpfs::mount("20m", "server full disk") else {
        return;
    };
    let s = start_at(fs.path().join("S")).await;
    let http = reqwest::Client::new();
    let blobs = tmpfs::distinct_blobs(5, 7_000_000);
    let (mut stored, mut refused) = (Vec::new(), Vec::new());
    for b in &blobs {
        let d = digest(b);
        let r = http
            .put(blob_url(&s.base, &d))
            .bearer_auth(&s.token)
            .body(b.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let at = s.root.join(StorePath::Blob(d.clone()).relative());
        match status {
            201 => {
                let on_disk = std::fs::read(&at).unwrap();
                assert_eq!(
                    on_disk.len(),
                    b.len(),
                    "201 but {} bytes at {at:?}",
                    on_disk.len()
                );
                assert_eq!(digest(&on_disk), d, "201 but another digest at {at:?}");
                let got = http.get(blob_url(&s.base, &d)).send().await.unwrap();
                assert_eq!(got.bytes().await.unwrap().len(), b.len());
                stored.push(b);
            }
            507 => {
                assert!(
                    text.contains("No space") || text.contains("space"),
                    "{text}"
                );
                assert!(!at.exists(), "a refused upload is at {at:?}");
                let got = http.get(blob_url(&s.base, &d)).send().await.unwrap();
                assert_eq!(got.status(), 404);
                refused.push(d);
            }
            other => panic!("PUT: {other} {text}"),
        }
    }
    assert_eq!(stored.len(), 2, "two 7 MB blobs fit in 20 MiB");
    assert_eq!(refused.len(), 3);
    // Nothing is left behind in tmp/: the space of a refused upload is free again.
    assert_eq!(std::fs::read_dir(s.root.join("tmp")).unwrap().count(), 0);

    // A manifest when not one byte is free: 507 and not at its final path; then 201.
    let m = treadmill_manifest("full", 1, stored[0], stored[1]);
    let id = digest(m.as_bytes());
    let filler = tmpfs::fill(fs.path());
    let r = http
        .put(image_url(&s.base, &id))
        .bearer_auth(&s.token)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507, "{}", r.text().await.unwrap());
    assert!(
        !s.root
            .join(StorePath::Image(id.clone()).relative())
            .exists()
    );
    std::fs::remove_file(filler).unwrap();
    let r = http
        .put(image_url(&s.base, &id))
        .bearer_auth(&s.token)
        .body(m)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    wait_index(&s.root, &StorePath::Image(id.clone()).index_line()).await;
    let found = assert_store_whole(&s.root);
    assert_eq!(found.len(), 3, "{found:?}");
    for d in &refused {
        assert!(!found.contains(&StorePath::Blob(d.clone()).index_line()));
    }
}

/// A server whose store (on the normal disk) holds one image of `blobs`; returns its id.
async fn serve_image(blobs: &[Vec<u8>]) -> (Server, ImageId) {
    let s = start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = paddock_imagestore::LocalStore::new(&s.root);
    let mut opts_blobs = std::collections::BTreeMap::new();
    for (i, b) in blobs.iter().enumerate() {
        let f = dir.path().join(format!("b{i}"));
        std::fs::write(&f, b).unwrap();
        opts_blobs.insert(format!("b{i}"), (f, std::collections::BTreeMap::new()));
    }
    let id = store
        .assemble(&paddock_imagestore::import::AssembleOptions {
            label: "big".into(),
            revision: 1,
            description: String::new(),
            attrs: Default::default(),
            blobs: opts_blobs,
        })
        .unwrap();
    paddock_imagestore::index::write(&s.root).unwrap();
    (s, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_onto_a_full_disk_fails_and_publishes_only_whole_files() {
    let Some(fs) = tmpfs::Tmpfs::mount("20m", "mirror full disk") else {
        return;
    };
    // Large blobs (streamed through `.partial/`) and small ones (taken whole): 34 MB in all.
    let mut blobs = tmpfs::distinct_blobs(3, 7_000_000);
    blobs.extend(tmpfs::distinct_blobs(14, 900_000).into_iter().map(|mut b| {
        b[8] = 0xff;
        b
    }));
    let (s, _) = serve_image(&blobs).await;
    let m = fs.path().join("M");
    let opts = MirrorOptions {
        attempts: 1,
        ..MirrorOptions::default()
    };
    let r = mirror(&s.base, &m, &opts).await.unwrap();
    assert!(!r.failed.is_empty(), "34 MB do not fit in 20 MiB");
    assert!(
        r.failed.iter().any(|(_, why)| why.contains("space")),
        "{:?}",
        r.failed
    );
    let found = assert_store_whole(&m);
    assert_eq!(found.len(), r.fetched, "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_onto_a_full_disk_fails_and_leaves_no_truncated_file() {
    let Some(fs) = tmpfs::Tmpfs::mount("20m", "pull full disk") else {
        return;
    };
    let (s, id) = serve_image(&tmpfs::distinct_blobs(3, 7_000_000)).await;
    let client = paddock_client::StoreClient::new(&s.base, None);
    let p = fs.path().join("P");
    let e = paddock_imagestore::transfer::pull(&client, &id.to_string(), &p)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("space"), "{e}");
    let found = assert_store_whole(&p);
    assert!(
        !found.contains(&StorePath::Image(id.clone()).index_line()),
        "no manifest without its blobs"
    );
    assert!(found.len() <= 2, "{found:?}");
}

#[test]
fn an_import_onto_a_full_disk_fails_and_leaves_no_truncated_file() {
    let Some(fs) = tmpfs::Tmpfs::mount("20m", "import full disk") else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let store = paddock_imagestore::LocalStore::new(fs.path().join("S"));
    let mut results = Vec::new();
    for (i, b) in tmpfs::distinct_blobs(4, 7_000_000).iter().enumerate() {
        let f = src.path().join(format!("run-{i}.sh"));
        std::fs::write(&f, b).unwrap();
        let opts = paddock_imagestore::import::ImportOptions {
            label: format!("img-{i}"),
            revision: None,
            description: String::new(),
            entry_point: None,
            ready_on_puppet: false,
        };
        results.push(store.import(&f, &opts));
    }
    // A directory (archived in tmp/ first) when the disk is full.
    let tree = src.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("run.sh"), vec![b'x'; 7_000_000]).unwrap();
    let opts = paddock_imagestore::import::ImportOptions {
        label: "tree".into(),
        revision: None,
        description: String::new(),
        entry_point: None,
        ready_on_puppet: false,
    };
    results.push(store.import(&tree, &opts));
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 2, "two 7 MB blobs fit in 20 MiB");
    for r in &results {
        if let Err(e) = r {
            assert!(e.to_string().contains("space"), "{e}");
        }
    }
    for id in ok {
        store.verified_image(id).unwrap();
    }
    assert_eq!(store.list().unwrap().len(), 2);
    assert_eq!(assert_store_whole(store.root()).len(), 4);
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_in_the_store_are_not_served_listed_or_passed_by_check() {
    let s = start().await;
    let http = reqwest::Client::new();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("passwd");
    std::fs::write(&secret, "root:x:0:0::/root:/bin/sh\n").unwrap();
    let link_at = |sp: &StorePath| {
        let p = s.root.join(sp.relative());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&secret, &p).unwrap();
        p
    };
    // A link at a blob path and at a manifest path, to a file outside the store.
    let blob = StorePath::Blob(digest(b"some blob"));
    let image = StorePath::Image(digest(b"some manifest"));
    let blob_link = link_at(&blob);
    let image_link = link_at(&image);
    // A directory link out of the store whose file even hashes to its name.
    let content = b"outside the store".to_vec();
    let d = digest(&content);
    let escaped = StorePath::Blob(d.clone());
    let rel = escaped.relative();
    let shard = rel.parent().unwrap(); // blobs/aa/bb/cc
    std::fs::create_dir_all(outside.path().join("cc")).unwrap();
    std::fs::write(
        outside.path().join("cc").join(rel.file_name().unwrap()),
        &content,
    )
    .unwrap();
    std::fs::create_dir_all(s.root.join(shard.parent().unwrap())).unwrap();
    std::os::unix::fs::symlink(outside.path().join("cc"), s.root.join(shard)).unwrap();

    for sp in [&blob, &image, &escaped] {
        let url = format!("{}/{}", s.base, sp.relative().display());
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 404, "GET {url}");
        let r = http.head(&url).send().await.unwrap();
        assert_eq!(r.status(), 404, "HEAD {url}");
    }
    // A regular file is still served.
    let real = b"a real blob".to_vec();
    let r = http
        .put(blob_url(&s.base, &digest(&real)))
        .bearer_auth(&s.token)
        .body(real.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .get(blob_url(&s.base, &digest(&real)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Not in all.txt.
    let index = wait_index(&s.root, &StorePath::Blob(digest(&real)).index_line()).await;
    assert_eq!(index.lines().count(), 1, "{index}");

    // check names each link as a problem.
    let r = paddock_imagestore::maintenance::check(&s.root, false, |_, _| {}).unwrap();
    let named: Vec<String> = r.links.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(named.len(), 3, "{named:?}");
    for p in [&blob_link, &image_link, &s.root.join(shard)] {
        assert!(
            named.contains(&p.display().to_string()),
            "{p:?} not in {named:?}"
        );
    }

    // An upload never writes through a directory link: 500, the file outside untouched.
    use std::os::unix::fs::MetadataExt;
    let outside_file = outside.path().join("cc").join(rel.file_name().unwrap());
    let ino = std::fs::metadata(&outside_file).unwrap().ino();
    let r = http
        .put(blob_url(&s.base, &d))
        .bearer_auth(&s.token)
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(std::fs::metadata(&outside_file).unwrap().ino(), ino);
    assert_eq!(
        std::fs::read_dir(outside.path().join("cc"))
            .unwrap()
            .count(),
        1
    );

    // An upload to a blob path that holds a link replaces the link (not the file it names).
    let blob_content = b"some blob".to_vec();
    let r = http
        .put(blob_url(&s.base, &digest(&blob_content)))
        .bearer_auth(&s.token)
        .body(blob_content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "root:x:0:0::/root:/bin/sh\n"
    );
    let r = http
        .get(blob_url(&s.base, &digest(&blob_content)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), blob_content.as_slice());

    // check --repair moves the links left (never what they point to) to quarantine/.
    let r = paddock_imagestore::maintenance::check(&s.root, true, |_, _| {}).unwrap();
    assert_eq!(r.links.len(), 2, "{:?}", r.links);
    assert_eq!(r.links_quarantined.len(), 2);
    assert!(
        r.links_quarantined
            .iter()
            .all(|q| q.starts_with(s.root.join("quarantine")))
    );
    assert!(secret.exists() && outside.path().join("cc").is_dir());
    let r = paddock_imagestore::maintenance::check(&s.root, false, |_, _| {}).unwrap();
    assert!(r.links.is_empty() && r.corrupt.is_empty(), "{r:?}");
}

/// What a mirror reported through `MirrorProgress`.
#[derive(Default)]
struct Recorded {
    started: Vec<usize>,
    total_bytes: Vec<u64>,
    bytes: u64,
    /// `(path, Ok(bytes) or Err(why))` of each file done.
    done: Vec<(String, Result<u64, String>)>,
    /// How many files were done when the byte total came, and when the run finished.
    done_before_total: Vec<usize>,
    finished: usize,
    done_before_finished: usize,
}

struct Recorder(std::sync::Mutex<Recorded>);

impl paddock_imagestore::mirror::MirrorProgress for Recorder {
    fn started(&self, files: usize) {
        self.0.lock().unwrap().started.push(files);
    }
    fn total_bytes(&self, bytes: u64) {
        let mut r = self.0.lock().unwrap();
        r.total_bytes.push(bytes);
        let n = r.done.len();
        r.done_before_total.push(n);
    }
    fn bytes(&self, n: u64) {
        self.0.lock().unwrap().bytes += n;
    }
    fn file_done(&self, path: &str, outcome: Result<u64, &paddock_imagestore::mirror::FetchError>) {
        self.0
            .lock()
            .unwrap()
            .done
            .push((path.to_string(), outcome.map_err(|e| e.to_string())));
    }
    fn finished(&self) {
        let mut r = self.0.lock().unwrap();
        r.finished += 1;
        r.done_before_finished = r.done.len();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_progress_reports_every_file_and_byte() {
    let s = start().await;
    let mut ids = write_treadmill_store(&s.root, 3);
    // One image with a blob streamed (over 1 MiB) rather than taken whole.
    let (lower, head) = (vec![7u8; 2_500_000], b"big head".to_vec());
    for b in [&lower, &head] {
        let p = s.root.join(StorePath::Blob(digest(b)).relative());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    }
    let m = treadmill_manifest("big", 1, &lower, &head);
    let id = digest(m.as_bytes());
    let p = s.root.join(StorePath::Image(id.clone()).relative());
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, &m).unwrap();
    ids.push(id);
    // One blob corrupt on the server: it fails every attempt.
    let first = ImageManifest::parse(
        &std::fs::read(s.root.join(StorePath::Image(ids[0].clone()).relative())).unwrap(),
    )
    .unwrap();
    let bad: ImageId = first.blobs["layer-1"].sha256_digest.parse().unwrap();
    std::fs::write(
        s.root.join(StorePath::Blob(bad.clone()).relative()),
        "tampered",
    )
    .unwrap();
    paddock_imagestore::index::write(&s.root).unwrap();

    // The byte total the manifests give.
    let mut sizes = std::collections::HashMap::new();
    for id in &ids {
        let m = ImageManifest::parse(
            &std::fs::read(s.root.join(StorePath::Image(id.clone()).relative())).unwrap(),
        )
        .unwrap();
        for b in m.blobs.values() {
            sizes.insert(b.sha256_digest.clone(), b.size);
        }
    }
    let expected_total: u64 = sizes.values().sum();

    let dir = tempfile::tempdir().unwrap();
    let recorder = std::sync::Arc::new(Recorder(Default::default()));
    let opts = MirrorOptions {
        attempts: 2,
        ..MirrorOptions::default()
    };
    let r = paddock_imagestore::mirror::mirror_with_progress(
        &s.base,
        &dir.path().join("M"),
        &opts,
        recorder.clone(),
    )
    .await
    .unwrap();
    assert_eq!((r.listed, r.fetched, r.failed.len()), (12, 11, 1), "{r:?}");

    let rec = recorder.0.lock().unwrap();
    assert_eq!(rec.started, vec![12]);
    assert_eq!(rec.total_bytes, vec![expected_total]);
    // The byte total comes once the 4 manifests are in, before any blob.
    assert_eq!(rec.done_before_total, vec![4]);
    assert_eq!((rec.finished, rec.done_before_finished), (1, 12));
    let done = &rec.done;
    assert_eq!(done.len(), 12);
    let fetched: Vec<u64> = done.iter().filter_map(|(_, o)| o.clone().ok()).collect();
    assert_eq!(fetched.len(), r.fetched);
    assert_eq!(fetched.iter().sum::<u64>(), r.fetched_bytes);
    let failed: Vec<_> = done.iter().filter(|(_, o)| o.is_err()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, StorePath::Blob(bad.clone()).index_line());
    assert_eq!(
        failed[0].1.as_ref().unwrap_err(),
        &r.failed[0].1,
        "the same error as the report's"
    );
    // Every byte received is reported: the files fetched, and the corrupt one once per attempt.
    assert_eq!(rec.bytes, r.fetched_bytes + 2 * "tampered".len() as u64);
    assert!(r.fetched_bytes > 2_500_000);
}

/// `StoreClient` reads the image API into `paddock_core::api::images`' types; the server writes
/// the keys sorted, as it did before the types; a label the API does not know is missing, a
/// full id is looked for at its store path; a call limit ends a call that gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_client_reads_the_image_api_typed() {
    use paddock_client::{Found, StoreApiError as ClientError, StoreClient};

    let (s, id) = serve_image(&[b"hello".to_vec()]).await;
    let raw = reqwest::get(format!("{}/api/v1/images", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sorted: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(serde_json::to_string(&sorted).unwrap(), raw);

    let client = StoreClient::new(&s.base, None).call_limit(Duration::from_secs(10));
    let list = client.list().await.unwrap();
    assert_eq!(serde_json::to_string(&list).unwrap(), raw);
    assert_eq!(list.images.len(), 1);
    assert_eq!(list.images[0].id, id);
    assert_eq!(list.images[0].label, "big");
    assert_eq!(list.images[0].problem, None);

    let raw_shown = reqwest::get(format!("{}/api/v1/images/big", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shown = client.show("big").await.unwrap();
    assert_eq!(serde_json::to_string(&shown).unwrap(), raw_shown);
    assert_eq!(shown.id, id);
    assert_eq!(shown.summary(), list.images[0]);
    let blobs = &shown.manifest.as_ref().unwrap()["org.tockos.treadmill.manifest-ext.base.blobs"];
    assert!(blobs["b0"].is_object(), "{shown:?}");

    match client.find("big@1").await.unwrap() {
        Found::Shown(s) => assert_eq!(s.id, id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.find("nope").await.unwrap(),
        Found::Missing { .. }
    ));
    let other = sha256_id(b"no such image");
    match client.find(&other.to_string()).await.unwrap() {
        Found::ByPath {
            id,
            manifest: Ok(None),
        } => assert_eq!(id, other),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.show("nope").await,
        Err(ClientError::NotFound { .. })
    ));

    // A server that takes the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let t0 = std::time::Instant::now();
    let e = StoreClient::new(&format!("http://{addr}"), None)
        .call_limit(Duration::from_millis(300))
        .show("big")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Http { .. }), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    held.abort();
}
