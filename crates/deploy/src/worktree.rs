//! A working tree of the deployments repo on a site server: the files under `db/` as they are
//! on disk (edited, not yet committed), compared with the commit checked out, so that an edit
//! applies at once and the status can say the live state is ahead of the remote. Links are
//! never followed and files are refused by their size before they are read (see
//! `paddock_core::deployments::limits`).

use std::io::Read;
use std::path::{Path, PathBuf};

use paddock_core::deployments::{Diagnostic, Diagnostics, limits};
use sha2::{Digest, Sha256};

use crate::git_source::{GitError, Snapshot};

/// `(path relative to the repo root, text)` of each file under `db/`.
pub type DbFiles = Vec<(String, String)>;

/// True for the files editors leave next to the ones they edit (swap, backup, the probe
/// files of a rename-save, emacs's lock links): never part of the DB.
pub fn is_editor_dropping(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name == "4913"
}

/// Reads the files under `root/db`, sorted by path, and lists the ones refused, each an error
/// of the DB: symbolic links (never followed) and other entries that are not regular files or
/// directories, files over the size limits (refused by their size, unread), files that are
/// not UTF-8 text. Editor droppings are skipped.
pub fn read_db(root: &Path) -> std::io::Result<(DbFiles, Vec<Diagnostic>)> {
    let db = root.join("db");
    let no_db = || {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{}: no db/ directory (expected db/switchboard.yaml and db/sites/<site>.yaml)",
                root.display()
            ),
        )
    };
    match std::fs::symlink_metadata(&db) {
        Ok(m) if m.file_type().is_symlink() => return Ok((vec![], vec![limits::symlink("db")])),
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(no_db()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_db()),
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", db.display()),
            ));
        }
    }
    let with_path = |p: &Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
    };
    let mut found: Vec<(String, PathBuf, u64)> = Vec::new();
    let mut refused = Vec::new();
    let mut stack = vec![db];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| with_path(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| with_path(&dir, e))?;
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if is_editor_dropping(name) {
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            // The entry itself, never what a link points at.
            let meta = match entry.metadata() {
                Ok(m) => m,
                // Removed between the listing and now (an editor's rename-save).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(with_path(&path, e)),
            };
            let kind = meta.file_type();
            if kind.is_symlink() {
                refused.push(limits::symlink(&rel));
            } else if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                found.push((rel, path, meta.len()));
            } else {
                refused.push(limits::not_regular(
                    &rel,
                    "a special file (FIFO, socket or device)",
                ));
            }
        }
    }
    found.sort();
    let sizes: Vec<(String, u64)> = found.iter().map(|(r, _, s)| (r.clone(), *s)).collect();
    let (read, too_big) = limits::budget(&sizes);
    refused.extend(too_big);
    let mut files = Vec::new();
    for ((rel, path, _), read) in found.into_iter().zip(read) {
        if !read {
            continue;
        }
        match read_bounded(&path) {
            Ok(Ok(bytes)) => match String::from_utf8(bytes) {
                Ok(text) => files.push((rel, text)),
                Err(_) => refused.push(limits::not_text(&rel)),
            },
            Ok(Err(size)) => refused.push(limits::too_big(&rel, size)),
            // Removed between the listing and the read (an editor's rename-save).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(with_path(&path, e)),
        }
    }
    Ok((files, Diagnostics(refused).sorted().0))
}

/// A file's bytes, or its size when it grew over the limit of one file since it was listed.
fn read_bounded(path: &Path) -> std::io::Result<Result<Vec<u8>, u64>> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > limits::MAX_FILE_BYTES {
        return Ok(Err(size));
    }
    let mut bytes = Vec::new();
    file.take(limits::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limits::MAX_FILE_BYTES {
        return Ok(Err(bytes.len() as u64));
    }
    Ok(Ok(bytes))
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

/// Each file of a snapshot with what stands for its content: its text, or why it was refused.
fn entries(files: &DbFiles, refused: &[Diagnostic]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = files
        .iter()
        .cloned()
        .chain(
            refused
                .iter()
                .map(|d| (d.file.clone(), format!("\0refused: {}", d.message))),
        )
        .collect();
    out.sort();
    out
}

/// Reads the working tree at `root`.
pub fn read(root: &Path) -> Result<Worktree, GitError> {
    let path = root.display().to_string();
    let (files, refused) = read_db(root).map_err(|e| GitError::Read {
        path: path.clone(),
        what: "db/".into(),
        message: e.to_string(),
    })?;
    let on_disk = entries(&files, &refused);
    let (head, committed) = match head_files(root)? {
        Some(c) => (c.commit, entries(&c.files, &c.refused)),
        None => (String::new(), Vec::new()),
    };
    let mut edited: Vec<String> = on_disk
        .iter()
        .filter(|f| !committed.contains(f))
        .map(|(p, _)| p.clone())
        .chain(
            committed
                .iter()
                .filter(|(p, _)| !on_disk.iter().any(|(q, _)| q == p))
                .map(|(p, _)| p.clone()),
        )
        .collect();
    edited.sort();
    edited.dedup();
    let commit = if edited.is_empty() && !head.is_empty() {
        head.clone()
    } else {
        let mut h = Sha256::new();
        for (p, t) in &on_disk {
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
            refused,
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
