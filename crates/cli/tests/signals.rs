//! Issue 16 item 4 (one service start-up): every server stops gracefully on SIGTERM, what
//! systemd and `kill` send, not only on Ctrl-C. Before, the switchboard, the image store and
//! the deploy daemon handled SIGINT alone: SIGTERM's default action killed them mid-request
//! (no graceful shutdown, exit by signal).

#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts `cmd`, waits for a line of its standard error containing `ready`, sends it SIGTERM,
/// and returns its exit status and everything it printed on standard error.
fn stop_with_sigterm(mut cmd: Command, ready: &str) -> (std::process::ExitStatus, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.iter().any(|l: &String| l.contains(ready)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("never printed {ready:?}:\n{}", seen.join("\n"));
            }
        }
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // What it printed since, and where each of its threads waits.
            while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                seen.push(line);
            }
            let threads = std::fs::read_dir(format!("/proc/{}/task", child.id()))
                .map(|d| {
                    d.flatten()
                        .map(|t| {
                            let read = |f: &str| {
                                std::fs::read_to_string(t.path().join(f)).unwrap_or_default()
                            };
                            format!("{} {}", read("comm").trim(), read("wchan"))
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            let _ = child.kill();
            panic!(
                "still running 20 s after SIGTERM:\n{}\n--- threads\n{threads}",
                seen.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        seen.push(line);
    }
    (status, seen.join("\n"))
}

fn assert_graceful(what: &str, (status, err): (std::process::ExitStatus, String)) {
    assert!(
        status.success(),
        "{what}: not a graceful exit on SIGTERM ({status}):\n{err}"
    );
    assert!(
        err.contains("SIGTERM: shutting down"),
        "{what}: no shutdown logged:\n{err}"
    );
}

#[test]
fn the_switchboard_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock-switchboard"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"]);
    assert_graceful(
        "paddock-switchboard",
        stop_with_sigterm(cmd, "serving on http://"),
    );
}

#[test]
fn the_image_store_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock-imagestore"));
    cmd.arg("serve")
        .arg("--root")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"]);
    assert_graceful("paddock-imagestore", stop_with_sigterm(cmd, "serving"));
}

#[test]
fn the_deploy_daemon_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "pdt_x\n").unwrap();
    let cfg = dir.path().join("deploy.toml");
    // Nothing answers on port 1 of loopback: the daemon keeps trying, and must still stop.
    std::fs::write(
        &cfg,
        "switchboard_url = \"http://127.0.0.1:1\"\ntoken_file = \"token\"\nrepo = \"repo\"\n\
         poll_interval_s = 1\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock-deploy"));
    cmd.arg("serve").arg("--config").arg(&cfg);
    assert_graceful("paddock-deploy", stop_with_sigterm(cmd, "every 1 s"));
}

#[test]
fn json_logs_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock-imagestore"));
    cmd.arg("serve")
        .arg("--root")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("PADDOCK_LOG_FORMAT", "json");
    let (status, err) = stop_with_sigterm(cmd, "serving");
    assert!(status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("shutting down"))
        .unwrap_or_else(|| panic!("{err}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "INFO", "{line}");
    assert_eq!(v["fields"]["message"], "SIGTERM: shutting down", "{line}");
}
