//! `all.txt`: every file of the store, one per line, `./images/…` and `./blobs/…`, sorted: the
//! format Treadmill stores make with `find -type f`, which their mirror one-liner reads. Only
//! files whose path is a valid store path are listed; the file is replaced atomically.

use std::fs;
use std::io;
use std::path::Path;

use crate::paths::StorePath;

/// Every valid store file under `root`, as `all.txt` lines, sorted.
pub fn list(root: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for top in ["images", "blobs"] {
        walk(root, &root.join(top), &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            walk(root, &e.path(), out)?;
        } else if t.is_file()
            && let Ok(rel) = e.path().strip_prefix(root)
            && let Some(rel) = rel.to_str()
            && let Ok(p) = StorePath::parse(rel)
        {
            out.push(p.index_line());
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
