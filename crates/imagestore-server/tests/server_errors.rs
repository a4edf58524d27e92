//! A server error (5xx) answers a request id and no internal text; the cause is logged with
//! that id. (Its own test binary: it installs the process's log subscriber to read the log.)

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use paddock_imagestore_server::server::ServerSettings;

/// The log, as the fmt subscriber writes it.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_names_a_request_id_and_logs_the_cause_under_it() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("S");
    std::fs::create_dir_all(root.join("images")).unwrap();
    // A file where the listing expects a shard directory: listing images fails inside.
    std::fs::write(root.join("images").join("zz"), "not a directory").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = ServerSettings {
        root: root.clone(),
        listen: addr,
        max_upload_bytes: 1 << 20,
    };
    tokio::spawn(async move {
        paddock_imagestore_server::server::serve(&settings, listener, std::future::pending())
            .await
            .unwrap();
    });

    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for path in ["/api/v1/images", "/api/v1/images/some-label"] {
        let r = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500, "{path}");
        let id = r
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let body = r.text().await.unwrap();
        assert_eq!(
            body,
            format!("internal error (logged with request id {id})\n"),
            "{path}"
        );
        // Nothing of the cause: no path, no OS error.
        for internal in [
            "zz",
            "images",
            "directory",
            &dir.path().display().to_string(),
        ] {
            assert!(
                !body.contains(internal),
                "{path}: {body:?} has {internal:?}"
            );
        }
        assert_eq!(id.len(), 16, "{id}");
        assert!(!ids.contains(&id), "request ids repeat: {ids:?}");
        ids.push(id);
    }

    // The log has each id, on the line with the cause.
    let text = log.text();
    for id in &ids {
        let line = text
            .lines()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("{id} not in the log:\n{text}"));
        assert!(
            line.contains("internal error") && line.contains("images/zz"),
            "{line}"
        );
    }
}
