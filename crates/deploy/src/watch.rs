//! Watching a working tree of the deployments repo with notify. The tree is watched whole
//! and recursively (directories, not files: an editor's rename-save replaces the file, and a
//! watch on the old inode would see nothing more). Changes under `db/` and to the checked-out
//! commit (`.git/HEAD`, `.git/refs/`) count; bursts are debounced into one wake-up. A file
//! merely opened or read is no change: the daemon reads the tree itself on every turn, and
//! counting those opens would wake it again and again (and let the tree override a newer
//! remote commit). Symbolic links are not followed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};

use crate::worktree::is_editor_dropping;

/// Keeps the watch alive; dropping it stops the watching.
pub struct TreeWatch {
    _watcher: notify::RecommendedWatcher,
    _debouncer: tokio::task::JoinHandle<()>,
}

/// True when a change of `path` (inside the working tree `root`) may change what is applied.
pub fn relevant(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
    match parts.next().as_deref() {
        Some("db") => {
            let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
            !name.is_some_and(|n| is_editor_dropping(&n))
        }
        Some(".git") => {
            let rest: Vec<_> = parts.collect();
            match rest.first().map(|s| s.as_ref()) {
                Some("HEAD") => rest.len() == 1,
                Some("packed-refs") => rest.len() == 1,
                Some("refs") => rest.get(1).is_some_and(|s| s == "heads"),
                _ => false,
            }
        }
        _ => false,
    }
}

/// True for an event that may change what a file holds or which files there are: not an
/// open, a read or a close without writing (inotify reports those too).
pub fn changes_something(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Watches `root`; `wake` is notified once per burst of relevant changes, when `debounce`
/// has passed without another (at most 4 × `debounce` after the burst's first change).
/// Must be called inside a tokio runtime.
pub fn watch(root: &Path, debounce: Duration, wake: Arc<Notify>) -> notify::Result<TreeWatch> {
    let root: PathBuf = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let filter_root = root.clone();
    // Links are not followed: what a link under db/ points at is no part of the DB (the link
    // itself is refused when the tree is read).
    let config = notify::Config::default().with_follow_symlinks(false);
    let handler = move |res: notify::Result<notify::Event>| {
        match res {
            Ok(event) => {
                if changes_something(&event.kind)
                    && event.paths.iter().any(|p| relevant(&filter_root, p))
                {
                    let _ = tx.send(());
                }
            }
            // Overflow or a watch lost: re-read to be safe.
            Err(e) => {
                tracing::warn!("watching the working tree: {e}");
                let _ = tx.send(());
            }
        }
    };
    let mut watcher = notify::RecommendedWatcher::new(handler, config)?;
    watcher.watch(&root, RecursiveMode::Recursive)?;
    let debouncer = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            let deadline = tokio::time::Instant::now() + debounce * 4;
            loop {
                let quiet = tokio::time::sleep(debounce);
                tokio::select! {
                    more = rx.recv() => {
                        if more.is_none() { return; }
                        if tokio::time::Instant::now() >= deadline { break; }
                    }
                    _ = quiet => break,
                }
            }
            wake.notify_one();
        }
    });
    Ok(TreeWatch {
        _watcher: watcher,
        _debouncer: debouncer,
    })
}

#[cfg(test)]
mod tests {
    use super::{changes_something, relevant};
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
    use std::path::Path;

    #[test]
    fn reads_are_not_changes() {
        for (kind, want) in [
            (EventKind::Access(AccessKind::Open(AccessMode::Read)), false),
            (EventKind::Access(AccessKind::Open(AccessMode::Any)), false),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                false,
            ),
            (EventKind::Access(AccessKind::Read), false),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                true,
            ),
            (EventKind::Create(CreateKind::File), true),
            (EventKind::Modify(ModifyKind::Any), true),
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), true),
            (EventKind::Remove(RemoveKind::File), true),
            (EventKind::Any, true),
        ] {
            assert_eq!(changes_something(&kind), want, "{kind:?}");
        }
    }

    #[test]
    fn what_counts_as_a_change() {
        let root = Path::new("/srv/deployments");
        for (p, want) in [
            ("/srv/deployments/db/sites/lab1.yaml", true),
            ("/srv/deployments/db/switchboard.yaml", true),
            ("/srv/deployments/db/sites", true),
            ("/srv/deployments/db/sites/.lab1.yaml.swp", false),
            ("/srv/deployments/db/sites/lab1.yaml~", false),
            ("/srv/deployments/db/sites/4913", false),
            ("/srv/deployments/.git/HEAD", true),
            ("/srv/deployments/.git/refs/heads/main", true),
            ("/srv/deployments/.git/refs/heads/main.lock", true),
            ("/srv/deployments/.git/objects/ab/cdef", false),
            ("/srv/deployments/.git/index", false),
            ("/srv/deployments/hosts/x/configuration.nix", false),
            ("/elsewhere/db/x.yaml", false),
        ] {
            assert_eq!(relevant(root, Path::new(p)), want, "{p}");
        }
    }
}
