//! A working tree of the deployments repo on a site server: the files under `db/` as they are
//! on disk (edited, not yet committed), compared with the commit checked out, so that an edit
//! applies at once and the status can say the live state is ahead of the remote.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::git_source::{GitError, Snapshot};

/// `(path relative to the repo root, text)` of each file under `db/`.
pub type DbFiles = Vec<(String, String)>;

/// True for the files editors leave next to the ones they edit (swap, backup, the probe
/// files of a rename-save): never part of the DB.
pub fn is_editor_dropping(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name == "4913"
}

/// Reads every file under `root/db`, sorted by path; files that are not UTF-8 text are
/// listed apart (each is an error of the DB).
pub fn read_db(root: &Path) -> std::io::Result<(DbFiles, Vec<String>)> {
    let db = root.join("db");
    if !db.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{}: no db/ directory (expected db/switchboard.yaml and db/sites/<site>.yaml)",
                root.display()
            ),
        ));
    }
    let mut files = Vec::new();
    let mut not_text = Vec::new();
    let mut stack = vec![db];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if is_editor_dropping(name) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            match std::fs::read(&path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => files.push((rel, text)),
                    Err(_) => not_text.push(rel),
                },
                // Removed between the listing and the read (an editor's rename-save).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("{}: {e}", path.display()),
                    ));
                }
            }
        }
    }
    files.sort();
    not_text.sort();
    Ok((files, not_text))
}

/// The working tree's DB and how it relates to the commit checked out.
#[derive(Debug, Clone)]
pub struct Worktree {
    /// The DB as on disk. Its `commit` is the checked-out commit when nothing under `db/` is
    /// edited, else `<head>+edits-<first 12 hex of the content's SHA-256>`.
    pub snapshot: Snapshot,
    /// The checked-out commit (empty before the first commit).
    pub head: String,
    /// Files under `db/` that differ from the checked-out commit (edited, added or removed).
    pub edited: Vec<String>,
}

/// Reads the working tree at `root`.
pub fn read(root: &Path) -> Result<Worktree, GitError> {
    let path = root.display().to_string();
    let (files, not_text) = read_db(root).map_err(|e| GitError::Read {
        path: path.clone(),
        what: "db/".into(),
        message: e.to_string(),
    })?;
    let (head, committed) = match head_files(root)? {
        Some(c) => (c.commit, c.files),
        None => (String::new(), Vec::new()),
    };
    let mut edited: Vec<String> = files
        .iter()
        .filter(|f| !committed.contains(f))
        .map(|(p, _)| p.clone())
        .chain(
            committed
                .iter()
                .filter(|(p, _)| !files.iter().any(|(q, _)| q == p))
                .map(|(p, _)| p.clone()),
        )
        .chain(not_text.iter().cloned())
        .collect();
    edited.sort();
    edited.dedup();
    let commit = if edited.is_empty() && !head.is_empty() {
        head.clone()
    } else {
        let mut h = Sha256::new();
        for (p, t) in &files {
            h.update(p.as_bytes());
            h.update([0]);
            h.update(t.as_bytes());
            h.update([0]);
        }
        let digest = hex::encode(h.finalize());
        let base = if head.is_empty() {
            "(no commit)"
        } else {
            &head
        };
        format!("{base}+edits-{}", &digest[..12])
    };
    Ok(Worktree {
        snapshot: Snapshot {
            commit,
            files,
            not_text,
        },
        head,
        edited,
    })
}

/// The DB files of the commit checked out at `root` (`None` before the first commit).
fn head_files(root: &Path) -> Result<Option<Snapshot>, GitError> {
    let path = root.display().to_string();
    let repo = gix::open(root).map_err(|e| GitError::Open {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let head = match repo.head_commit() {
        Ok(c) => c.id,
        Err(_) => return Ok(None),
    };
    crate::git_source::read_commit(&repo, &path, head).map(Some)
}

/// How many commits `head` has that `base` lacks, when `base` is one of `head`'s ancestors
/// in the repository at `root`; `None` when it is not (diverged, or `base` unknown there).
pub fn commits_ahead(root: &Path, head: &str, base: &str) -> Option<usize> {
    let repo = gix::open(root).ok()?;
    let head = gix::ObjectId::from_hex(head.as_bytes()).ok()?;
    let base = gix::ObjectId::from_hex(base.as_bytes()).ok()?;
    if head == base {
        return Some(0);
    }
    let walk = repo.rev_walk([head]).all().ok()?;
    for (n, info) in walk.enumerate() {
        if info.ok()?.id == base {
            return Some(n);
        }
    }
    None
}
