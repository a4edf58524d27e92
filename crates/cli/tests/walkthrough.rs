//! The acceptance walk-through, as written, with the real binaries: bootstrap an admin,
//! serve, enqueue a job no supervisor can run, read its status as JSON, get a column-precise
//! error for a bad tag expression, read /metrics; then log in with a password and use the
//! stored configuration.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const SWITCHBOARD: &str = env!("CARGO_BIN_EXE_paddock-switchboard");
const PADDOCK: &str = env!("CARGO_BIN_EXE_paddock");
const IMAGE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn paddock(config: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(PADDOCK);
    c.args(args)
        .env_remove("PADDOCK_URL")
        .env_remove("PADDOCK_TOKEN")
        .env("PADDOCK_CONFIG", config);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptance_walk_through() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("D");
    let config = dir.path().join("client.toml");

    // paddock-switchboard user add admin --privilege admin --data-dir D
    let out = Command::new(SWITCHBOARD)
        .args(["user", "add", "admin", "--privilege", "admin", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).lines().last().unwrap().to_string();
    assert!(
        token.starts_with("pdk_") && token.len() == 68,
        "token alone on the last line: {token:?}"
    );

    // paddock-switchboard serve --data-dir D --listen 127.0.0.1:PORT &
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(SWITCHBOARD)
            .args(["serve", "--data-dir"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..200 {
        if http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy);
    let env = [
        ("PADDOCK_URL", url.as_str()),
        ("PADDOCK_TOKEN", token.as_str()),
    ];

    // ID=$(paddock job enqueue <id> --tags 'board:nothing-has-this')   # prints only the job id
    let out = paddock(
        &config,
        &env,
        &["job", "enqueue", IMAGE, "--tags", "board:nothing-has-this"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    let id = stdout.trim().to_string();
    assert!(id.parse::<paddock_core::JobId>().is_ok(), "{id:?}");

    // paddock job status $ID --json
    let out = paddock(&config, &env, &["job", "status", &id, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["execution_state"], "terminated");
    assert_eq!(v["exit_status"], "supervisor_match_error");

    // paddock job enqueue <id> --tags 'board:(x'   # non-zero exit; the message names the column
    let out = paddock(
        &config,
        &env,
        &["job", "enqueue", IMAGE, "--tags", "board:(x"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("column 7"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    // curl -s $PADDOCK_URL/metrics
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("# TYPE paddock_jobs gauge"), "{metrics}");
    assert!(
        metrics.contains("paddock_jobs{state=\"terminated\"} 1"),
        "{metrics}"
    );

    // More of the CLI: supervisors, lists, events, cancel of a terminated job.
    let out = paddock(
        &config,
        &env,
        &[
            "supervisor",
            "add",
            "rack1",
            "--site",
            "lab1",
            "--tags",
            "board:x,site:lab1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .starts_with("pds_")
    );
    let out = paddock(&config, &env, &["supervisor", "status", "rack1", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connected"], false);
    let out = paddock(&config, &env, &["job", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["jobs"][0]["id"], id.as_str());
    let out = paddock(&config, &env, &["job", "events", &id]);
    assert!(
        text(&out.stdout).contains("supervisor_match_error"),
        "{}",
        text(&out.stdout)
    );
    let out = paddock(&config, &env, &["job", "cancel", &id]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("409"), "{}", text(&out.stderr));
    let out = paddock(
        &config,
        &[
            ("PADDOCK_URL", url.as_str()),
            ("PADDOCK_TOKEN", "pdk_bogus"),
        ],
        &["job", "list"],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));

    // Password login stores the URL and a token; later commands need no environment.
    let mut passwd = Command::new(SWITCHBOARD)
        .args(["user", "passwd", "admin", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    passwd
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    assert!(passwd.wait().unwrap().success());
    let mut login = Command::new(PADDOCK)
        .args(["login", "--url", &url, "--user", "admin"])
        .env_remove("PADDOCK_URL")
        .env_remove("PADDOCK_TOKEN")
        .env("PADDOCK_CONFIG", &config)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored = std::fs::read_to_string(&config).unwrap();
    assert!(stored.contains("pdk_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let out = paddock(&config, &[], &["job", "status", &id, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
