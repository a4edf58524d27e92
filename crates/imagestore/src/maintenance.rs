//! Store maintenance run by the operator: `gc` removes blobs no manifest references (after a
//! grace period), `check` re-hashes every file, reports links, and quarantines both.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use paddock_core::ImageId;
use paddock_core::manifest::{ImageManifest, sha256_id};

use crate::local::{StoreError, hash_regular};
use crate::paths::StorePath;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a garbage collection did (or, dry, would do).
#[derive(Debug, Default)]
pub struct GcReport {
    pub images: usize,
    pub referenced: usize,
    /// Unreferenced blobs removed (or to remove), with their sizes.
    pub removed: Vec<(PathBuf, u64)>,
    /// Unreferenced blobs younger than the grace period, kept.
    pub young: usize,
    /// Stale temporary files (abandoned uploads) removed.
    pub stale_temporaries: usize,
}

/// Removes blobs that no manifest references and that are older than `grace` (a blob just
/// uploaded, whose manifest is still on its way, is younger). Refuses to run while any
/// manifest is unreadable or corrupt: its blobs would look unreferenced.
pub fn gc(root: &Path, grace: Duration, dry_run: bool) -> Result<GcReport, StoreError> {
    let mut report = GcReport::default();
    let mut referenced: HashSet<String> = HashSet::new();
    for line in crate::index::list(root).map_err(io(root))? {
        let Ok(p) = StorePath::parse(&line) else {
            continue;
        };
        if let StorePath::Image(id) = &p {
            let path = root.join(p.relative());
            let bytes = crate::regular::read(root, &p.relative())?;
            if &sha256_id(&bytes) != id {
                return Err(StoreError::Import(format!(
                    "{} is corrupt; run `paddock-imagestore check --repair` before gc",
                    path.display()
                )));
            }
            let digests = match ImageManifest::parse(&bytes) {
                Ok(m) => m.blobs.values().map(|b| b.sha256_digest.clone()).collect(),
                // A manifest Paddock no longer accepts (`check` reports it) still keeps the
                // blobs it names, as long as they can be read from it.
                Err(source) => blob_digests(&bytes).ok_or_else(|| StoreError::Manifest {
                    id: id.to_string(),
                    source,
                })?,
            };
            report.images += 1;
            referenced.extend(digests);
        }
    }
    report.referenced = referenced.len();
    let cutoff = SystemTime::now() - grace;
    let old = |path: &Path| {
        fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < cutoff)
    };
    for line in crate::index::list(root).map_err(io(root))? {
        let Ok(StorePath::Blob(d)) = StorePath::parse(&line) else {
            continue;
        };
        if referenced.contains(d.as_str()) {
            continue;
        }
        let path = root.join(StorePath::Blob(d).relative());
        if !old(&path) {
            report.young += 1;
            continue;
        }
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if !dry_run {
            fs::remove_file(&path).map_err(io(&path))?;
        }
        report.removed.push((path, size));
    }
    if let Ok(entries) = fs::read_dir(root.join("tmp")) {
        for e in entries.flatten() {
            if old(&e.path()) {
                if !dry_run {
                    let _ = fs::remove_file(e.path());
                }
                report.stale_temporaries += 1;
            }
        }
    }
    if !dry_run && !report.removed.is_empty() {
        crate::index::write(root).map_err(io(root))?;
    }
    Ok(report)
}

/// The blob digests a manifest names, read from its TOML without the format's other rules;
/// `None` when it is not TOML. Digests are lower-cased, as the store names blobs.
fn blob_digests(bytes: &[u8]) -> Option<Vec<String>> {
    let table: toml::Table = toml::from_str(std::str::from_utf8(bytes).ok()?).ok()?;
    let base = paddock_core::manifest::BASE_EXTENSION;
    let mut out = Vec::new();
    if let Some(blobs) = table
        .get(&format!("{base}.blobs"))
        .and_then(|b| b.as_table())
    {
        for blob in blobs.values() {
            if let Some(d) = blob
                .get(format!("{base}.sha256-digest"))
                .and_then(|d| d.as_str())
            {
                out.push(d.to_ascii_lowercase());
            }
        }
    }
    Some(out)
}

/// One corrupt file found by `check`.
#[derive(Debug)]
pub struct Corrupt {
    pub path: PathBuf,
    pub expected: ImageId,
    pub actual: ImageId,
    /// Where it was moved with `--repair`.
    pub quarantined: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub checked: usize,
    pub bytes: u64,
    pub corrupt: Vec<Corrupt>,
    /// Links (to files or directories) and other entries that are neither regular files nor
    /// directories under `images/` and `blobs/`: never served nor listed, but a sign that the
    /// store was tampered with or copied wrongly.
    pub links: Vec<PathBuf>,
    /// Where `--repair` moved them (the links themselves, never what they point to).
    pub links_quarantined: Vec<PathBuf>,
    /// Manifests that hash to their name but are not images Paddock (or Treadmill's reader)
    /// can use, with why: listed with their problem, never used. `--repair` leaves them (their
    /// content is what was published); remove them, or publish a fixed manifest.
    pub invalid: Vec<(PathBuf, String)>,
}

/// Re-hashes every file of the store and finds every link in it; with `repair`, moves corrupt
/// files and links to `ROOT/quarantine/` (out of `all.txt`) so that a mirror or a fresh upload
/// can replace them.
pub fn check(
    root: &Path,
    repair: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<CheckReport, StoreError> {
    let scan = crate::index::scan(root).map_err(io(root))?;
    let lines = scan.lines;
    let mut report = CheckReport {
        links: scan.not_regular,
        ..CheckReport::default()
    };
    for (i, line) in lines.iter().enumerate() {
        progress(i, lines.len());
        let Ok(p) = StorePath::parse(line) else {
            continue;
        };
        let Some(expected) = p.digest().cloned() else {
            continue;
        };
        let path = root.join(p.relative());
        let (actual, len) = hash_regular(root, &p.relative())?;
        report.checked += 1;
        report.bytes += len;
        if actual == expected
            && let StorePath::Image(_) = &p
        {
            let bytes = crate::regular::read(root, &p.relative())?;
            if sha256_id(&bytes) == expected
                && let Err(e) = ImageManifest::parse(&bytes)
            {
                report.invalid.push((path.clone(), e.to_string()));
            }
        }
        if actual != expected {
            let quarantined = if repair {
                let q = root.join("quarantine");
                fs::create_dir_all(&q).map_err(io(&q))?;
                let dest = q.join(format!("{}.{}", expected, actual));
                fs::rename(&path, &dest).map_err(io(&path))?;
                Some(dest)
            } else {
                None
            };
            report.corrupt.push(Corrupt {
                path,
                expected,
                actual,
                quarantined,
            });
        }
    }
    progress(lines.len(), lines.len());
    if repair {
        for (i, link) in report.links.iter().enumerate() {
            let q = root.join("quarantine");
            fs::create_dir_all(&q).map_err(io(&q))?;
            let name = link
                .strip_prefix(root)
                .unwrap_or(link)
                .to_string_lossy()
                .replace('/', "_");
            let dest = q.join(format!("link-{i}-{name}"));
            // Moves the link itself, never what it points to.
            fs::rename(link, &dest).map_err(io(link))?;
            report.links_quarantined.push(dest);
        }
    }
    if repair && !report.corrupt.is_empty() {
        crate::index::write(root).map_err(io(root))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::ImportOptions;
    use crate::local::LocalStore;

    #[test]
    fn gc_keeps_referenced_and_young_blobs_and_check_quarantines() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let script = dir.path().join("s.sh");
        fs::write(&script, "echo kept\n").unwrap();
        let id = store
            .import(
                &script,
                &ImportOptions {
                    label: "kept".into(),
                    revision: None,
                    description: String::new(),
                    entry_point: None,
                    ready_on_puppet: false,
                },
            )
            .unwrap();
        let orphan_src = dir.path().join("orphan");
        fs::write(&orphan_src, "nobody references me").unwrap();
        let (orphan, _) = store.put_blob_file(&orphan_src).unwrap();
        let orphan_path = dir.path().join(StorePath::Blob(orphan).relative());

        // Young: kept whatever the mode.
        let r = gc(dir.path(), Duration::from_secs(3600), false).unwrap();
        assert_eq!((r.images, r.removed.len(), r.young), (1, 0, 1));
        assert!(orphan_path.exists());
        // Old enough: a dry run only reports it; a real run removes it.
        let r = gc(dir.path(), Duration::ZERO, true).unwrap();
        assert_eq!(r.removed.len(), 1);
        assert!(orphan_path.exists());
        let r = gc(dir.path(), Duration::ZERO, false).unwrap();
        assert_eq!(r.removed.len(), 1);
        assert!(!orphan_path.exists());
        store.verified_image(&id).unwrap();

        // Corrupt a blob: check finds it, --repair moves it out of the store and the index.
        let blob = store.verified_image(&id).unwrap().blobs[0].1.clone();
        fs::write(&blob, "echo evil\n").unwrap();
        let r = check(dir.path(), false, |_, _| {}).unwrap();
        assert_eq!(r.corrupt.len(), 1);
        assert!(blob.exists());
        let r = check(dir.path(), true, |_, _| {}).unwrap();
        assert!(r.corrupt[0].quarantined.as_ref().unwrap().exists());
        assert!(!blob.exists());
        let index = fs::read_to_string(dir.path().join("all.txt")).unwrap();
        assert!(!index.contains(&r.corrupt[0].expected.to_string()));
        // A corrupt manifest stops gc from deleting blobs it might reference.
        let manifest = dir.path().join(StorePath::Image(id).relative());
        fs::write(&manifest, "garbage").unwrap();
        assert!(gc(dir.path(), Duration::ZERO, false).is_err());
    }
}
