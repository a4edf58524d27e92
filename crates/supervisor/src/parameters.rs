//! Job parameters as files: `<dir>/<name>`, one file per parameter, written atomically
//! (temporary file, then rename) so a workload never reads half a value. Secret parameters
//! are mode 0600, the others 0644. There is no fsync: a job directory does not outlive a crash
//! of its supervisor (leftovers are removed at start), so only atomicity matters, not
//! durability, and an fsync per file would cost milliseconds per job.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use paddock_core::protocol::JobParameter;

/// Whether a name is safe as a file name (the switchboard enforces the same rule at enqueue).
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Writes `contents` to `path` atomically (for readers) with `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(contents)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes every parameter into `dir` (created, mode 0755).
pub fn write_parameters(
    dir: &Path,
    parameters: &BTreeMap<String, JobParameter>,
) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (name, p) in parameters {
        if !valid_name(name) {
            return Err(format!("invalid parameter name {name:?}"));
        }
        let mode = if p.secret { 0o600 } else { 0o644 };
        // The error names the parameter, never its value.
        write_atomic(&dir.join(name), p.value.as_bytes(), mode)
            .map_err(|e| format!("writing parameter {name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_modes_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let params = BTreeMap::from([
            (
                "greeting".to_string(),
                JobParameter {
                    value: "hi".into(),
                    secret: false,
                },
            ),
            (
                "key".to_string(),
                JobParameter {
                    value: "s3cret".into(),
                    secret: true,
                },
            ),
        ]);
        let p = dir.path().join("run/paddock/parameters");
        write_parameters(&p, &params).unwrap();
        assert_eq!(fs::read_to_string(p.join("greeting")).unwrap(), "hi");
        assert_eq!(fs::read_to_string(p.join("key")).unwrap(), "s3cret");
        let mode = |n: &str| fs::metadata(p.join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("key"), 0o600);
        assert_eq!(mode("greeting"), 0o644);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&p).unwrap().count(), 2);

        let bad = BTreeMap::from([(
            "../escape".to_string(),
            JobParameter {
                value: "x".into(),
                secret: true,
            },
        )]);
        let e = write_parameters(&p, &bad).unwrap_err();
        assert!(e.contains("invalid parameter name"), "{e}");
        assert!(!dir.path().join("run/paddock/escape").exists());
    }
}
