//! The working-tree watch on a real git working tree with inotify: the daemon's own reading of
//! the tree (every turn) wakes nothing — it once did, so the tree was re-applied over a newer
//! remote commit within 50 ms — while a rename-save under `db/` and a commit each wake it, and
//! a change outside `db/` and the branch refs does not.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use paddock_deploy::watch::watch;
use tokio::sync::Notify;

async fn woken(wake: &Notify, within: Duration) -> bool {
    tokio::time::timeout(within, wake.notified()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_tree_wakes_nothing_and_changes_do() {
    let dir = tempfile::tempdir().unwrap();
    let (_bare, work) = repo_with_example(dir.path());
    let wake = Arc::new(Notify::new());
    let _watch = watch(&work, Duration::from_millis(50), wake.clone()).unwrap();
    let quiet = Duration::from_millis(400);

    // What the daemon does on every turn, and what `git status` does.
    for _ in 0..5 {
        paddock_deploy::worktree::read(&work).unwrap();
    }
    git(&work, &["status", "--porcelain"]);
    assert!(
        !woken(&wake, quiet).await,
        "reading the tree woke the daemon"
    );

    // Outside db/ and the refs: nothing.
    std::fs::write(work.join("hosts/README.md"), "changed\n").unwrap();
    assert!(
        !woken(&wake, quiet).await,
        "a change of hosts/ woke the daemon"
    );

    // An editor's rename-save under db/: one wake-up.
    let site = work.join("db/sites/lab1.yaml");
    let text = std::fs::read_to_string(&site).unwrap() + "# edited\n";
    let tmp = work.join("db/sites/.lab1.yaml.tmp");
    std::fs::write(&tmp, &text).unwrap();
    std::fs::rename(&tmp, &site).unwrap();
    assert!(
        woken(&wake, Duration::from_secs(5)).await,
        "an edit did not wake"
    );
    assert!(!woken(&wake, quiet).await, "one burst, one wake-up");

    // A commit moves refs/heads/main: one wake-up; the daemon's read after it, none.
    git(&work, &["commit", "-q", "-am", "edit"]);
    assert!(
        woken(&wake, Duration::from_secs(5)).await,
        "a commit did not wake"
    );
    paddock_deploy::worktree::read(&work).unwrap();
    assert!(
        !woken(&wake, quiet).await,
        "the read after the commit woke the daemon"
    );
}

/// Issue 14, the watch: a symbolic link under `db/` is not followed, so changes where it
/// points (here a directory outside the tree) wake nothing; the link itself is refused when
/// the tree is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_does_not_follow_a_link_under_db() {
    let dir = tempfile::tempdir().unwrap();
    let (_bare, work) = repo_with_example(dir.path());
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("a.yaml"), "supervisors: []\n").unwrap();
    std::os::unix::fs::symlink(&outside, work.join("db/sites/ext")).unwrap();
    let wake = Arc::new(Notify::new());
    let _watch = watch(&work, Duration::from_millis(50), wake.clone()).unwrap();
    std::fs::write(outside.join("a.yaml"), "supervisors: [] # changed\n").unwrap();
    std::fs::write(outside.join("b.yaml"), "supervisors: []\n").unwrap();
    assert!(
        !woken(&wake, Duration::from_millis(400)).await,
        "a change behind a link under db/ woke the daemon"
    );
}
