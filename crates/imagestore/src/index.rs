//! `all.txt`: every file of the store, one per line, `./images/…` and `./blobs/…`, sorted: the
//! format Treadmill stores make with `find -type f`, which their mirror one-liner reads. Only
//! regular files whose path is a valid store path are listed (never a link, nor anything under
//! a directory link); the file is replaced atomically.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::paths::StorePath;

/// What a walk of `images/` and `blobs/` found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every valid store file, as `all.txt` lines, sorted.
    pub lines: Vec<String>,
    /// Links (to files or directories) and other entries that are neither regular files nor
    /// directories, sorted: never listed nor served.
    pub not_regular: Vec<PathBuf>,
}

/// Every valid store file under `root`, as `all.txt` lines, sorted.
pub fn list(root: &Path) -> io::Result<Vec<String>> {
    Ok(scan(root)?.lines)
}

/// Walks the store without following links.
pub fn scan(root: &Path) -> io::Result<Scan> {
    let mut out = Scan::default();
    for top in ["images", "blobs"] {
        let dir = root.join(top);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => walk(root, &dir, &mut out)?,
            Ok(_) => out.not_regular.push(dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    out.lines.sort();
    out.not_regular.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Scan) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        // The entry's own type: a link is a link, whatever it points to.
        let t = e.file_type()?;
        if t.is_dir() {
            walk(root, &e.path(), out)?;
        } else if !t.is_file() {
            out.not_regular.push(e.path());
        } else if let Ok(rel) = e.path().strip_prefix(root)
            && let Some(rel) = rel.to_str()
            && let Ok(p) = StorePath::parse(rel)
        {
            out.lines.push(p.index_line());
        }
    }
    Ok(())
}

/// Rewrites `root/all.txt` atomically from a walk of the store; returns the number of lines.
pub fn write(root: &Path) -> io::Result<usize> {
    write_lines(root, list(root)?)
}

/// Rewrites `root/all.txt` atomically with `lines` (sorted here) when the caller knows the
/// store's files without a walk (a mirror into an empty directory).
pub fn write_lines(root: &Path, mut lines: Vec<String>) -> io::Result<usize> {
    lines.sort();
    lines.dedup();
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    let tmp = root.join(format!(
        ".all.txt.{}-{}.tmp",
        std::process::id(),
        crate::local::unique()
    ));
    fs::write(&tmp, text)?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, root.join("all.txt"))?;
    Ok(lines.len())
}
