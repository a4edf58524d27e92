//! A job's data as files, the same layout wherever a job runs: the local driver writes it
//! under the job's directory (`<job dir>/run/paddock/`), the guest puppet
//! (`paddock-puppet guest`) under `/run/paddock/` inside a VM:
//!
//! ```text
//! job-id                   the job's id and a newline (the guest only)           0644
//! parameters/<name>        one file per parameter, its value as is              0600 secret, 0644 others
//! authorized_keys          the job's SSH keys, one a line                       0600 local, 0644 guest
//!                          (local: only when the job has keys; guest: always)
//! authorized_keys.d/<user> the same, for each job user named (the guest only)  0644
//! ```
//!
//! Every file is written atomically (temporary file, then rename) so a workload never reads
//! half a value. There is no fsync: a job directory does not outlive a crash of its
//! supervisor (leftovers are removed at start), nor `/run` a reboot of the guest, so only
//! atomicity matters, not durability, and an fsync per file would cost milliseconds per job.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::protocol::JobParameter;

/// The job id file under the run directory.
pub const JOB_ID_FILE: &str = "job-id";
/// The parameters' directory under the run directory.
pub const PARAMETERS_DIR: &str = "parameters";
/// The job's SSH keys under the run directory.
pub const AUTHORIZED_KEYS: &str = "authorized_keys";
/// The per-user copies of the job's SSH keys under the run directory.
pub const AUTHORIZED_KEYS_DIR: &str = "authorized_keys.d";

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
    // A stale temporary file would keep its own mode: it goes first.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
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

/// The SSH keys as an `authorized_keys` file: one a line. A key that is not one non-empty line
/// (the switchboard refuses those at enqueue) is an error.
pub fn authorized_keys(keys: &[String]) -> Result<String, String> {
    let mut out = String::new();
    for (i, k) in keys.iter().enumerate() {
        let k = k.trim();
        if k.is_empty() || k.contains(['\n', '\r']) {
            return Err(format!("ssh_keys[{i}]: not one non-empty line"));
        }
        out.push_str(k);
        out.push('\n');
    }
    Ok(out)
}

/// What the guest puppet writes under its run directory (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct GuestFiles<'a> {
    pub job_id: &'a crate::JobId,
    pub parameters: &'a BTreeMap<String, JobParameter>,
    pub ssh_keys: &'a [String],
    /// The job users whose `authorized_keys.d/<user>` is written.
    pub ssh_users: &'a [String],
}

/// Writes a guest's run directory `run` (created, mode 0755): the parameters and the SSH keys
/// first, the job id last, so that `job-id` being there means everything is. The SSH keys are
/// public: mode 0644, readable by sshd as the user it checks them for. Names and keys are
/// checked before anything is written; errors name files, never values.
pub fn write_guest_files(run: &Path, files: &GuestFiles<'_>) -> Result<(), String> {
    if let Some(bad) = files.parameters.keys().find(|n| !valid_name(n)) {
        return Err(format!("invalid parameter name {bad:?}"));
    }
    if let Some(bad) = files.ssh_users.iter().find(|u| !valid_name(u)) {
        return Err(format!("invalid user name {bad:?}"));
    }
    let keys = authorized_keys(files.ssh_keys)?;
    let mkdir = |d: &Path| -> Result<(), String> {
        fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| format!("setting the mode of {}: {e}", d.display()))
    };
    mkdir(run)?;
    mkdir(&run.join(PARAMETERS_DIR))?;
    write_parameters(&run.join(PARAMETERS_DIR), files.parameters)?;
    let write = |p: &Path, text: &str| {
        write_atomic(p, text.as_bytes(), 0o644).map_err(|e| format!("writing {}: {e}", p.display()))
    };
    write(&run.join(AUTHORIZED_KEYS), &keys)?;
    if !files.ssh_users.is_empty() {
        let d = run.join(AUTHORIZED_KEYS_DIR);
        mkdir(&d)?;
        for u in files.ssh_users {
            write(&d.join(u), &keys)?;
        }
    }
    write(&run.join(JOB_ID_FILE), &format!("{}\n", files.job_id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// A directory removed when dropped (paddock-core has no tempfile).
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "paddock-core-{tag}-{}-{}",
                std::process::id(),
                crate::JobId::new()
            ));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn files_modes_and_names() {
        let dir = TempDir::new("params");
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

    #[test]
    fn guest_files() {
        let dir = TempDir::new("guest");
        let run = dir.path().join("run/paddock");
        let job_id = crate::JobId::new();
        let params = BTreeMap::from([
            (
                "token".to_string(),
                JobParameter {
                    value: "s3cret".into(),
                    secret: true,
                },
            ),
            (
                "board".to_string(),
                JobParameter {
                    value: "nrf52".into(),
                    secret: false,
                },
            ),
        ]);
        let keys = vec!["ssh-ed25519 AAAAC3 alice@lab".to_string()];
        let users = vec!["paddock".to_string()];
        let files = GuestFiles {
            job_id: &job_id,
            parameters: &params,
            ssh_keys: &keys,
            ssh_users: &users,
        };
        write_guest_files(&run, &files).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            fs::read_to_string(run.join(JOB_ID_FILE)).unwrap(),
            format!("{job_id}\n")
        );
        assert_eq!(mode(&run.join("parameters/token")), 0o600);
        assert_eq!(mode(&run.join("parameters/board")), 0o644);
        assert_eq!(mode(&run), 0o755);
        assert_eq!(mode(&run.join(PARAMETERS_DIR)), 0o755);
        let k = run.join("authorized_keys.d/paddock");
        assert_eq!(
            fs::read_to_string(&k).unwrap(),
            "ssh-ed25519 AAAAC3 alice@lab\n"
        );
        assert_eq!(mode(&k), 0o644);
        assert_eq!(
            fs::read_to_string(run.join(AUTHORIZED_KEYS)).unwrap(),
            "ssh-ed25519 AAAAC3 alice@lab\n"
        );
        // Written again (a restarted daemon): the same files.
        write_guest_files(&run, &files).unwrap();
        assert_eq!(mode(&run.join("parameters/token")), 0o600);

        // Bad names and keys: refused before anything is written.
        let other = dir.path().join("other");
        let bad_user = vec!["../root".to_string()];
        let e = write_guest_files(
            &other,
            &GuestFiles {
                ssh_users: &bad_user,
                ..files
            },
        )
        .unwrap_err();
        assert!(e.contains("invalid user name"), "{e}");
        let bad_keys = vec!["ssh-ed25519 A\ncommand=\"x\" ssh-rsa B".to_string()];
        let e = write_guest_files(
            &other,
            &GuestFiles {
                ssh_keys: &bad_keys,
                ..files
            },
        )
        .unwrap_err();
        assert!(e.contains("ssh_keys[0]"), "{e}");
        assert!(!other.exists());
    }
}
