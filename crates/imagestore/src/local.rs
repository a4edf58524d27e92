//! A store in a local directory.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use paddock_core::ImageId;
use paddock_core::manifest::{ImageManifest, ManifestError, blob_path, image_path, sha256_id};
use sha2::{Digest, Sha256};

use crate::staged::{Durability, StagedFile};

/// Why a store operation failed. `Mismatch` and `Missing` mean the store cannot provide a
/// correct image (a supervisor reports `supervisor_host_start_error`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{what} {expected} is missing from the store ({path})")]
    Missing {
        what: &'static str,
        expected: String,
        path: PathBuf,
    },
    #[error("{what} {expected} is corrupt: its content hashes to {actual} ({path})")]
    Mismatch {
        what: &'static str,
        expected: String,
        actual: String,
        path: PathBuf,
    },
    #[error("{what} {expected} has {actual} bytes, the manifest says {size} ({path})")]
    Size {
        what: &'static str,
        expected: String,
        actual: u64,
        size: u64,
        path: PathBuf,
    },
    #[error("{path}: {on_disk} bytes on disk, {written} written")]
    Incomplete {
        path: PathBuf,
        written: u64,
        on_disk: u64,
    },
    #[error("{path} is a link or not a regular file; refused")]
    NotRegular { path: PathBuf },
    #[error("manifest of image {id}")]
    Manifest { id: String, source: ManifestError },
    #[error("cannot import: {0}")]
    Import(String),
}

impl StoreError {
    /// The disk (or the quota) is full: nothing was stored, and a retry fails until space is
    /// freed (the server answers 507).
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            StoreError::Io { source, .. }
                if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An image whose manifest and blobs were all verified against their digests.
#[derive(Debug, Clone)]
pub struct VerifiedImage {
    pub id: ImageId,
    pub manifest: ImageManifest,
    /// Blob name → path of the verified blob file.
    pub blobs: Vec<(String, PathBuf)>,
}

/// A store rooted at a directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

/// Streams a file through sha256; returns the digest and the length.
pub(crate) fn hash_file(path: &Path) -> Result<(ImageId, u64), StoreError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    copy_hashing(&mut f, path, None)
}

/// [`hash_file`] of the store file `root/relative`, a regular file reached without a link
/// ([`crate::regular`]).
pub(crate) fn hash_regular(
    root: &Path,
    relative: &Path,
) -> Result<(ImageId, u64), crate::regular::OpenError> {
    let (mut f, _) = crate::regular::open(root, relative)?;
    let path = root.join(relative);
    copy_hashing(&mut f, &path, None).map_err(|e| match e {
        StoreError::Io { path, source } => crate::regular::OpenError::Io { path, source },
        other => crate::regular::OpenError::Io {
            path,
            source: io::Error::other(other.to_string()),
        },
    })
}

/// Reads `input` to its end, hashing it, and writes every byte to `out` when given. The one
/// read loop of the store: hashing, verified copies and blob imports all go through it.
fn copy_hashing(
    input: &mut File,
    source: &Path,
    mut out: Option<(&mut File, &Path)>,
) -> Result<(ImageId, u64), StoreError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(io_err(source))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some((f, path)) = out.as_mut() {
            f.write_all(&buf[..n]).map_err(io_err(path))?;
        }
        len += n as u64;
    }
    Ok((ImageId::from_digest(h.finalize().into()), len))
}

/// Copies a verified blob to `dest` and checks the copy's digest and size again, so a blob
/// changed between verification and use is never used: on a mismatch `dest` is removed.
pub fn copy_verified(
    source: &Path,
    dest: &Path,
    expected: &ImageId,
    size: u64,
) -> Result<(), StoreError> {
    let result = (|| {
        let mut input = File::open(source).map_err(io_err(source))?;
        let mut out = File::create(dest).map_err(io_err(dest))?;
        let (actual, len) = copy_hashing(&mut input, source, Some((&mut out, dest)))?;
        if &actual != expected {
            return Err(StoreError::Mismatch {
                what: "blob",
                expected: expected.to_string(),
                actual: actual.to_string(),
                path: source.to_path_buf(),
            });
        }
        if len != size {
            return Err(StoreError::Size {
                what: "blob",
                expected: expected.to_string(),
                actual: len,
                size,
                path: source.to_path_buf(),
            });
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(dest);
    }
    result
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads an image, verifying the manifest bytes against the id, and every blob's digest and
    /// size against the manifest.
    pub fn verified_image(&self, id: &ImageId) -> Result<VerifiedImage, StoreError> {
        let path = self.root.join(image_path(id));
        let bytes = match crate::regular::read(&self.root, &image_path(id)) {
            Ok(b) => b,
            Err(crate::regular::OpenError::NotFound(_)) => {
                return Err(StoreError::Missing {
                    what: "image",
                    expected: id.to_string(),
                    path,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let actual = sha256_id(&bytes);
        if &actual != id {
            return Err(StoreError::Mismatch {
                what: "image",
                expected: id.to_string(),
                actual: actual.to_string(),
                path,
            });
        }
        let manifest = ImageManifest::parse(&bytes).map_err(|source| StoreError::Manifest {
            id: id.to_string(),
            source,
        })?;
        let mut blobs = Vec::with_capacity(manifest.blobs.len());
        for (name, spec) in &manifest.blobs {
            let digest: ImageId = spec
                .sha256_digest
                .parse()
                .map_err(|_| StoreError::Manifest {
                    id: id.to_string(),
                    source: ManifestError::Invalid {
                        field: format!("blobs.{name}"),
                        message: "bad digest".into(),
                    },
                })?;
            let path = self.root.join(blob_path(&digest));
            let (actual, len) = match hash_regular(&self.root, &blob_path(&digest)) {
                Ok(r) => r,
                Err(crate::regular::OpenError::NotFound(_)) => {
                    return Err(StoreError::Missing {
                        what: "blob",
                        expected: digest.to_string(),
                        path,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            if actual != digest {
                return Err(StoreError::Mismatch {
                    what: "blob",
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                    path,
                });
            }
            if len != spec.size {
                return Err(StoreError::Size {
                    what: "blob",
                    expected: digest.to_string(),
                    actual: len,
                    size: spec.size,
                    path,
                });
            }
            blobs.push((name.clone(), path));
        }
        Ok(VerifiedImage {
            id: id.clone(),
            manifest,
            blobs,
        })
    }

    /// A fresh temporary file in the store's `tmp/` (see [`crate::staged`]).
    pub fn staged(&self, kind: &str) -> Result<StagedFile, StoreError> {
        let staging = self.root.join("tmp");
        fs::create_dir_all(&staging).map_err(io_err(&staging))?;
        StagedFile::create(staging.join(format!("{kind}-{}-{}", std::process::id(), unique())))
    }

    /// Copies a file into the store as a blob; returns its digest and size. Idempotent.
    pub fn put_blob_file(&self, source: &Path) -> Result<(ImageId, u64), StoreError> {
        let mut input = File::open(source).map_err(io_err(source))?;
        let mut tmp = self.staged("blob")?;
        tmp.copy_from(&mut input, source)?;
        let digest = tmp.digest();
        tmp.publish(
            &self.root,
            &blob_path(&digest),
            Some(&digest),
            Durability::Fsync,
        )
    }

    /// Writes manifest bytes (validated first); returns the image id. Refused while a blob it
    /// names is missing. Idempotent.
    pub fn put_manifest(&self, bytes: &[u8]) -> Result<ImageId, StoreError> {
        let id = sha256_id(bytes);
        let manifest = ImageManifest::parse(bytes).map_err(|source| StoreError::Manifest {
            id: id.to_string(),
            source,
        })?;
        for spec in manifest.blobs.values() {
            if let Ok(d) = spec.sha256_digest.parse::<ImageId>() {
                let path = self.root.join(blob_path(&d));
                if !crate::regular::exists(&self.root, &blob_path(&d)) {
                    return Err(StoreError::Missing {
                        what: "blob",
                        expected: d.to_string(),
                        path,
                    });
                }
            }
        }
        let mut tmp = self.staged("image")?;
        tmp.write(bytes)?;
        tmp.publish(&self.root, &image_path(&id), Some(&id), Durability::Fsync)?;
        Ok(id)
    }
}

/// A process-unique number for temporary file names.
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_for(blob: &ImageId, size: u64) -> String {
        format!(
            "manifest_version = 0\nmanifest_extensions = [\"org.tockos.treadmill.manifest-ext.base\"]\n\
             \"org.tockos.treadmill.manifest-ext.base.label\" = \"demo\"\n\
             \"org.tockos.treadmill.manifest-ext.base.revision\" = 1\n\
             \"org.tockos.treadmill.manifest-ext.base.description\" = \"\"\n\
             \"org.tockos.treadmill.manifest-ext.base.attrs\" = {{ \"org.paddock.entry-point\" = \"run.sh\" }}\n\
             [\"org.tockos.treadmill.manifest-ext.base.blobs\".script]\n\
             \"org.tockos.treadmill.manifest-ext.base.sha256-digest\" = \"{blob}\"\n\
             \"org.tockos.treadmill.manifest-ext.base.size\" = {size}\n\
             \"org.tockos.treadmill.manifest-ext.base.attrs\" = {{}}\n"
        )
    }

    #[test]
    fn write_read_verify_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("store"));
        let src = dir.path().join("run.sh");
        fs::write(&src, b"#!/bin/sh\necho hello\n").unwrap();

        // A manifest whose blob is not there yet is refused.
        let missing = sha256_id(b"#!/bin/sh\necho hello\n");
        let text = manifest_for(&missing, 21);
        assert!(matches!(
            store.put_manifest(text.as_bytes()),
            Err(StoreError::Missing { .. })
        ));

        let (digest, size) = store.put_blob_file(&src).unwrap();
        assert_eq!(digest, missing);
        assert_eq!(size, 21);
        assert!(dir.path().join("store").join(blob_path(&digest)).is_file());
        let id = store.put_manifest(text.as_bytes()).unwrap();
        assert_eq!(id, sha256_id(text.as_bytes()));
        // Idempotent.
        assert_eq!(store.put_blob_file(&src).unwrap().0, digest);
        assert_eq!(store.put_manifest(text.as_bytes()).unwrap(), id);

        let image = store.verified_image(&id).unwrap();
        assert_eq!(image.manifest.label, "demo");
        assert_eq!(image.blobs.len(), 1);
        assert!(
            fs::read_dir(dir.path().join("store/tmp"))
                .unwrap()
                .next()
                .is_none(),
            "no temporary file left"
        );

        // A flipped byte in the blob is caught, naming both digests.
        let blob_file = dir.path().join("store").join(blob_path(&digest));
        fs::write(&blob_file, b"#!/bin/sh\necho HELLO\n").unwrap();
        let e = store.verified_image(&id).unwrap_err();
        assert!(
            matches!(e, StoreError::Mismatch { what: "blob", .. }),
            "{e}"
        );
        assert!(e.to_string().contains(digest.as_str()));

        // A manifest that does not hash to its name is caught.
        let manifest_file = dir.path().join("store").join(image_path(&id));
        fs::write(&manifest_file, text.replace("demo", "evil")).unwrap();
        assert!(matches!(
            store.verified_image(&id),
            Err(StoreError::Mismatch { what: "image", .. })
        ));

        // An unknown image is missing.
        assert!(matches!(
            store.verified_image(&sha256_id(b"nothing")),
            Err(StoreError::Missing { .. })
        ));
    }

    #[test]
    fn size_mismatch_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let src = dir.path().join("blob");
        fs::write(&src, b"abc").unwrap();
        let (digest, _) = store.put_blob_file(&src).unwrap();
        let id = store
            .put_manifest(manifest_for(&digest, 4).as_bytes())
            .unwrap();
        assert!(matches!(
            store.verified_image(&id),
            Err(StoreError::Size {
                actual: 3,
                size: 4,
                ..
            })
        ));
    }
}
