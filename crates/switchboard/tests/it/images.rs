//! Resolving the image a job names against image store servers (`image_urls`): a plain static
//! Treadmill store (no `/api/v1/images`) serves full ids from its store paths (issue 15 item
//! 12), and an image a Paddock store holds but cannot use is refused with its problem
//! (item 10).

use std::time::{Duration, Instant};

use paddock_core::manifest::sha256_id;
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, TestApp};

/// `python3 -m http.server` on loopback serving `root`, killed when dropped.
struct StaticServer {
    base: String,
    child: std::process::Child,
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn static_server(root: &std::path::Path) -> StaticServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 is needed for this test");
    let s = StaticServer {
        base: format!("http://127.0.0.1:{port}"),
        child,
    };
    let t0 = Instant::now();
    while reqwest::get(format!("{}/", s.base)).await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the static server never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s
}

async fn static_treadmill_store_serves_full_ids(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    let script = dir.path().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho hello\n").unwrap();
    let id = paddock_imagestore::LocalStore::new(&root)
        .import(
            &script,
            &paddock_imagestore::import::ImportOptions {
                label: "hello".into(),
                revision: Some(1),
                description: String::new(),
                entry_point: None,
                ready_on_puppet: false,
            },
        )
        .unwrap();
    let www = static_server(&root).await;
    let t = TestApp::start_with(backend, |c| c.image_urls = vec![www.base.clone()]).await;

    let (s, v) = t
        .enqueue_as(
            &t.admin.clone(),
            "board:x",
            json!({"image": id.to_string()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "a full id in a static store: {v}");
    let job = t.job(v["job_id"].as_str().unwrap()).await;
    assert_eq!(job["image_id"], id.to_string(), "{job}");

    // An id the store does not have: 404, as before.
    let other = sha256_id(b"no such image");
    let (s, v) = t
        .enqueue_as(
            &t.admin.clone(),
            "board:x",
            json!({"image": other.to_string()}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // A file at an image path that is not that image (its bytes hash to another id) is not
    // taken for it.
    let wrong = root.join(paddock_core::manifest::image_path(&other));
    std::fs::create_dir_all(wrong.parent().unwrap()).unwrap();
    std::fs::write(&wrong, "not the image").unwrap();
    let (s, v) = t
        .enqueue_as(
            &t.admin.clone(),
            "board:x",
            json!({"image": other.to_string()}),
        )
        .await;
    assert_ne!(s, StatusCode::CREATED, "{v}");

    // A manifest there that is not a usable image (no blobs: Treadmill's reader refuses it)
    // is refused with why, never as a bare "no image".
    let unusable = "manifest_version = 0\n\
        manifest_extensions = [\"org.tockos.treadmill.manifest-ext.base\"]\n\
        \"org.tockos.treadmill.manifest-ext.base.label\" = \"no-blobs\"\n\
        \"org.tockos.treadmill.manifest-ext.base.revision\" = 1\n\
        \"org.tockos.treadmill.manifest-ext.base.description\" = \"\"\n";
    let bad = sha256_id(unusable.as_bytes());
    let path = root.join(paddock_core::manifest::image_path(&bad));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, unusable).unwrap();
    let (s, v) = t
        .enqueue_as(
            &t.admin.clone(),
            "board:x",
            json!({"image": bad.to_string()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("base.blobs"), "{v}");
}
both_backends!(static_treadmill_store_serves_full_ids);

/// A label no store has is a 404 naming the image stores; a store that does not answer is a
/// 502 naming it; an image a Paddock store holds but cannot use is a 422 with its problem.
async fn store_answers_become_statuses(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let www = static_server(&root).await;
    let t = TestApp::start_with(backend, |c| c.image_urls = vec![www.base.clone()]).await;
    let (s, v) = t
        .enqueue_as(&t.admin.clone(), "board:x", json!({"image": "hello"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no image \"hello\" in the image stores"),
        "{v}"
    );

    // Nothing listens on the port of a listener just closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let base = format!("http://{closed}");
    let t = TestApp::start_with(backend, |c| c.image_urls = vec![base.clone()]).await;
    let (s, v) = t
        .enqueue_as(&t.admin.clone(), "board:x", json!({"image": "hello"}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("no image store answered: {base}: ")),
        "{v}"
    );

    // A Paddock store holding an image whose manifest does not hash to its name.
    let store = dir.path().join("S");
    let script = dir.path().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho hello\n").unwrap();
    let id = paddock_imagestore::LocalStore::new(&store)
        .import(
            &script,
            &paddock_imagestore::import::ImportOptions {
                label: "hello".into(),
                revision: Some(1),
                description: String::new(),
                entry_point: None,
                ready_on_puppet: false,
            },
        )
        .unwrap();
    let path = store.join(paddock_core::manifest::image_path(&id));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"\n# edited\n");
    std::fs::write(&path, bytes).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = paddock_imagestore_server::server::ServerSettings {
        root: store.clone(),
        listen: listener.local_addr().unwrap(),
        max_upload_bytes: 1 << 20,
    };
    let base = format!("http://{}", settings.listen);
    tokio::spawn(async move {
        let _ =
            paddock_imagestore_server::server::serve(&settings, listener, std::future::pending())
                .await;
    });
    let t = TestApp::start_with(backend, |c| c.image_urls = vec![base.clone()]).await;
    let (s, v) = t
        .enqueue_as(
            &t.admin.clone(),
            "board:x",
            json!({"image": id.to_string()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("cannot be used: "),
        "{v}"
    );
}
both_backends!(store_answers_become_statuses);
