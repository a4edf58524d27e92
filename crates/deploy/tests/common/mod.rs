//! Helpers of the deploy tests: a real bare repo pushed to with git, a real switchboard
//! over loopback HTTP.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;
use std::process::Command;

use paddock_deploy::apply::Switchboard;
use paddock_switchboard::config::Config;
use paddock_switchboard::testing::{Backend, TestApp};

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A bare repo `R.git` (branch `main`, deletable) with the example fleet pushed from the
/// clone `work`; returns (bare repo, clone).
pub fn repo_with_example(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let bare = dir.join("R.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    // Let a test delete the branch a forge would show as default.
    git(&bare, &["config", "receive.denyDeleteCurrent", "ignore"]);
    let work = dir.join("work");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deployments"),
        &work,
    );
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "lab1"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    (bare, work)
}

pub async fn switchboard(dir: &Path) -> Switchboard {
    switchboard_with(dir, |_| {}).await
}

/// A switchboard with its configuration changed by `tweak` (the switchboard crate's own test
/// harness, its database in `dir`), running until the test ends.
pub async fn switchboard_with(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Switchboard {
    let (url, token) = TestApp::start_in(dir, Backend::Sqlite, tweak)
        .await
        .detach();
    Switchboard {
        url,
        token,
        http: reqwest::Client::new(),
    }
}

pub async fn names(sb: &Switchboard) -> Vec<(String, bool)> {
    let v: serde_json::Value = sb
        .http
        .get(format!("{}/api/v1/supervisors", sb.url))
        .bearer_auth(&sb.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["supervisors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["retired"].as_bool().unwrap(),
            )
        })
        .collect()
}

pub async fn status(sb: &Switchboard) -> serde_json::Value {
    sb.http
        .get(format!("{}/api/v1/deployment", sb.url))
        .bearer_auth(&sb.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn metrics(sb: &Switchboard) -> String {
    sb.http
        .get(format!("{}/metrics", sb.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub const NEW_SUPERVISOR: &str = "  - id: 0192f3a0-0000-7000-8000-000000000004
    name: lab1-local-3
    kind: local
    tags: [arch:x86_64, site:lab1]
";

pub async fn wait_for(
    sb: &Switchboard,
    name: &str,
    within: std::time::Duration,
) -> std::time::Duration {
    let t0 = std::time::Instant::now();
    loop {
        if names(sb).await.iter().any(|(n, _)| n == name) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < within,
            "{name} did not appear within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn sign(secret: &[u8], body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
