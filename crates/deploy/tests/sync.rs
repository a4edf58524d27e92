//! The deployments repo in a real bare git repository (pushed to with git, read with gix),
//! synced into a real switchboard over HTTP: apply, no-op, invalid commit rejected with its
//! location and the old state intact, fix, revert, force-push, deleted branch.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use paddock_deploy::apply::{Outcome, Switchboard, sync_once};
use paddock_switchboard::app::AppState;
use paddock_switchboard::config::Config;
use paddock_switchboard::db::Db;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
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
fn repo_with_example(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
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

async fn switchboard(dir: &Path) -> Switchboard {
    let db = Db::connect(&paddock_switchboard::db::sqlite_url_for(dir))
        .await
        .unwrap();
    let admin: paddock_core::Name = "root".parse().unwrap();
    db.create_user(&admin, None, &[paddock_core::Privilege::Admin])
        .await
        .unwrap();
    let token = paddock_switchboard::tokens::mint(&db, &admin, None)
        .await
        .unwrap()
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(paddock_switchboard::run(
        AppState::new(db, Config::default()),
        listener,
    ));
    Switchboard {
        url,
        token,
        http: reqwest::Client::new(),
    }
}

async fn names(sb: &Switchboard) -> Vec<(String, bool)> {
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

async fn status(sb: &Switchboard) -> serde_json::Value {
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

async fn metrics(sb: &Switchboard) -> String {
    sb.http
        .get(format!("{}/metrics", sb.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

const NEW_SUPERVISOR: &str = "  - id: 0192f3a0-0000-7000-8000-000000000004
    name: lab1-local-3
    kind: local
    tags: [arch:x86_64, site:lab1]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_pushed_to_a_bare_repo_reach_the_switchboard() {
    let dir = tempfile::tempdir().unwrap();
    let sb = switchboard(dir.path()).await;
    let (bare, work) = repo_with_example(dir.path());
    let bare_s = bare.to_str().unwrap();
    let first = git(&work, &["rev-parse", "HEAD"]);

    // First sync: the example fleet.
    let out = sync_once(&bare, "main", &sb).await.unwrap();
    let Outcome::Applied {
        commit,
        generation,
        summary,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!((commit.as_str(), generation), (first.as_str(), 1));
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("+ supervisor lab1/lab1-nrf52")),
        "{summary:?}"
    );
    assert_eq!(names(&sb).await.len(), 3);
    // Nothing new: no call that changes anything.
    assert_eq!(
        sync_once(&bare, "main", &sb).await.unwrap(),
        Outcome::Unchanged {
            commit: first.clone()
        }
    );

    // A commit adding a supervisor.
    let site = work.join("db/sites/lab1.yaml");
    let mut text = std::fs::read_to_string(&site).unwrap();
    text.push_str(NEW_SUPERVISOR);
    std::fs::write(&site, &text).unwrap();
    git(&work, &["commit", "-q", "-am", "add lab1-local-3"]);
    git(&work, &["push", "-q", bare_s, "main"]);
    let out = sync_once(&bare, "main", &sb).await.unwrap();
    assert!(
        matches!(&out, Outcome::Applied { generation: 2, summary, .. } if summary.len() == 1),
        "{out:?}"
    );
    assert!(names(&sb).await.contains(&("lab1-local-3".into(), false)));

    // A YAML error: rejected whole, located, the old state stays.
    std::fs::write(
        &site,
        text.replace(
            "kind: local\n    tags: [arch:x86_64, site:lab1]\n",
            "kind: lcoal\n    tags: [arch:x86_64, site:lab1]\n",
        ),
    )
    .unwrap();
    git(&work, &["commit", "-q", "-am", "typo"]);
    git(&work, &["push", "-q", bare_s, "main"]);
    let bad = git(&work, &["rev-parse", "HEAD"]);
    let out = sync_once(&bare, "main", &sb).await.unwrap();
    let Outcome::Rejected { commit, errors } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(commit, &bad);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "db/sites/lab1.yaml:39:11: supervisors[3].kind: `lcoal` is not a host kind"
        ),
        "{errors:?}"
    );
    let st = status(&sb).await;
    assert_eq!(st["generation"], 2);
    assert_eq!(st["last_error"]["commit"], bad.as_str());
    assert_eq!(st["last_error"]["errors"][0], errors[0].as_str());
    let m = metrics(&sb).await;
    assert!(
        m.contains(&format!(
            "paddock_deployment_rejected_errors{{commit=\"{bad}\",first=\"db/sites/lab1.yaml:39:11\"}} 1\n"
        )),
        "{m}"
    );
    assert!(m.contains("paddock_deployment_generation 2\n"), "{m}");
    assert!(names(&sb).await.contains(&("lab1-local-3".into(), false)));

    // The fix: applied, the error cleared.
    std::fs::write(&site, &text).unwrap();
    git(&work, &["commit", "-q", "-am", "fix"]);
    git(&work, &["push", "-q", bare_s, "main"]);
    let out = sync_once(&bare, "main", &sb).await.unwrap();
    assert!(
        matches!(&out, Outcome::Applied { generation: 3, summary, .. } if summary.is_empty()),
        "{out:?}"
    );
    assert!(status(&sb).await["last_error"].is_null());
    assert!(
        metrics(&sb)
            .await
            .contains("paddock_deployment_rejected_errors 0\n")
    );

    // Reverting the commit that added the supervisor retires it.
    let add = git(&work, &["rev-parse", "HEAD~2"]);
    git(&work, &["revert", "--no-edit", &add]);
    git(&work, &["push", "-q", bare_s, "main"]);
    let out = sync_once(&bare, "main", &sb).await.unwrap();
    assert!(
        matches!(&out, Outcome::Applied { generation: 4, .. }),
        "{out:?}"
    );
    assert!(names(&sb).await.contains(&("lab1-local-3".into(), true)));

    // A force-push back to the first commit: applied like any other commit.
    git(
        &work,
        &["push", "-q", "--force", bare_s, &format!("{first}:main")],
    );
    let out = sync_once(&bare, "main", &sb).await.unwrap();
    assert!(
        matches!(&out, Outcome::Applied { generation: 5, commit, .. } if *commit == first),
        "{out:?}"
    );

    // The branch deleted: reported, nothing changes.
    git(&work, &["push", "-q", bare_s, ":main"]);
    let out = sync_once(&bare, "main", &sb).await.unwrap();
    let Outcome::Rejected { errors, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(
        errors[0].contains("branch `main` does not exist"),
        "{errors:?}"
    );
    let st = status(&sb).await;
    assert_eq!(
        (st["generation"].as_i64(), st["commit"].as_str()),
        (Some(5), Some(first.as_str()))
    );
    assert_eq!(names(&sb).await.len(), 4);
}

async fn wait_for(
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

fn sign(secret: &[u8], body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_syncs_on_signed_webhooks_and_on_its_poll_interval() {
    use paddock_deploy::daemon::{Settings, run, webhook};
    use std::sync::Arc;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let sb = switchboard(dir.path()).await;
    let (bare, work) = repo_with_example(dir.path());
    let bare_s = bare.to_str().unwrap().to_string();

    // Daemon A polls rarely: only the webhook can make it sync soon.
    let wake = Arc::new(tokio::sync::Notify::new());
    let settings = Settings {
        switchboard: sb.clone(),
        repo: bare.clone(),
        branch: "main".into(),
        poll_interval: Duration::from_secs(3600),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run(settings.clone(), wake.clone(), async {
        let _ = stop_rx.await;
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hooks/push", listener.local_addr().unwrap());
    let secret = b"webhook-secret".to_vec();
    tokio::spawn(
        async move { axum::serve(listener, webhook(b"webhook-secret".to_vec(), wake)).await },
    );
    // The first sync happens at start.
    wait_for(&sb, "lab1-nrf52", Duration::from_secs(10)).await;

    let site = work.join("db/sites/lab1.yaml");
    let mut text = std::fs::read_to_string(&site).unwrap();
    text.push_str(NEW_SUPERVISOR);
    std::fs::write(&site, &text).unwrap();
    git(&work, &["commit", "-q", "-am", "add"]);
    git(&work, &["push", "-q", &bare_s, "main"]);
    let body = br#"{"ref":"refs/heads/main"}"#;
    let http = reqwest::Client::new();
    for bad in [
        None,
        Some("sha256=00".to_string()),
        Some(sign(b"wrong", body)),
    ] {
        let mut req = http.post(&hook).body(body.to_vec());
        if let Some(sig) = bad {
            req = req.header("x-hub-signature-256", sig);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(names(&sb).await.len(), 3, "a refused webhook synced");
    let resp = http
        .post(&hook)
        .header("x-hub-signature-256", sign(&secret, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    // Within seconds, with a poll interval of an hour: the webhook made it sync. (How fast is
    // a figure of `paddock-bench`, not a test's business.)
    wait_for(&sb, "lab1-local-3", Duration::from_secs(5)).await;
    let _ = stop_tx.send(());
    daemon.await.unwrap();

    // Daemon B polls every second: a pushed commit appears within the interval.
    let daemon = tokio::spawn(run(
        Settings {
            poll_interval: Duration::from_secs(1),
            ..settings
        },
        Arc::new(tokio::sync::Notify::new()),
        std::future::pending(),
    ));
    std::fs::write(
        &site,
        text.replace("lab1-local-3", "lab1-local-4")
            .replace("000000000004", "000000000005"),
    )
    .unwrap();
    git(&work, &["commit", "-q", "-am", "another"]);
    git(&work, &["push", "-q", &bare_s, "main"]);
    wait_for(&sb, "lab1-local-4", Duration::from_secs(10)).await;
    daemon.abort();
}
