//! Building local-driver images into a store, and listing a store's images.
//!
//! A local-driver image has one blob named `workload`: either a script (imported from a file) or
//! a tar archive (imported from a directory). Two manifest attributes tell the supervisor how to
//! run it: `org.paddock.local.kind` (`script` or `tar`) and `org.paddock.local.entry-point` (the
//! script's file name, or the path inside the archive to execute).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use paddock_core::ImageId;
use paddock_core::manifest::{BASE_EXTENSION, BlobSpec, ImageManifest, image_path, sha256_id};

use crate::local::{LocalStore, StoreError};

pub const ATTR_KIND: &str = "org.paddock.local.kind";
pub const ATTR_ENTRY_POINT: &str = "org.paddock.local.entry-point";
/// When the job becomes `ready`: `start` (default: when the workload starts) or `puppet` (when
/// the workload runs `paddock-puppet ready`, as a VM's puppet agent would).
pub const ATTR_READY: &str = "org.paddock.local.ready";
pub const WORKLOAD_BLOB: &str = "workload";

/// What to call the image.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub label: String,
    /// Default: one more than the newest revision of this label in the store.
    pub revision: Option<u64>,
    pub description: String,
    /// For a directory: the file to run inside it (default `run.sh`).
    pub entry_point: Option<String>,
    /// The job becomes `ready` only when the workload says so (`paddock-puppet ready`).
    pub ready_on_puppet: bool,
}

/// One image of a store, as listed.
/// A built image's directory names its image in this file (`mkImageStore`'s output,
/// `paddock image assemble`): `paddock image push DIR` publishes that image.
pub const IMAGE_TXT: &str = "image.txt";

/// Any image from named blob files and attributes (what the Nix `mkImageStore` builds).
#[derive(Debug, Clone)]
pub struct AssembleOptions {
    pub label: String,
    pub revision: u64,
    pub description: String,
    pub attrs: BTreeMap<String, String>,
    /// Blob name → (file, the blob's attributes).
    pub blobs: BTreeMap<String, (std::path::PathBuf, BTreeMap<String, String>)>,
}

/// The image a built image directory names (its `image.txt`), when it is one.
pub fn built_image(dir: &Path) -> Option<ImageId> {
    if !dir.join("images").is_dir() {
        return None;
    }
    fs::read_to_string(dir.join(IMAGE_TXT))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A stored image as listed: the image store API's type.
pub use paddock_core::api::images::ImageSummary;

/// A stored image that cannot be used: what can be read of its manifest, and why.
fn with_problem(id: ImageId, bytes: &[u8], problem: String) -> ImageSummary {
    let v: Option<toml::Table> = std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| toml::from_str(t).ok());
    let field = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(&format!("{BASE_EXTENSION}.{k}")))
    };
    ImageSummary {
        id,
        label: field("label")
            .and_then(|l| l.as_str())
            .unwrap_or_default()
            .to_string(),
        revision: field("revision")
            .and_then(|r| r.as_integer())
            .and_then(|r| u64::try_from(r).ok())
            .unwrap_or(0),
        description: field("description")
            .and_then(|d| d.as_str())
            .unwrap_or_default()
            .to_string(),
        size: 0,
        problem: Some(problem),
    }
}

fn invalid(field: &str, message: String) -> StoreError {
    StoreError::Import(format!("{field}: {message}"))
}

impl LocalStore {
    /// Imports a file (a script) or a directory (archived as tar) as a local-driver image.
    pub fn import(&self, source: &Path, opts: &ImportOptions) -> Result<ImageId, StoreError> {
        let meta = fs::metadata(source).map_err(|e| StoreError::Io {
            path: source.to_path_buf(),
            source: e,
        })?;
        let (kind, entry, (digest, size)) = if meta.is_dir() {
            let entry = opts
                .entry_point
                .clone()
                .unwrap_or_else(|| "run.sh".to_string());
            if !source.join(&entry).is_file() {
                return Err(invalid(
                    "entry-point",
                    format!("{} has no file {entry}", source.display()),
                ));
            }
            let staging = self.root().join("tmp");
            fs::create_dir_all(&staging).map_err(|e| StoreError::Io {
                path: staging.clone(),
                source: e,
            })?;
            let archive = tempfile_in(&staging)?;
            let result =
                write_tar(source, archive.path()).and_then(|_| self.put_blob_file(archive.path()));
            ("tar", entry, result?)
        } else {
            let entry = source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    invalid("source", format!("{} has no file name", source.display()))
                })?;
            ("script", entry, self.put_blob_file(source)?)
        };
        let revision = match opts.revision {
            Some(r) => r,
            None => self
                .list()?
                .iter()
                .filter(|i| i.label == opts.label)
                .map(|i| i.revision)
                .max()
                .map_or(1, |r| r + 1),
        };
        let manifest = ImageManifest {
            manifest_version: 0,
            manifest_extensions: vec![BASE_EXTENSION.to_string()],
            label: opts.label.clone(),
            revision,
            description: opts.description.clone(),
            attrs: BTreeMap::from([
                (ATTR_KIND.to_string(), kind.to_string()),
                (ATTR_ENTRY_POINT.to_string(), entry),
                (
                    ATTR_READY.to_string(),
                    if opts.ready_on_puppet {
                        "puppet"
                    } else {
                        "start"
                    }
                    .to_string(),
                ),
            ]),
            blobs: BTreeMap::from([(
                WORKLOAD_BLOB.to_string(),
                BlobSpec {
                    sha256_digest: digest.to_string(),
                    size,
                    attrs: BTreeMap::new(),
                },
            )]),
        };
        self.store_manifest(&manifest)
    }

    /// Validates, serializes (the one serializer: same content, same bytes, same id) and
    /// stores a manifest.
    fn store_manifest(&self, manifest: &ImageManifest) -> Result<ImageId, StoreError> {
        // The format takes an empty label (Treadmill's reader does), but an image built here
        // is meant to be named by it.
        if manifest.label.is_empty() {
            return Err(invalid(
                "label",
                "an image needs a label of 1 to 64 bytes".into(),
            ));
        }
        manifest.validate().map_err(|source| StoreError::Manifest {
            id: String::new(),
            source,
        })?;
        let text = manifest.to_toml().map_err(|source| StoreError::Manifest {
            id: String::new(),
            source,
        })?;
        self.put_manifest(text.as_bytes())
    }

    /// Writes an image from `opts` (blobs first, then the manifest, each verified as it is
    /// stored) and names it in `image.txt`; the manifest is what `import` and `push` write for
    /// the same content, byte for byte (one serializer).
    pub fn assemble(&self, opts: &AssembleOptions) -> Result<ImageId, StoreError> {
        let mut blobs = BTreeMap::new();
        for (name, (file, attrs)) in &opts.blobs {
            let (digest, size) = self.put_blob_file(file)?;
            blobs.insert(
                name.clone(),
                BlobSpec {
                    sha256_digest: digest.to_string(),
                    size,
                    attrs: attrs.clone(),
                },
            );
        }
        let manifest = ImageManifest {
            manifest_version: 0,
            manifest_extensions: vec![BASE_EXTENSION.to_string()],
            label: opts.label.clone(),
            revision: opts.revision,
            description: opts.description.clone(),
            attrs: opts.attrs.clone(),
            blobs,
        };
        let id = self.store_manifest(&manifest)?;
        let txt = self.root().join(IMAGE_TXT);
        fs::write(&txt, format!("{id}\n")).map_err(|e| StoreError::Io {
            path: txt,
            source: e,
        })?;
        Ok(id)
    }

    /// Every image of the store, newest revision first within a label; one whose manifest does
    /// not hash to its name or does not parse is listed with its `problem`, never hidden (a
    /// link is not part of the store and is skipped: `check` reports it). Blobs are not read
    /// here (use [`LocalStore::verified_image`] before use).
    pub fn list(&self) -> Result<Vec<ImageSummary>, StoreError> {
        let mut out = Vec::new();
        let top = self.root().join("images");
        if !top.is_dir() {
            return Ok(out);
        }
        for a in read_dir(&top)? {
            for b in read_dir(&a)? {
                for c in read_dir(&b)? {
                    for file in read_dir(&c)? {
                        let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
                            continue;
                        };
                        let Ok(id) = name.parse::<ImageId>() else {
                            continue;
                        };
                        if self.root().join(image_path(&id)) != file {
                            continue;
                        }
                        // A link or another non-regular file is not part of the store.
                        let bytes = match crate::regular::read(self.root(), &image_path(&id)) {
                            Ok(b) => b,
                            Err(crate::regular::OpenError::NotRegular(_)) => continue,
                            Err(e) => return Err(e.into()),
                        };
                        let actual = sha256_id(&bytes);
                        if actual != id {
                            out.push(with_problem(
                                id,
                                &bytes,
                                format!(
                                    "corrupt: the manifest hashes to {actual} (see `paddock-imagestore check`)"
                                ),
                            ));
                            continue;
                        }
                        match ImageManifest::parse(&bytes) {
                            Ok(m) => out.push(ImageSummary {
                                size: m.total_size(),
                                id,
                                label: m.label,
                                revision: m.revision,
                                description: m.description,
                                problem: None,
                            }),
                            Err(e) => out.push(with_problem(
                                id,
                                &bytes,
                                format!("unusable manifest: {e}"),
                            )),
                        }
                    }
                }
            }
        }
        out.sort_by(|x, y| {
            x.label
                .cmp(&y.label)
                .then(y.revision.cmp(&x.revision))
                .then(x.id.cmp(&y.id))
        });
        Ok(out)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>, StoreError> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| StoreError::Io {
        path: dir.to_path_buf(),
        source: e,
    })? {
        let e = e.map_err(|e| StoreError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        v.push(e.path());
    }
    v.sort();
    Ok(v)
}

/// A fresh, empty file in `dir` that is removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn tempfile_in(dir: &Path) -> Result<TempFile, StoreError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let p = dir.join(format!(
        "import-{}-{}.tar",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    Ok(TempFile(p))
}

/// Archives a directory with sorted entries and zeroed times, so the same tree always gives the
/// same blob.
fn write_tar(dir: &Path, dest: &Path) -> Result<(), StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| StoreError::Io { path, source }
    };
    let file = fs::File::create(dest).map_err(io(dest))?;
    let mut builder = tar::Builder::new(file);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for p in read_dir(&d)? {
            let meta = fs::symlink_metadata(&p).map_err(io(&p))?;
            if meta.is_dir() {
                stack.push(p.clone());
            }
            files.push(p);
        }
    }
    files.sort();
    for p in files {
        let rel = p
            .strip_prefix(dir)
            .map_err(|_| invalid("source", format!("{} escapes the tree", p.display())))?;
        builder.append_path_with_name(&p, rel).map_err(io(&p))?;
    }
    let file = builder.into_inner().map_err(io(dest))?;
    file.sync_all().map_err(io(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(label: &str) -> ImportOptions {
        ImportOptions {
            label: label.into(),
            revision: None,
            description: "demo".into(),
            entry_point: None,
            ready_on_puppet: false,
        }
    }

    #[test]
    fn import_script_and_directory_then_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("store"));
        let script = dir.path().join("hello.sh");
        fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        let id1 = store.import(&script, &opts("hello")).unwrap();
        let image = store.verified_image(&id1).unwrap();
        assert_eq!(image.manifest.attrs[ATTR_KIND], "script");
        assert_eq!(image.manifest.attrs[ATTR_ENTRY_POINT], "hello.sh");
        assert_eq!(image.manifest.revision, 1);

        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("lib")).unwrap();
        fs::write(tree.join("run.sh"), "#!/bin/sh\n. ./lib/x\n").unwrap();
        fs::write(tree.join("lib/x"), "echo x\n").unwrap();
        let id2 = store.import(&tree, &opts("hello")).unwrap();
        let image = store.verified_image(&id2).unwrap();
        assert_eq!(image.manifest.attrs[ATTR_KIND], "tar");
        assert_eq!(image.manifest.revision, 2, "next revision of the label");
        // Deterministic archive: importing the same tree again gives the same blob.
        let again = store
            .import(
                &tree,
                &ImportOptions {
                    revision: Some(2),
                    ..opts("hello")
                },
            )
            .unwrap();
        assert_eq!(again, id2);

        let list = store.list().unwrap();
        assert_eq!(list.iter().map(|i| i.revision).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(list[1].size, 18);

        // A directory without the entry point is refused.
        let empty = dir.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        let e = store.import(&empty, &opts("x")).unwrap_err().to_string();
        assert!(e.contains("run.sh"), "{e}");
    }
}
