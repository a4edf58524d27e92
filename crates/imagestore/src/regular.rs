//! Opening a store file for reading: only a regular file, reached without a link. A link at a
//! store path (or a directory link on the way to it) could name any file of the machine, and
//! its content would be served under a digest it does not have; such files are refused, never
//! listed in `all.txt`, and reported by `check`.
//!
//! The last component is opened with `O_NOFOLLOW` (and `O_NONBLOCK`, so a FIFO cannot hang the
//! open); the directories between the root and the file are checked not to be links after the
//! open, and the path is checked to still name the file that was opened (device and inode), so
//! a link swapped in while the file is opened is caught too. The root itself may be a link.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}: no such file")]
    NotFound(PathBuf),
    #[error("{0}: a link or not a regular file")]
    NotRegular(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl From<OpenError> for crate::StoreError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::NotFound(path) => crate::StoreError::Io {
                path,
                source: io::ErrorKind::NotFound.into(),
            },
            OpenError::NotRegular(path) => crate::StoreError::NotRegular { path },
            OpenError::Io { path, source } => crate::StoreError::Io { path, source },
        }
    }
}

fn classify(path: &Path, e: io::Error) -> OpenError {
    match e.raw_os_error() {
        _ if e.kind() == io::ErrorKind::NotFound => OpenError::NotFound(path.to_path_buf()),
        // A link as the last component (ELOOP), a file where a directory should be (ENOTDIR).
        Some(code) if code == nix::libc::ELOOP || code == nix::libc::ENOTDIR => {
            OpenError::NotRegular(path.to_path_buf())
        }
        _ => OpenError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// Opens `root/relative` (a path of plain names) for reading, with its metadata; refuses links
/// and anything but a regular file.
pub fn open(root: &Path, relative: &Path) -> Result<(File, Metadata), OpenError> {
    // A file replaced by a rename while it is opened (all.txt rewritten, a concurrent upload
    // of the same blob) fails the last check once; a link swapped in fails it every time.
    let mut attempts = 3;
    loop {
        match open_once(root, relative) {
            Err(OpenError::NotRegular(p)) if attempts > 1 && p == root.join(relative) => {
                attempts -= 1;
            }
            r => return r,
        }
    }
}

fn open_once(root: &Path, relative: &Path) -> Result<(File, Metadata), OpenError> {
    let full = root.join(relative);
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(&full)
        .map_err(|e| classify(&full, e))?;
    let meta = file.metadata().map_err(|e| classify(&full, e))?;
    if !meta.is_file() {
        return Err(OpenError::NotRegular(full));
    }
    check_dirs(root, relative)?;
    // And the path, as it is now, still names the file opened.
    let now = fs::symlink_metadata(&full).map_err(|e| classify(&full, e))?;
    if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
        return Err(OpenError::NotRegular(full));
    }
    Ok((file, meta))
}

/// Checks that the directories between `root` and the file `relative` (a path of plain names)
/// are directories, not links (nor anything else): the file is inside the root.
pub fn check_dirs(root: &Path, relative: &Path) -> Result<(), OpenError> {
    let mut dir = root.to_path_buf();
    let components: Vec<_> = relative.components().collect();
    for c in components.iter().take(components.len().saturating_sub(1)) {
        let Component::Normal(name) = c else {
            return Err(OpenError::NotRegular(root.join(relative)));
        };
        dir.push(name);
        let m = fs::symlink_metadata(&dir).map_err(|e| classify(&dir, e))?;
        if !m.is_dir() {
            return Err(OpenError::NotRegular(dir));
        }
    }
    Ok(())
}

/// Reads `root/relative` whole (see [`open`]).
pub fn read(root: &Path, relative: &Path) -> Result<Vec<u8>, OpenError> {
    let (mut file, meta) = open(root, relative)?;
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut buf).map_err(|source| OpenError::Io {
        path: root.join(relative),
        source,
    })?;
    Ok(buf)
}

/// Whether `root/relative` is a regular file reached without a link.
pub fn exists(root: &Path, relative: &Path) -> bool {
    open(root, relative).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn refuses_links_on_the_way_and_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(root.join("a/b/file"), "in").unwrap();
        fs::write(outside.join("file"), "out").unwrap();
        assert_eq!(read(&root, Path::new("a/b/file")).unwrap(), b"in");
        symlink(outside.join("file"), root.join("a/b/link")).unwrap();
        assert!(matches!(
            read(&root, Path::new("a/b/link")),
            Err(OpenError::NotRegular(_))
        ));
        symlink(&outside, root.join("a/dirlink")).unwrap();
        assert!(matches!(
            read(&root, Path::new("a/dirlink/file")),
            Err(OpenError::NotRegular(_))
        ));
        assert!(matches!(
            read(&root, Path::new("a/b")),
            Err(OpenError::NotRegular(_))
        ));
        assert!(matches!(
            read(&root, Path::new("a/b/none")),
            Err(OpenError::NotFound(_))
        ));
        nix::unistd::mkfifo(&root.join("a/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read(&root, Path::new("a/fifo")),
            Err(OpenError::NotRegular(_))
        ));
        // The root itself may be a link.
        symlink(&root, dir.path().join("rootlink")).unwrap();
        assert!(exists(&dir.path().join("rootlink"), Path::new("a/b/file")));
    }
}
