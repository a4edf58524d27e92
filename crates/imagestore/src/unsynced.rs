//! Deferred durability for the mirror.
//!
//! Fsyncing every mirrored file makes a mirror wait for the disk file by file (the book's wget
//! one-liner never waits for it at all). Instead the mirror renames verified files into place
//! without fsync and leaves a marker, `DIR/.paddock-mirror-unsynced`, written durably *before*
//! the first such file: it holds the boot id of the machine and the time the unsynced writes
//! began. The next mirror run into the directory reads it:
//!
//! - same boot id: the machine has not restarted, so the page cache still holds exactly what
//!   was written; one `syncfs` makes it durable and the marker is renewed.
//! - another boot id: the machine restarted before the data was known to be on disk. Every
//!   store file changed since the marker's time (by inode change time, which a rename sets and
//!   nothing can set back) is hashed again; the ones that do not match their digest are
//!   removed and fetched again by this run. Partial downloads are dropped.
//!
//! `paddock image mirror --sync` ends with one `syncfs` and removes the marker.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::paths::StorePath;

/// The marker's file name in the mirror directory.
pub const MARKER: &str = ".paddock-mirror-unsynced";

/// Slack between the marker's clock reading and file change times.
const SLACK_SECS: i64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum UnsyncedError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UnsyncedError + '_ {
    move |source| UnsyncedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What `begin` found from an earlier run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// An earlier run's writes were made durable with `syncfs` (same boot).
    pub synced: bool,
    /// Files checked again because the machine restarted before they were known durable.
    pub rechecked: usize,
    /// Of those, the ones that no longer matched their digest and were removed.
    pub removed: Vec<String>,
}

/// The current boot's id (Linux); `None` where the kernel does not say.
pub fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Parses a marker: `boot <id>` and `since <unix seconds>` lines.
fn parse_marker(text: &str) -> (Option<String>, Option<i64>) {
    let (mut boot, mut since) = (None, None);
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("boot", v)) => boot = Some(v.trim().to_string()),
            Some(("since", v)) => since = v.trim().parse().ok(),
            _ => {}
        }
    }
    (boot, since)
}

fn syncfs(dir: &Path) -> Result<(), UnsyncedError> {
    let f = fs::File::open(dir).map_err(io_err(dir))?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)).map_err(|e| UnsyncedError::Io {
        path: dir.to_path_buf(),
        source: io::Error::from(e),
    })
}

/// Writes the marker durably (temporary file, fsync, rename, fsync of the directory).
fn write_marker(dir: &Path, boot: &str, since: i64) -> Result<(), UnsyncedError> {
    let path = dir.join(MARKER);
    let tmp = dir.join(format!("{MARKER}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    writeln!(f, "boot {boot}\nsince {since}").map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Called before a run writes anything into `dir` (which exists): settles an earlier run's
/// unsynced writes (see the module text) and leaves a marker covering this run's.
pub fn begin(dir: &Path) -> Result<Recovery, UnsyncedError> {
    let boot = boot_id().unwrap_or_else(|| "unknown".into());
    let path = dir.join(MARKER);
    let mut recovery = Recovery::default();
    let started = now_secs();
    match fs::read_to_string(&path) {
        Ok(text) => {
            let (old_boot, since) = parse_marker(&text);
            if old_boot.as_deref() == Some(boot.as_str()) && boot != "unknown" {
                syncfs(dir)?;
                recovery.synced = true;
            } else {
                // No proof the earlier writes reached the disk: check everything they touched.
                let since = since.unwrap_or(0) - SLACK_SECS;
                let _ = fs::remove_dir_all(dir.join(".partial"));
                recheck(dir, since, &mut recovery)?;
                syncfs(dir)?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    write_marker(dir, &boot, started)?;
    Ok(recovery)
}

/// Makes everything written into `dir` durable and removes the marker.
pub fn finish_synced(dir: &Path) -> Result<(), UnsyncedError> {
    syncfs(dir)?;
    let path = dir.join(MARKER);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Hashes every store file under `dir` whose inode changed at or after `since` and removes
/// the ones that do not match the digest in their name.
fn recheck(dir: &Path, since: i64, recovery: &mut Recovery) -> Result<(), UnsyncedError> {
    let mut stack = vec![dir.join("images"), dir.join("blobs")];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&d)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&d))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            if !meta.is_file() || meta.ctime() < since {
                continue;
            }
            let Ok(relative) = path.strip_prefix(dir) else {
                continue;
            };
            let line = format!("./{}", relative.display());
            let Some(digest) = StorePath::parse(&line)
                .ok()
                .and_then(|p| p.digest().cloned())
            else {
                continue;
            };
            recovery.rechecked += 1;
            if crate::local::hash_file(&path)?.0 != digest {
                fs::remove_file(&path).map_err(io_err(&path))?;
                recovery.removed.push(line);
            }
        }
    }
    recovery.removed.sort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dir: &Path, rel: &str, content: &[u8]) -> PathBuf {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        p
    }

    fn blob_rel(content: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let d = hex::encode(Sha256::digest(content));
        format!("blobs/{}/{}/{}/{d}", &d[0..2], &d[2..4], &d[4..6])
    }

    #[test]
    fn marker_round_trip() {
        assert_eq!(
            parse_marker("boot abc\nsince 42\n"),
            (Some("abc".into()), Some(42))
        );
        assert_eq!(parse_marker("garbage"), (None, None));
    }

    #[test]
    fn same_boot_syncs_and_renews_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(begin(dir.path()).unwrap(), Recovery::default());
        assert!(dir.path().join(MARKER).is_file());
        let r = begin(dir.path()).unwrap();
        assert!(r.synced || boot_id().is_none());
        finish_synced(dir.path()).unwrap();
        assert!(!dir.path().join(MARKER).exists());
    }

    #[test]
    fn another_boot_rechecks_recent_files_and_removes_corrupt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = blob_rel(b"good");
        put(dir.path(), &good, b"good");
        let bad = blob_rel(b"bad");
        // What a crash before writeback can leave: the name in place, the content not.
        put(dir.path(), &bad, b"\0\0\0");
        put(dir.path(), ".partial/x.part", b"half");
        fs::write(
            dir.path().join(MARKER),
            format!("boot another-boot\nsince {}\n", now_secs()),
        )
        .unwrap();
        let r = begin(dir.path()).unwrap();
        assert!(!r.synced);
        assert_eq!(r.rechecked, 2);
        assert_eq!(r.removed, vec![format!("./{bad}")]);
        assert!(dir.path().join(&good).is_file());
        assert!(!dir.path().join(&bad).exists());
        assert!(!dir.path().join(".partial").exists());
        // The marker now belongs to this boot.
        let (boot, _) = parse_marker(&fs::read_to_string(dir.path().join(MARKER)).unwrap());
        assert_eq!(boot, Some(boot_id().unwrap_or_else(|| "unknown".into())));
    }

    #[test]
    fn another_boot_leaves_files_older_than_the_marker_alone() {
        let dir = tempfile::tempdir().unwrap();
        let bad = blob_rel(b"old");
        put(dir.path(), &bad, b"not what the name says");
        fs::write(
            dir.path().join(MARKER),
            format!("boot another-boot\nsince {}\n", now_secs() + 3600),
        )
        .unwrap();
        let r = begin(dir.path()).unwrap();
        assert_eq!(r.rechecked, 0);
        assert!(dir.path().join(&bad).is_file());
    }
}
