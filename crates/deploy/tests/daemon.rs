//! The paddock-deploy daemon against a real switchboard and real git repositories: a
//! watched working tree (edits apply at once, the report says the live state is ahead of the
//! remote), and host activation with health check and rollback.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use paddock_deploy::activation::ActivationConfig;
use paddock_deploy::apply::Switchboard;
use paddock_deploy::daemon::{Settings, run};
use paddock_deploy::git_source::Source;
use serde_json::Value;

/// Waits until `GET /deployment` satisfies `ok`; returns it.
async fn wait_status(sb: &Switchboard, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let t0 = std::time::Instant::now();
    loop {
        let st = status(sb).await;
        if ok(&st) {
            return st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{what}: not reached within 10 s; last status {st:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An editor's rename-save: the new text goes to a temporary file renamed over the old one.
fn rename_save(path: &std::path::Path, text: &str) {
    let tmp = path.with_file_name(".save.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_tree_edits_apply_at_once_and_the_report_says_ahead_of_the_remote() {
    let dir = tempfile::tempdir().unwrap();
    let sb = switchboard(dir.path()).await;
    let (bare, work) = repo_with_example(dir.path());
    let bare_s = bare.to_str().unwrap().to_string();
    let first = git(&work, &["rev-parse", "HEAD"]);
    let wake = Arc::new(tokio::sync::Notify::new());
    let settings = Settings {
        worktree: Some(work.clone()),
        state_dir: dir.path().join("state"),
        ..Settings::new(
            sb.clone(),
            Source::Local(bare.clone()),
            "main",
            Duration::from_secs(3600),
        )
    };
    let daemon = tokio::spawn(run(settings, wake.clone(), std::future::pending()));

    // At start: the working tree, clean and at the remote's commit: no drift.
    let st = wait_status(&sb, "first report", |s| {
        s["report"]["remote_commit"] == first.as_str()
    })
    .await;
    assert_eq!(st["commit"], first.as_str());
    assert!(st["report"]["drift"].is_null(), "{st:#}");
    assert!(st["report"]["pending"].is_null(), "{st:#}");

    // An edit, saved the way editors do: applied without a commit, reported as ahead.
    let site = work.join("db/sites/lab1.yaml");
    let mut text = std::fs::read_to_string(&site).unwrap();
    text.push_str(NEW_SUPERVISOR);
    rename_save(&site, &text);
    wait_for(&sb, "lab1-local-3", Duration::from_secs(10)).await;
    let st = wait_status(&sb, "report of the edit", |s| {
        !s["report"]["drift"].is_null()
    })
    .await;
    let drift = st["report"]["drift"].as_str().unwrap();
    assert!(
        drift.starts_with(
            "live state is ahead of the remote: uncommitted edits to db/sites/lab1.yaml"
        ),
        "{drift}"
    );
    assert_eq!(st["report"]["pending"], first.as_str());
    assert!(
        st["commit"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{first}+edits-"))
    );
    assert_eq!(st["report"]["worktree"]["edited"][0], "db/sites/lab1.yaml");

    // An invalid edit: rejected with its location, the last good state stays live.
    std::fs::write(
        &site,
        text.replace(
            "kind: local\n    tags: [arch:x86_64, site:lab1]\n",
            "kind: lcoal\n    tags: [arch:x86_64, site:lab1]\n",
        ),
    )
    .unwrap();
    let st = wait_status(&sb, "the rejected edit", |s| !s["last_error"].is_null()).await;
    assert!(
        st["last_error"]["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("db/sites/lab1.yaml:41:11: supervisors[3].kind:"),
        "{st:#}"
    );
    assert!(names(&sb).await.contains(&("lab1-local-3".into(), false)));

    // Fixed and committed on the server, not pushed: one local commit ahead.
    std::fs::write(&site, &text).unwrap();
    git(
        &work,
        &["commit", "-q", "-am", "add lab1-local-3 on the server"],
    );
    let second = git(&work, &["rev-parse", "HEAD"]);
    let st = wait_status(&sb, "the local commit", |s| s["commit"] == second.as_str()).await;
    assert!(st["last_error"].is_null(), "{st:#}");
    let st = wait_status(&sb, "its report", |s| {
        s["report"]["drift"]
            .as_str()
            .is_some_and(|d| d.contains("1 local commit(s) not pushed"))
    })
    .await;
    assert!(
        st["report"]["worktree"]["edited"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Pushed (from the server, or a laptop that pulled it): the remote catches up, no drift.
    git(&work, &["push", "-q", &bare_s, "main"]);
    wake.notify_one();
    wait_status(&sb, "in sync", |s| {
        s["report"]["remote_commit"] == second.as_str() && s["report"]["drift"].is_null()
    })
    .await;

    // A commit pushed from elsewhere applies too (the newest change wins).
    let laptop = dir.path().join("laptop");
    git(
        dir.path(),
        &["clone", "-q", &bare_s, laptop.to_str().unwrap()],
    );
    let lsite = laptop.join("db/sites/lab1.yaml");
    let ltext = std::fs::read_to_string(&lsite)
        .unwrap()
        .replace("lab1-local-3", "lab1-local-4");
    std::fs::write(&lsite, ltext).unwrap();
    git(&laptop, &["commit", "-q", "-am", "rename from the laptop"]);
    git(&laptop, &["push", "-q", "origin", "main"]);
    wake.notify_one();
    wait_for(&sb, "lab1-local-4", Duration::from_secs(10)).await;
    daemon.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_directory_is_activated_and_rolled_back_when_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let sb = switchboard(dir.path()).await;
    let (bare, work) = repo_with_example(dir.path());
    let bare_s = bare.to_str().unwrap().to_string();
    let host = work.join("hosts/lab1-server");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("configuration.nix"), "v1\n").unwrap();
    std::fs::write(host.join("healthy"), "").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "lab1-server v1"]);
    git(&work, &["push", "-q", &bare_s, "main"]);
    let c1 = git(&work, &["rev-parse", "HEAD"]);
    let log = dir.path().join("activations.log");
    let log_s = log.display();
    let activation = ActivationConfig {
        host: "lab1-server".into(),
        command: format!(
            "echo \"activate $PADDOCK_DEPLOY_COMMIT $(cat \"$PADDOCK_DEPLOY_CHECKOUT/hosts/$PADDOCK_DEPLOY_HOST/configuration.nix\")\" >> {log_s}"
        ),
        health_check: Some("test -e \"hosts/$PADDOCK_DEPLOY_HOST/healthy\"".into()),
        rollback: Some(format!("echo rollback >> {log_s}")),
        timeout_s: 60,
    };
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let wake = Arc::new(tokio::sync::Notify::new());
    let settings = Settings {
        activation: Some(activation),
        state_dir: state_dir.clone(),
        ..Settings::new(
            sb.clone(),
            Source::Local(bare.clone()),
            "main",
            Duration::from_secs(3600),
        )
    };
    let daemon = tokio::spawn(run(settings.clone(), wake.clone(), std::future::pending()));
    let st = wait_status(&sb, "first activation", |s| {
        s["report"]["activation"]["commit"] == c1.as_str()
    })
    .await;
    assert_eq!(st["report"]["activation"]["outcome"], "activated", "{st:#}");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(read_log(), format!("activate {c1} v1\n"));

    // A change of db/ only: applied, nothing activated.
    let site = work.join("db/sites/lab1.yaml");
    let mut text = std::fs::read_to_string(&site).unwrap();
    text.push_str(NEW_SUPERVISOR);
    std::fs::write(&site, &text).unwrap();
    git(&work, &["commit", "-q", "-am", "db only"]);
    git(&work, &["push", "-q", &bare_s, "main"]);
    let c2 = git(&work, &["rev-parse", "HEAD"]);
    wake.notify_one();
    wait_status(&sb, "db-only commit reported", |s| {
        s["report"]["remote_commit"] == c2.as_str() && s["commit"] == c2.as_str()
    })
    .await;
    assert_eq!(read_log(), format!("activate {c1} v1\n"));

    // The host changed and comes up unhealthy: activated, checked, rolled back.
    std::fs::write(host.join("configuration.nix"), "v2\n").unwrap();
    std::fs::remove_file(host.join("healthy")).unwrap();
    git(&work, &["commit", "-q", "-am", "lab1-server v2"]);
    git(&work, &["push", "-q", &bare_s, "main"]);
    let c3 = git(&work, &["rev-parse", "HEAD"]);
    wake.notify_one();
    let st = wait_status(&sb, "second activation", |s| {
        s["report"]["activation"]["commit"] == c3.as_str()
    })
    .await;
    let a = &st["report"]["activation"];
    assert_eq!(a["outcome"], "unhealthy, rolled back", "{a:#}");
    assert_eq!(a["steps"].as_array().unwrap().len(), 3, "{a:#}");
    assert_eq!(a["steps"][1][1], "exit 1", "{a:#}");
    assert_eq!(
        read_log(),
        format!("activate {c1} v1\nactivate {c3} v2\nrollback\n")
    );
    daemon.abort();

    // A restart does not activate the same tree again.
    let before = st["report"]["checked_at"].as_i64().unwrap();
    let restarted = tokio::spawn(run(settings, wake, std::future::pending()));
    wait_status(&sb, "the restarted daemon's first turn", |s| {
        s["report"]["checked_at"].as_i64().unwrap() > before
    })
    .await;
    restarted.abort();
    assert_eq!(
        read_log(),
        format!("activate {c1} v1\nactivate {c3} v2\nrollback\n")
    );
    assert_eq!(
        paddock_deploy::activation::last(&state_dir).unwrap().commit,
        c3
    );
}

/// Issue 14, the working tree: a symbolic link under `db/` is refused with its location, not
/// followed (its target here is a valid site file that would add a supervisor), and the last
/// good state stays live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_in_the_working_tree_is_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let sb = switchboard(dir.path()).await;
    let (bare, work) = repo_with_example(dir.path());
    let first = git(&work, &["rev-parse", "HEAD"]);
    let settings = Settings {
        worktree: Some(work.clone()),
        state_dir: dir.path().join("state"),
        ..Settings::new(
            sb.clone(),
            Source::Local(bare.clone()),
            "main",
            Duration::from_secs(3600),
        )
    };
    let daemon = tokio::spawn(run(
        settings,
        Arc::new(tokio::sync::Notify::new()),
        std::future::pending(),
    ));
    wait_status(&sb, "the first apply", |s| s["commit"] == first.as_str()).await;

    let outside = dir.path().join("outside.yaml");
    std::fs::write(&outside, format!("supervisors:\n{NEW_SUPERVISOR}")).unwrap();
    let link = work.join("db/sites/lab9.yaml");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let st = wait_status(&sb, "the link refused", |s| !s["last_error"].is_null()).await;
    assert_eq!(
        st["last_error"]["errors"],
        serde_json::json!([
            "db/sites/lab9.yaml:1:1: a symbolic link; the deployments DB takes regular files only"
        ]),
        "{st:#}"
    );
    assert_eq!(st["commit"], first.as_str());
    assert!(!names(&sb).await.iter().any(|(n, _)| n == "lab1-local-3"));
    daemon.abort();
}

/// Issue 15, item 3: a rejected edit of the working tree, reverted to the live content, clears
/// the rejection: `GET /deployment` (what `paddock deploy status` shows) and `/metrics` stop
/// reporting it, so an alert on `paddock_deployment_rejected_errors` stops firing. The same bad
/// edit made again is rejected and reported again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverting_a_rejected_edit_to_the_live_content_clears_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let sb = switchboard(dir.path()).await;
    let (bare, work) = repo_with_example(dir.path());
    let first = git(&work, &["rev-parse", "HEAD"]);
    let settings = Settings {
        worktree: Some(work.clone()),
        state_dir: dir.path().join("state"),
        ..Settings::new(
            sb.clone(),
            Source::Local(bare.clone()),
            "main",
            Duration::from_secs(3600),
        )
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let daemon = tokio::spawn(run(settings, wake.clone(), std::future::pending()));
    wait_status(&sb, "first apply", |s| s["commit"] == first.as_str()).await;

    let site = work.join("db/sites/lab1.yaml");
    let good = std::fs::read_to_string(&site).unwrap();
    let bad = good.replacen("kind: local", "kind: lcoal", 1);
    assert_ne!(good, bad);
    for round in 0..2 {
        rename_save(&site, &bad);
        let st = wait_status(&sb, "the rejected edit", |s| !s["last_error"].is_null()).await;
        assert_eq!(st["commit"], first.as_str(), "round {round}: {st:#}");
        let m = metrics(&sb).await;
        assert!(
            !m.contains("paddock_deployment_rejected_errors 0"),
            "round {round}: {m}"
        );

        // Back to the live content: nothing to apply, and nothing rejected any more.
        rename_save(&site, &good);
        let st = wait_status(&sb, "the rejection cleared", |s| s["last_error"].is_null()).await;
        assert_eq!(st["commit"], first.as_str(), "round {round}: {st:#}");
        let m = metrics(&sb).await;
        assert!(
            m.contains("paddock_deployment_rejected_errors 0\n"),
            "round {round}: {m}"
        );
    }
    // The remote (polled) stays at the live commit: a poll keeps the error cleared.
    wake.notify_one();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(status(&sb).await["last_error"].is_null());
    daemon.abort();
}

/// Issue 15, item 3, the remote: a rejected commit stays reported while the branch (or the
/// working tree) holds it, even when an untouched working tree is saved again; the branch
/// reset to the live commit clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_branch_stays_reported_until_it_moves_back() {
    let dir = tempfile::tempdir().unwrap();
    let sb = switchboard(dir.path()).await;
    let (bare, work) = repo_with_example(dir.path());
    let bare_s = bare.to_str().unwrap().to_string();
    let first = git(&work, &["rev-parse", "HEAD"]);
    // A second clone, for pushing a bad commit while the watched tree stays at `first`.
    let laptop = dir.path().join("laptop");
    git(
        dir.path(),
        &["clone", "-q", &bare_s, laptop.to_str().unwrap()],
    );
    let settings = Settings {
        worktree: Some(work.clone()),
        state_dir: dir.path().join("state"),
        ..Settings::new(
            sb.clone(),
            Source::Local(bare.clone()),
            "main",
            Duration::from_secs(3600),
        )
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let daemon = tokio::spawn(run(settings, wake.clone(), std::future::pending()));
    wait_status(&sb, "first apply", |s| s["commit"] == first.as_str()).await;

    let lsite = laptop.join("db/sites/lab1.yaml");
    let good = std::fs::read_to_string(&lsite).unwrap();
    std::fs::write(&lsite, good.replacen("kind: local", "kind: lcoal", 1)).unwrap();
    git(&laptop, &["commit", "-q", "-am", "a typo"]);
    let bad = git(&laptop, &["rev-parse", "HEAD"]);
    git(&laptop, &["push", "-q", "origin", "main"]);
    wake.notify_one();
    let st = wait_status(&sb, "the rejected push", |s| {
        s["last_error"]["commit"] == bad.as_str()
    })
    .await;
    assert_eq!(st["commit"], first.as_str());

    // The working tree saved unchanged (it equals the live state): the branch still holds the
    // rejected commit, so the rejection stays.
    let site = work.join("db/sites/lab1.yaml");
    rename_save(&site, &std::fs::read_to_string(&site).unwrap());
    wake.notify_one();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = status(&sb).await;
    assert_eq!(st["last_error"]["commit"], bad.as_str(), "{st:#}");

    // The branch reset to the live commit: nothing rejected is left anywhere.
    git(&laptop, &["reset", "-q", "--hard", &first]);
    git(&laptop, &["push", "-q", "-f", "origin", "main"]);
    wake.notify_one();
    wait_status(&sb, "the rejection cleared", |s| s["last_error"].is_null()).await;
    assert!(
        metrics(&sb)
            .await
            .contains("paddock_deployment_rejected_errors 0\n")
    );
    daemon.abort();
}
