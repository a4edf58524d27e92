//! Writing a file into a store: the one write path of every writer (server uploads, local
//! imports, mirror, pull, the supervisor's cache).
//!
//! A [`StagedFile`] is a temporary file, hashed as it is written. [`StagedFile::publish`] makes
//! it visible at its final path only when it is whole: buffered bytes are flushed (a write
//! error, `ENOSPC` on a full disk above all, is returned, never dropped), the file is fsynced
//! when asked, its length on disk is checked against the bytes written, its digest against the
//! expected one, and only then is it renamed into place (and the directory fsynced). The file
//! is written sequentially through one descriptor, so "every write succeeded and the file on
//! disk is as long as what was written" means the file holds exactly the bytes hashed. On any
//! failure the temporary file is removed; a dropped `StagedFile` removes its file too, unless
//! it is a partial download kept to be resumed ([`StagedFile::set_keep`]).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use paddock_core::ImageId;
use sha2::{Digest, Sha256};

use crate::local::StoreError;

/// Writes are buffered up to this size (the network hands over chunks of a few KiB).
const BUFFER: usize = 1024 * 1024;

const NOFOLLOW: i32 = nix::fcntl::OFlag::O_NOFOLLOW.bits();

/// When a written file is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before the rename, and of the directory after it: the file at its final path is
    /// on disk (uploads, imports, the supervisor's cache, `pull`).
    Fsync,
    /// No fsync: the caller covers the file with a [`crate::unsynced`] marker (the mirror).
    Deferred,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A temporary file being written, hashed as it is written.
#[derive(Debug)]
pub struct StagedFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    hasher: Sha256,
    len: u64,
    /// Left in place when dropped (a partial download to resume).
    keep: bool,
}

impl StagedFile {
    /// A new, empty file at `path` (replacing any file of that name); removed when dropped.
    pub fn create(path: PathBuf) -> Result<StagedFile, StoreError> {
        // Never through a link: a link planted at a temporary name would truncate its target.
        let f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(NOFOLLOW)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(StagedFile {
            out: Some(BufWriter::with_capacity(BUFFER, f)),
            path,
            hasher: Sha256::new(),
            len: 0,
            keep: false,
        })
    }

    /// The partial file at `path`, if there is one, to be continued: its content is hashed and
    /// writes are appended. Kept when dropped.
    pub fn resume(path: PathBuf) -> Result<Option<StagedFile>, StoreError> {
        let mut f = match fs::OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(&path)(e)),
            };
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        Ok(Some(StagedFile {
            out: Some(BufWriter::with_capacity(BUFFER, f)),
            path,
            hasher,
            len,
            keep: true,
        }))
    }

    /// Whether the file stays when this is dropped without being published.
    pub fn set_keep(&mut self, keep: bool) {
        self.keep = keep;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far (with those of a resumed partial file).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> ImageId {
        ImageId::from_digest(self.hasher.clone().finalize().into())
    }

    fn out(&mut self) -> Result<&mut BufWriter<File>, StoreError> {
        let path = &self.path;
        self.out.as_mut().ok_or_else(|| StoreError::Io {
            path: path.clone(),
            source: io::Error::other("written after a failed write"),
        })
    }

    /// Appends `buf`. After an error the file is unusable (and removed when dropped, even if
    /// it was to be kept: its content is no longer known).
    pub fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        let written = self.out()?.write_all(buf);
        if let Err(e) = written {
            self.fail();
            return Err(io_err(&self.path)(e));
        }
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Appends everything `input` (the file `source`) holds.
    pub fn copy_from(&mut self, input: &mut impl Read, source: &Path) -> Result<(), StoreError> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(source)(e)),
            };
            self.write(&buf[..n])?;
        }
    }

    /// Flushes what is buffered; an error (disk full) is returned here at the latest.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let flushed = self.out()?.flush();
        flushed.map_err(|e| {
            self.fail();
            io_err(&self.path)(e)
        })
    }

    /// A write failed: the file's content is unknown, so it goes when dropped.
    fn fail(&mut self) {
        // Dropping the writer would try to flush again.
        if let Some(w) = self.out.take() {
            let _ = w.into_parts();
        }
        self.keep = false;
    }

    /// Makes the file `root/relative` (creating its directories, which must not be links: a
    /// file is never written outside the root) if it is whole and, when `expected` is given,
    /// hashes to it; see the module text for every check. A link at the final path is replaced
    /// (never followed). Returns the digest and length. On an error the temporary file is
    /// removed.
    pub fn publish(
        mut self,
        root: &Path,
        relative: &Path,
        expected: Option<&ImageId>,
        durability: Durability,
    ) -> Result<(ImageId, u64), StoreError> {
        let dest = root.join(relative);
        self.keep = false;
        self.flush()?;
        let digest = self.digest();
        if let Some(expected) = expected
            && &digest != expected
        {
            return Err(StoreError::Mismatch {
                what: "file",
                expected: expected.to_string(),
                actual: digest.to_string(),
                path: self.path.clone(),
            });
        }
        let Some(file) = self.out.as_ref().map(BufWriter::get_ref) else {
            return Err(StoreError::Io {
                path: self.path.clone(),
                source: io::Error::other("written after a failed write"),
            });
        };
        if durability == Durability::Fsync {
            file.sync_all().map_err(io_err(&self.path))?;
        }
        let on_disk = file.metadata().map_err(io_err(&self.path))?.len();
        if on_disk != self.len {
            return Err(StoreError::Incomplete {
                path: self.path.clone(),
                written: self.len,
                on_disk,
            });
        }
        let dir = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        crate::regular::check_dirs(root, relative)?;
        fs::rename(&self.path, &dest).map_err(io_err(&dest))?;
        // Renamed: nothing to remove any more.
        self.keep = true;
        if durability == Durability::Fsync {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(dir))?;
        }
        Ok((digest, self.len))
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.keep {
            if let Some(w) = self.out.take() {
                let _ = w.into_parts();
            }
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A [`StagedFile`] written from async code: one blocking thread writes the chunks sent to it
/// as they arrive (no thread hop per chunk).
#[derive(Debug)]
pub struct StagedWriter {
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    task: tokio::task::JoinHandle<Result<StagedFile, StoreError>>,
}

impl StagedWriter {
    /// Starts the writer thread on the file `open` gives.
    pub fn spawn(
        open: impl FnOnce() -> Result<StagedFile, StoreError> + Send + 'static,
    ) -> StagedWriter {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(32);
        let task = tokio::task::spawn_blocking(move || {
            let mut file = open()?;
            while let Some(chunk) = rx.blocking_recv() {
                file.write(&chunk)?;
            }
            file.flush()?;
            Ok(file)
        });
        StagedWriter { tx, task }
    }

    /// Hands a chunk to the writer; `false` when it has stopped on an error ([`Self::finish`]
    /// returns it).
    pub async fn send(&self, chunk: bytes::Bytes) -> bool {
        self.tx.send(chunk).await.is_ok()
    }

    /// Waits until every chunk sent is written and flushed: the file, or the first error.
    pub async fn finish(self) -> Result<StagedFile, StoreError> {
        drop(self.tx);
        self.task.await.map_err(|e| StoreError::Io {
            path: PathBuf::new(),
            source: io::Error::other(e),
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_whole_files_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"some content".to_vec();
        let d = paddock_core::manifest::sha256_id(&content);
        let dest = dir.path().join("a/b/dest");
        let rel = Path::new("a/b/dest");

        let mut f = StagedFile::create(dir.path().join("t1")).unwrap();
        f.write(&content).unwrap();
        let (got, len) = f
            .publish(dir.path(), rel, Some(&d), Durability::Fsync)
            .unwrap();
        assert_eq!((got, len), (d.clone(), content.len() as u64));
        assert_eq!(fs::read(&dest).unwrap(), content);
        assert!(!dir.path().join("t1").exists());

        // Another digest: refused, removed, nothing published.
        let mut f = StagedFile::create(dir.path().join("t2")).unwrap();
        f.write(b"other").unwrap();
        let other = dir.path().join("other");
        assert!(matches!(
            f.publish(
                dir.path(),
                Path::new("other"),
                Some(&d),
                Durability::Deferred
            ),
            Err(StoreError::Mismatch { .. })
        ));
        assert!(!other.exists() && !dir.path().join("t2").exists());

        // Dropped: removed, unless kept; a kept one resumes with its content hashed.
        let mut f = StagedFile::create(dir.path().join("t3")).unwrap();
        f.write(b"half").unwrap();
        drop(f);
        assert!(!dir.path().join("t3").exists());
        let mut f = StagedFile::create(dir.path().join("t4")).unwrap();
        f.set_keep(true);
        f.write(&content[..4]).unwrap();
        f.flush().unwrap();
        drop(f);
        let mut f = StagedFile::resume(dir.path().join("t4")).unwrap().unwrap();
        assert_eq!(f.len(), 4);
        f.write(&content[4..]).unwrap();
        assert_eq!(f.digest(), d);
        assert!(
            StagedFile::resume(dir.path().join("none"))
                .unwrap()
                .is_none()
        );
    }
}
