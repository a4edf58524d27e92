//! The `local` driver: the job's workload runs as a child process of the supervisor, in its own
//! process group, in a fresh job directory:
//!
//! ```text
//! <work_dir>/jobs/<job id>/
//!   workload/                  the image's script, or its tar archive unpacked
//!   run/paddock/parameters/    one file per parameter (secret ones mode 0600)
//!   run/paddock/authorized_keys  (when the job has SSH keys)
//!   tmp/                       TMPDIR
//! ```
//!
//! Stop (and the end of the workload) signals the whole process group, SIGTERM then SIGKILL
//! after `stop_grace_s`, so nothing the workload forked survives; the directory is removed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use paddock_core::protocol::ConsoleStream;
use paddock_imagestore::import::{ATTR_ENTRY_POINT, ATTR_KIND, ATTR_READY, WORKLOAD_BLOB};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::task::JoinHandle;

use super::process_group::{kill_job_processes, terminate_group};
use super::{EventSink, Host, HostDriver, HostError, HostEvent, HostJob};
use crate::config::LocalDriverConfig;
use crate::puppet_socket::PuppetSocket;
use paddock_core::job_files::{write_atomic, write_parameters};

/// Longest path a Unix socket address can hold, less a margin.

#[derive(Debug)]
pub struct LocalDriver {
    config: LocalDriverConfig,
    jobs_dir: PathBuf,
    sockets_dir: PathBuf,
    /// Directory of the supervisor's executable, put first in the workload's `PATH`.
    exe_dir: Option<PathBuf>,
}

impl LocalDriver {
    /// Creates `work_dir/jobs` and the puppet socket directory (`work_dir/sockets`, or a private
    /// directory under the system temporary directory when that path would be too long for a
    /// socket address). A relative `work_dir` is made absolute from the current directory first:
    /// the workload runs in its own directory and is started by an absolute path.
    pub fn new(config: LocalDriverConfig, work_dir: &Path) -> Result<LocalDriver, HostError> {
        let work_dir = std::path::absolute(work_dir)
            .map_err(HostError::io(format!("resolving {}", work_dir.display())))?;
        let jobs_dir = work_dir.join("jobs");
        make_private_dir(&jobs_dir)?;
        // A socket is `<dir>/<32 hex>.sock`.
        let sockets_dir = super::socket_dir(&work_dir.join("sockets"), 37, "sockets")?;
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Ok(LocalDriver {
            config,
            jobs_dir,
            sockets_dir,
            exe_dir,
        })
    }

    pub fn job_dir(&self, job: &paddock_core::JobId) -> PathBuf {
        self.jobs_dir.join(job.to_string())
    }
}

pub(crate) fn make_private_dir(p: &Path) -> Result<(), HostError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(HostError::io(format!("creating {}", p.display())))
}

/// How to run the image's workload.
struct Workload {
    kind: String,
    entry: String,
    ready_on_puppet: bool,
    blob: PathBuf,
    digest: paddock_core::ImageId,
    size: u64,
}

fn workload_of(job: &HostJob) -> Result<Workload, HostError> {
    let m = &job.image.manifest;
    let attr = |k: &str| m.attrs.get(k).cloned();
    let kind = attr(ATTR_KIND).ok_or_else(|| {
        HostError::Image(format!(
            "image {} is not a local-driver image: attribute {ATTR_KIND} is missing",
            job.image.id
        ))
    })?;
    let entry = attr(ATTR_ENTRY_POINT).ok_or_else(|| {
        HostError::Image(format!(
            "image {}: attribute {ATTR_ENTRY_POINT} is missing",
            job.image.id
        ))
    })?;
    if entry.is_empty() || entry.starts_with('/') || entry.split('/').any(|c| c == "..") {
        return Err(HostError::Image(format!(
            "image {}: entry point {entry:?} must be a relative path inside the image",
            job.image.id
        )));
    }
    let ready_on_puppet = match attr(ATTR_READY).as_deref() {
        None | Some("start") => false,
        Some("puppet") => true,
        Some(other) => {
            return Err(HostError::Image(format!(
                "image {}: {ATTR_READY} = {other:?} (use start or puppet)",
                job.image.id
            )));
        }
    };
    let blob = job
        .image
        .blobs
        .iter()
        .find(|(n, _)| n == WORKLOAD_BLOB)
        .map(|(_, p)| p.clone())
        .ok_or_else(|| {
            HostError::Image(format!(
                "image {} has no blob named {WORKLOAD_BLOB}",
                job.image.id
            ))
        })?;
    let spec = &m.blobs[WORKLOAD_BLOB];
    let digest = spec
        .sha256_digest
        .parse()
        .map_err(|_| HostError::Image("bad workload digest".into()))?;
    Ok(Workload {
        kind,
        entry,
        ready_on_puppet,
        blob,
        digest,
        size: spec.size,
    })
}

/// Copies (verifying again) or unpacks the workload into `dir`; returns the program to run.
fn install_workload(w: &Workload, dir: &Path) -> Result<PathBuf, HostError> {
    make_private_dir(dir)?;
    let program = dir.join(&w.entry);
    match w.kind.as_str() {
        "script" => {
            paddock_imagestore::copy_verified(&w.blob, &program, &w.digest, w.size)
                .map_err(|e| HostError::Image(e.to_string()))?;
        }
        "tar" => {
            let copy = dir.join(".workload.tar");
            paddock_imagestore::copy_verified(&w.blob, &copy, &w.digest, w.size)
                .map_err(|e| HostError::Image(e.to_string()))?;
            let file = fs::File::open(&copy).map_err(HostError::io("opening the archive"))?;
            let mut archive = tar::Archive::new(file);
            archive.set_preserve_permissions(true);
            // `unpack` refuses entries that would land outside `dir`.
            archive
                .unpack(dir)
                .map_err(|e| HostError::Image(format!("unpacking the workload archive: {e}")))?;
            let _ = fs::remove_file(&copy);
            if !program.is_file() {
                return Err(HostError::Image(format!(
                    "the workload archive has no file {}",
                    w.entry
                )));
            }
        }
        other => {
            return Err(HostError::Image(format!(
                "{ATTR_KIND} = {other:?} (use script or tar)"
            )));
        }
    }
    let mut perm = fs::metadata(&program)
        .map_err(HostError::io("reading the entry point"))?
        .permissions();
    perm.set_mode(perm.mode() | 0o700);
    fs::set_permissions(&program, perm)
        .map_err(HostError::io("making the entry point runnable"))?;
    Ok(program)
}

/// A script without `#!` is run by `/bin/sh`; anything else (`#!`, an ELF binary) is executed
/// directly.
fn command_for(program: &Path) -> Command {
    let mut head = [0u8; 4];
    let n = fs::File::open(program)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    let head = &head[..n];
    if head.starts_with(b"#!") || head.starts_with(b"\x7fELF") {
        Command::new(program)
    } else {
        let mut c = Command::new("/bin/sh");
        c.arg(program);
        c
    }
}

impl HostDriver for LocalDriver {
    type Host = LocalHost;

    fn name(&self) -> &'static str {
        "local"
    }

    async fn start(&self, job: HostJob, events: EventSink) -> Result<LocalHost, HostError> {
        let dir = self.job_dir(&job.job_id);
        let socket = self
            .sockets_dir
            .join(format!("{}.sock", job.job_id.to_string().replace('-', "")));
        match self.prepare_and_spawn(&job, &dir, &socket, events).await {
            Ok(host) => Ok(host),
            Err(e) => {
                let _ = fs::remove_file(&socket);
                remove_dir(&dir).await;
                Err(e)
            }
        }
    }

    async fn cleanup_leftovers(&self) {
        let Ok(entries) = fs::read_dir(&self.jobs_dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let killed = tokio::task::spawn_blocking({
                let name = name.clone();
                move || kill_job_processes(&name)
            })
            .await
            .unwrap_or(0);
            tracing::warn!(
                job.id = %name,
                killed,
                "removing the leftovers of a job from an earlier run"
            );
            remove_dir(&e.path()).await;
        }
        if let Ok(entries) = fs::read_dir(&self.sockets_dir) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

impl LocalDriver {
    async fn prepare_and_spawn(
        &self,
        job: &HostJob,
        dir: &Path,
        socket: &Path,
        events: EventSink,
    ) -> Result<LocalHost, HostError> {
        let workload = workload_of(job)?;
        let ready_on_puppet = workload.ready_on_puppet;
        remove_dir(dir).await;
        make_private_dir(dir)?;
        let program = {
            let dir = dir.to_path_buf();
            let params = job.parameters.clone();
            let keys = job.ssh_keys.clone();
            tokio::task::spawn_blocking(move || -> Result<PathBuf, HostError> {
                let program = install_workload(&workload, &dir.join("workload"))?;
                let run = dir.join("run/paddock");
                write_parameters(&run.join("parameters"), &params).map_err(HostError::Other)?;
                if !keys.is_empty() {
                    let k = keys.join("\n") + "\n";
                    write_atomic(&run.join("authorized_keys"), k.as_bytes(), 0o600)
                        .map_err(HostError::io("writing authorized_keys"))?;
                }
                make_private_dir(&dir.join("tmp"))?;
                Ok(program)
            })
            .await
            .map_err(|e| HostError::Other(format!("preparing the job directory: {e}")))??
        };
        let puppet = PuppetSocket::bind(socket, events.clone())
            .map_err(HostError::io(format!("binding {}", socket.display())))?;

        let mut path = self.config.path.clone();
        if let Some(d) = &self.exe_dir {
            path = format!("{}:{path}", d.display());
        }
        let env: BTreeMap<String, String> = self
            .config
            .env
            .clone()
            .into_iter()
            .chain([
                ("PATH".to_string(), path),
                ("HOME".to_string(), dir.display().to_string()),
                ("TMPDIR".to_string(), dir.join("tmp").display().to_string()),
                ("PADDOCK_JOB_ID".to_string(), job.job_id.to_string()),
                ("PADDOCK_JOB_DIR".to_string(), dir.display().to_string()),
                ("PADDOCK_IMAGE_ID".to_string(), job.image.id.to_string()),
                (
                    "PADDOCK_PARAMETERS_DIR".to_string(),
                    dir.join("run/paddock/parameters").display().to_string(),
                ),
                (
                    paddock_core::puppet::SOCKET_ENV.to_string(),
                    socket.display().to_string(),
                ),
            ])
            .chain(
                job.supervisor_id
                    .map(|s| ("PADDOCK_SUPERVISOR_ID".to_string(), s.to_string())),
            )
            .collect();
        let mut cmd = command_for(&program);
        cmd.current_dir(dir.join("workload"))
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = spawn_retrying(&mut cmd)
            .await
            .map_err(HostError::io(format!("starting {}", program.display())))?;
        let pgid = child.id().map(|p| p as i32).unwrap_or(0);
        tracing::info!(pgid, program = %program.display(), "workload started");

        let stdout = child.stdout.take().map(|s| {
            tokio::spawn(pump(
                Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                ConsoleStream::Stdout,
                events.clone(),
            ))
        });
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(pump(Box::new(s), ConsoleStream::Stderr, events.clone())));
        if !ready_on_puppet {
            let _ = events.send(HostEvent::Ready).await;
        }
        let grace = Duration::from_secs(self.config.stop_grace_s);
        let running = Arc::new(AtomicBool::new(true));
        let monitor = tokio::spawn({
            let running = running.clone();
            async move {
                let status = child.wait().await;
                running.store(false, Ordering::SeqCst);
                // Whatever the workload left running goes with it.
                terminate_group(pgid, grace).await;
                for pump in [stdout, stderr].into_iter().flatten() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
                }
                let (code, detail) = match status {
                    Ok(s) => match s.code() {
                        Some(c) => (Some(c), format!("workload exited with code {c}")),
                        None => (
                            None,
                            format!(
                                "workload killed by signal {}",
                                std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)
                            ),
                        ),
                    },
                    Err(e) => (None, format!("waiting for the workload: {e}")),
                };
                let _ = events.send(HostEvent::Exited { code, detail }).await;
            }
        });
        Ok(LocalHost {
            dir: dir.to_path_buf(),
            pgid,
            grace,
            running,
            monitor: Some(monitor),
            puppet: Some(puppet),
        })
    }
}

/// Spawns, retrying briefly on ETXTBSY: the program was just written, and a process forked
/// meanwhile by another thread (another job starting) may still hold the write descriptor
/// between its fork and exec.
async fn spawn_retrying(cmd: &mut Command) -> std::io::Result<tokio::process::Child> {
    const ETXTBSY: i32 = 26;
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            r => return r,
        }
    }
}

/// Reads a pipe and sends its output as console events, never splitting a UTF-8 character.
pub(crate) async fn pump(
    mut r: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    stream: ConsoleStream,
    events: EventSink,
) {
    let mut buf = vec![0u8; 8192];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        carry.extend_from_slice(&buf[..n]);
        let cut = match std::str::from_utf8(&carry) {
            Ok(_) => carry.len(),
            // An incomplete character at the end waits for the next read; invalid bytes
            // are replaced.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => carry.len(),
        };
        if cut == 0 {
            continue;
        }
        let data = String::from_utf8_lossy(&carry[..cut]).into_owned();
        carry.drain(..cut);
        if events
            .send(HostEvent::Console { stream, data })
            .await
            .is_err()
        {
            return;
        }
    }
    if !carry.is_empty() {
        let data = String::from_utf8_lossy(&carry).into_owned();
        let _ = events.send(HostEvent::Console { stream, data }).await;
    }
}

pub(crate) async fn remove_dir(dir: &Path) {
    let d = dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || match fs::remove_dir_all(&d) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %d.display(), error = %e, "removing the job directory"),
    })
    .await;
}

/// A running (or finished) local workload.
#[derive(Debug)]
pub struct LocalHost {
    dir: PathBuf,
    pgid: i32,
    grace: Duration,
    running: Arc<AtomicBool>,
    monitor: Option<JoinHandle<()>>,
    puppet: Option<PuppetSocket>,
}

impl Host for LocalHost {
    async fn stop(&mut self) -> Result<(), HostError> {
        if self.running.load(Ordering::SeqCst) {
            terminate_group(self.pgid, self.grace).await;
        }
        if let Some(m) = self.monitor.take() {
            // The monitor ends once the workload is gone and its pipes are drained.
            let _ = tokio::time::timeout(self.grace + Duration::from_secs(5), m).await;
        }
        self.puppet.take();
        remove_dir(&self.dir).await;
        Ok(())
    }

    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn console_output_never_splits_a_character() {
        let (mut w, r) = tokio::io::duplex(64);
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let pump = tokio::spawn(pump(Box::new(r), ConsoleStream::Stdout, tx));
        // "é" is two bytes; the first write ends in the middle of it.
        let bytes = "caf\u{e9} ok".as_bytes();
        w.write_all(&bytes[..4]).await.unwrap();
        w.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        w.write_all(&bytes[4..]).await.unwrap();
        drop(w);
        pump.await.unwrap();
        let mut got = Vec::new();
        while let Ok(HostEvent::Console { data, .. }) = rx.try_recv() {
            assert!(
                !data.contains('\u{fffd}'),
                "a split character was replaced: {data:?}"
            );
            got.push(data);
        }
        assert_eq!(got.concat(), "caf\u{e9} ok");
        assert!(
            got.len() >= 2,
            "the first read was sent before the rest: {got:?}"
        );
    }

    #[test]
    fn scripts_without_a_shebang_run_through_sh() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "echo hi\n").unwrap();
        assert_eq!(command_for(&a).as_std().get_program(), "/bin/sh");
        std::fs::write(&a, "#!/bin/bash\necho hi\n").unwrap();
        assert_eq!(command_for(&a).as_std().get_program(), a.as_os_str());
    }
}
