//! Issue 14, item 4 (slowloris), for the HTTP servers outside the switchboard (whose own test is
//! in its `it` suite): the real image store, deploy webhook and `paddock-audit serve` binaries
//! each close a connection that never finishes its request header (within their 10 s header
//! read timeout), and still answer a normal request while such connections are open.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

const IMAGESTORE: &str = env!("CARGO_BIN_EXE_paddock-imagestore");
const DEPLOY: &str = env!("CARGO_BIN_EXE_paddock-deploy");
const AUDIT: &str = env!("CARGO_BIN_EXE_paddock-audit");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(cmd: &mut Command) -> Killed {
    Killed(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Waits until something listens on `port`.
fn wait_port(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "nothing on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A response's status line for `GET path`.
fn status_line(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or_default().to_string()
}

/// Opens `n` connections that send half a request header, answers a normal request meanwhile,
/// then checks that the server closes every slow one within the header timeout.
fn slow_clients_are_closed(port: u16, path: &str) {
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();
    assert!(
        status_line(port, path).starts_with("HTTP/1.1 200"),
        "{path} answers while slow clients are connected"
    );
    // All of them closed by the server within 15 s in all (the header timeout is 10 s): a read
    // that times out means the server still holds the connection.
    let deadline = Instant::now() + Duration::from_secs(15);
    for s in &mut slow {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("a slow client is still held after 15 s")
            }
            Err(_) => {}
            Ok(n) => panic!(
                "unexpected answer: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn every_server_closes_slow_clients() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let is_port = support::free_port();
    std::fs::create_dir_all(d.join("store")).unwrap();
    let _store = start(Command::new(IMAGESTORE).args([
        "serve",
        "--root",
        d.join("store").to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{is_port}"),
    ]));

    let audit_port = support::free_port();
    write(&d.join("r.json"), r#"{"format": "paddock-audit/1"}"#);
    let _audit = start(Command::new(AUDIT).args([
        "serve",
        "--report",
        d.join("r.json").to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{audit_port}"),
    ]));

    let hook_port = support::free_port();
    let unused = support::free_port();
    write(&d.join("secret"), "webhook-secret\n");
    write(&d.join("token"), "pdk_not-a-real-token\n");
    std::fs::create_dir_all(d.join("repo.git")).unwrap();
    let config = format!(
        "switchboard_url = \"http://127.0.0.1:{unused}\"\nrepo = \"{repo}\"\n\
         token_file = \"{d}/token\"\nstate_dir = \"{d}/state\"\n\
         listen = \"127.0.0.1:{hook_port}\"\nwebhook_secret_file = \"{d}/secret\"\n",
        repo = d.join("repo.git").display(),
        d = d.display(),
    );
    write(&d.join("deploy.toml"), &config);
    let _deploy = start(Command::new(DEPLOY).args([
        "serve",
        "--config",
        d.join("deploy.toml").to_str().unwrap(),
    ]));

    wait_port(is_port);
    wait_port(audit_port);
    wait_port(hook_port);
    // The three servers in parallel: each takes up to its 10 s header timeout.
    std::thread::scope(|s| {
        s.spawn(|| slow_clients_are_closed(is_port, "/all.txt"));
        s.spawn(|| slow_clients_are_closed(audit_port, "/report.json"));
        s.spawn(|| slow_clients_are_closed(hook_port, "/healthz"));
    });
}
