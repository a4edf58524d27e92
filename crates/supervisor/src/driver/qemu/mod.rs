//! The `qemu` driver: each job runs in its own QEMU VM.
//!
//! ```text
//! <work_dir>/qemu/<job id>/
//!   overlay.qcow2     the job's disk: a qcow2 overlay over the image's read-only layers
//!   qemu.pid          QEMU's pid (-pidfile)
//!
//! <work_dir>/qemu-sockets/    (a private temporary directory when this path would be too
//!                             long for a socket address)
//!   <job id>.qmp      the QMP control socket
//!   <job id>.puppet   the puppet port's host side (QEMU listens, the supervisor connects)
//! ```
//!
//! - The image's blobs stay read-only where the image source verified them (a local store, or
//!   the cache, pinned while the job runs); QEMU opens them read-only through `-blockdev`,
//!   each layer naming the one below, so the names in the images' headers are only checked
//!   (`qemu-img info --backing-chain`), never followed.
//! - QEMU starts paused (`-S`) in its own process group with an empty environment (`PATH`
//!   only); nothing of the job's parameters is on its command line. Once QMP answers, the
//!   guest runs (`cont`). The serial console (QEMU's standard output) is the job's console
//!   (`stdout`); QEMU's own messages are its `stderr`. QEMU's standard input is the serial
//!   port's input (`-chardev stdio`): console input ([`Host::console_input`]) is written there.
//! - The puppet: a virtio-serial port named [`PUPPET_PORT`] (in the guest
//!   `/dev/virtio-ports/org.paddock.puppet.0`) whose host side is a Unix socket QEMU listens
//!   on; the supervisor connects to it and serves the puppet protocol there, reconnecting
//!   when the connection ends. It also answers the guest puppet's `job_data` request there
//!   with the job's id, parameters (secret ones included) and SSH keys: that port is the
//!   only way they reach the guest (never QEMU's command line, environment or a log; the
//!   answer is counted in the log, never shown). The host is `Ready` when the guest's puppet
//!   reports `ready`; without any report (`ready`, `exit` or `terminate`: fetching the data
//!   is not one) within `boot_timeout_s` of QEMU's start, QEMU is killed and the job ends
//!   `supervisor_host_start_error` ([`HostEvent::StartFailed`]).
//! - A guest that powers off ends the host ([`HostEvent::PoweredOff`]); QEMU failing ends it
//!   with [`HostEvent::Exited`].
//! - Stop: `system_powerdown` over QMP, then SIGKILL to QEMU's process group after
//!   `stop_grace_s`; the job directory (overlay included) is removed.
//! - Network (`network = "user"`, the default): QEMU's user-mode network
//!   (`-netdev user,id=paddock-net,hostfwd=tcp:<ssh_listen>:<port>-:22` and a
//!   `virtio-net-pci` device), the guest's sshd forwarded to a port of `ssh_ports` that was
//!   free when the job started (probed with a bind, then released to QEMU; when another
//!   process takes it in between, QEMU fails to set up the forwarding and the start is tried
//!   again with another port, at most [`PORT_ATTEMPTS`] times). [`Host::access`] says where.
//! - At start, [`HostDriver::cleanup_leftovers`] kills every QEMU whose command line names a
//!   path under `<work_dir>/qemu/` (a crashed earlier run) and removes the job directories.

pub mod accel;
pub mod image;
pub mod qmp;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use paddock_core::protocol::{AccessEndpoint, ConsoleStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::local::{make_private_dir, pump, remove_dir};
use super::{EventSink, Host, HostDriver, HostError, HostEvent, HostJob};
use crate::config::{Accel, Network, QemuDriverConfig, parse_port_range};
use crate::puppet_socket::serve_stream;
use paddock_core::puppet::{JobData, PuppetRequest};
use qmp::Qmp;

/// The name of the puppet's virtio-serial port.
pub const PUPPET_PORT: &str = "org.paddock.puppet.0";
/// Longest path a Unix socket address can hold, less a margin.
/// How much of QEMU's own error output is kept for messages.
const STDERR_TAIL: usize = 4096;
/// How long a QMP command may take.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);
/// How long a write of console input may wait for QEMU to take it.
const CONSOLE_INPUT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many ports a start tries when QEMU cannot bind the one it was given.
pub const PORT_ATTEMPTS: usize = 5;
/// What QEMU says when it cannot bind a forwarded port.
const HOSTFWD_FAILED: &str = "Could not set up host forwarding rule";
/// The id of the user-mode network (`-netdev`): `extra_args` may add others.
const NETDEV_ID: &str = "paddock-net";

#[derive(Debug)]
pub struct QemuDriver {
    config: QemuDriverConfig,
    /// `kvm` or `tcg`, resolved from `auto` at creation.
    accel: Accel,
    vms_dir: PathBuf,
    sockets_dir: PathBuf,
    /// The SSH ports of this driver's running VMs (a port is probed free before QEMU binds
    /// it: two starts must not probe the same one).
    ports: Arc<Mutex<HashSet<u16>>>,
    /// Where the next port search starts in `ssh_ports` (round robin: a port just released
    /// is not reused at once, so a user's `known_hosts` entry and a lingering connection of
    /// the job before do not meet the next job).
    next_port: AtomicUsize,
    /// `ssh_host`, or its default, resolved once.
    access_host: String,
}

/// A port of `ssh_ports` held for a job until its VM is gone.
#[derive(Debug)]
struct PortLease {
    port: u16,
    ports: Arc<Mutex<HashSet<u16>>>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.port);
    }
}

impl QemuDriver {
    /// Creates `work_dir/qemu` and resolves the accelerator (`auto` runs a bounded probe and
    /// logs its choice).
    pub async fn new(config: QemuDriverConfig, work_dir: &Path) -> Result<QemuDriver, HostError> {
        let work_dir = std::path::absolute(work_dir)
            .map_err(HostError::io(format!("resolving {}", work_dir.display())))?;
        let vms_dir = work_dir.join("qemu");
        make_private_dir(&vms_dir)?;
        // A socket is `<dir>/<32 hex>.qmp` or `<dir>/<32 hex>.puppet`.
        let sockets_dir = crate::driver::socket_dir(&work_dir.join("qemu-sockets"), 40, "qmp")?;
        let accel = accel::choose(config.accel, &config.qemu, &config.machine).await;
        let access_host = config.access_host();
        if config.network == Network::User {
            tracing::info!(
                ssh_listen = %config.ssh_listen,
                ssh_ports = %config.ssh_ports,
                ssh_host = %access_host,
                ssh_user = %config.ssh_user,
                "VMs get user-mode networking, their sshd forwarded to a port of ssh_ports"
            );
        }
        Ok(QemuDriver {
            config,
            accel,
            vms_dir,
            sockets_dir,
            ports: Arc::new(Mutex::new(HashSet::new())),
            next_port: AtomicUsize::new(0),
            access_host,
        })
    }

    /// The accelerator in use (`kvm` or `tcg`).
    pub fn accel(&self) -> Accel {
        self.accel
    }

    pub fn job_dir(&self, job: &paddock_core::JobId) -> PathBuf {
        self.vms_dir.join(job.to_string())
    }

    fn socket_path(&self, job: &paddock_core::JobId) -> PathBuf {
        self.sockets_dir
            .join(format!("{}.qmp", job.to_string().replace('-', "")))
    }

    fn puppet_path(&self, job: &paddock_core::JobId) -> PathBuf {
        self.sockets_dir
            .join(format!("{}.puppet", job.to_string().replace('-', "")))
    }

    /// A port of `ssh_ports` that no VM of this driver holds and that could be bound now
    /// (the probe's socket is closed at once: QEMU binds it next).
    fn take_port(&self) -> Result<PortLease, HostError> {
        let c = &self.config;
        let range = parse_port_range(&c.ssh_ports).map_err(HostError::Other)?;
        let addr = c.ssh_listen_addr().map_err(HostError::Other)?;
        let (first, count) = (*range.start(), usize::from(range.end() - range.start()) + 1);
        let mut held = self.ports.lock().unwrap_or_else(|p| p.into_inner());
        let start = self.next_port.fetch_add(1, Ordering::Relaxed);
        for i in 0..count {
            let Ok(port) = u16::try_from(usize::from(first) + (start + i) % count) else {
                continue;
            };
            if held.contains(&port) {
                continue;
            }
            if std::net::TcpListener::bind((addr, port)).is_ok() {
                held.insert(port);
                self.next_port.store(start + i + 1, Ordering::Relaxed);
                return Ok(PortLease {
                    port,
                    ports: self.ports.clone(),
                });
            }
        }
        Err(HostError::Other(format!(
            "no free port in ssh_ports = {} on {addr} (all {count} in use)",
            c.ssh_ports
        )))
    }
}

/// Kills (SIGKILL, with its process group when it leads one) every process whose command line
/// has an argument under `dir`: the QEMUs of a crashed earlier run. Returns how many.
/// Blocking (reads `/proc`).
pub fn kill_processes_using(dir: &Path) -> usize {
    let mut prefix = dir.as_os_str().as_encoded_bytes().to_vec();
    prefix.push(b'/');
    crate::driver::process_group::kill_processes_where("cmdline", true, |cmdline| {
        cmdline.split(|b| *b == 0).any(|arg| {
            // `-pidfile /…/qemu/<job>/qemu.pid`, or inside a `-blockdev` JSON argument.
            arg.windows(prefix.len()).any(|w| w == prefix.as_slice())
        })
    })
}

impl HostDriver for QemuDriver {
    type Host = QemuHost;

    fn name(&self) -> &'static str {
        "qemu"
    }

    async fn start(&self, job: HostJob, events: EventSink) -> Result<QemuHost, HostError> {
        let dir = self.job_dir(&job.job_id);
        let socket = self.socket_path(&job.job_id);
        let job_id = job.job_id;
        let mut started: Option<Started> = None;
        let r = self
            .prepare_and_spawn(&job, &dir, &socket, events, &mut started)
            .await;
        match r {
            Ok(host) => Ok(host),
            Err(e) => {
                if let Some(s) = started.take() {
                    drop(s.go);
                    kill_and_wait(s.pgid, &s.running, s.monitor).await;
                }
                let _ = std::fs::remove_file(&socket);
                let _ = std::fs::remove_file(self.puppet_path(&job_id));
                remove_dir(&dir).await;
                Err(e)
            }
        }
    }

    async fn cleanup_leftovers(&self) {
        let dir = self.vms_dir.clone();
        let killed = tokio::task::spawn_blocking(move || kill_processes_using(&dir))
            .await
            .unwrap_or(0);
        if killed > 0 {
            tracing::warn!(killed, "killed the QEMU processes of an earlier run");
            // Give the killed processes a moment to release their files.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Ok(entries) = std::fs::read_dir(&self.vms_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                tracing::warn!(
                    job.id = %name,
                    "removing the VM leftovers (overlay, sockets) of a job from an earlier run"
                );
                remove_dir(&e.path()).await;
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.sockets_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A QEMU process that was spawned (for the clean-up of a failed start).
struct Started {
    pgid: i32,
    running: Arc<AtomicBool>,
    monitor: JoinHandle<()>,
    /// Set once the start succeeded: only then does QEMU's end become the host's event (a
    /// QEMU of a failed start, or of an attempt given up for another port, is not news).
    go: watch::Sender<bool>,
    /// QEMU's standard input: the serial port's input (`-chardev stdio`).
    stdin: Option<tokio::process::ChildStdin>,
}

async fn kill_and_wait(pgid: i32, running: &AtomicBool, monitor: JoinHandle<()>) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), monitor).await;
    running.store(false, Ordering::SeqCst);
}

/// Reads QEMU's standard error: forwarded as console `stderr`, and its tail kept for messages.
async fn stderr_pump(
    mut r: tokio::process::ChildStderr,
    tail: Arc<Mutex<String>>,
    events: EventSink,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        {
            let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
            t.push_str(&text);
            if t.len() > STDERR_TAIL {
                let mut cut = t.len() - STDERR_TAIL;
                while !t.is_char_boundary(cut) {
                    cut += 1;
                }
                t.drain(..cut);
            }
        }
        // The job may be gone (a failed start): the tail is what matters then.
        let _ = events.try_send(HostEvent::Console {
            stream: ConsoleStream::Stderr,
            data: text,
        });
    }
}

/// A path in a QEMU option value: a comma is written twice.
fn qemu_escape(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// Serves the puppet protocol on the VM's puppet port while QEMU runs: connects to the
/// socket QEMU listens on, and again whenever the connection ends; `job_data` is answered
/// with `data`. `reported` turns true at the first report (the boot watchdog stands down).
async fn puppet_port(
    path: PathBuf,
    events: EventSink,
    data: JobData,
    running: Arc<AtomicBool>,
    reported: watch::Sender<bool>,
) {
    while running.load(Ordering::SeqCst) {
        match tokio::net::UnixStream::connect(&path).await {
            Ok(stream) => {
                tracing::debug!("connected to the puppet port");
                serve_stream(stream, &events, Some(&data), |req| {
                    if matches!(req, PuppetRequest::Ready) {
                        tracing::info!("the guest's puppet reported ready");
                    }
                    if req.is_report() {
                        reported.send_replace(true);
                    }
                })
                .await;
                tracing::debug!("the puppet port's connection ended");
            }
            Err(e) => tracing::debug!(error = %e, "puppet port not connectable yet"),
        }
        // QEMU listens again at once; a pause bounds the rate of reconnections.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ends a host whose puppet did not report within `boot_timeout_s`: the job is told first,
/// then QEMU is killed.
async fn boot_watchdog(
    deadline: tokio::time::Instant,
    timeout_s: u64,
    mut reported: watch::Receiver<bool>,
    events: EventSink,
    pgid: i32,
    running: Arc<AtomicBool>,
) {
    tokio::select! {
        _ = reported.wait_for(|r| *r) => return,
        _ = tokio::time::sleep_until(deadline) => {}
    }
    if !running.load(Ordering::SeqCst) {
        // QEMU ended by itself: its end is the job's news.
        return;
    }
    tracing::warn!(
        boot_timeout_s = timeout_s,
        "the guest's puppet did not report ready in time; killing QEMU"
    );
    let _ = events
        .send(HostEvent::StartFailed {
            detail: format!(
                "the guest's puppet did not report ready on the port {PUPPET_PORT} within \
                 boot_timeout_s = {timeout_s} (is paddock-puppet in the image, and is \
                 `paddock-puppet ready` run at boot?)"
            ),
        })
        .await;
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// The user-mode network with the guest's port 22 forwarded to `listen:port` (IPv4: QEMU's
/// `hostfwd` forwards IPv4 only) and the guest's network card.
fn user_net_args(listen: &str, port: u16) -> Vec<String> {
    vec![
        "-netdev".into(),
        format!("user,id={NETDEV_ID},hostfwd=tcp:{listen}:{port}-:22"),
        "-device".into(),
        format!("virtio-net-pci,netdev={NETDEV_ID}"),
    ]
}

/// How a spawn attempt failed.
enum SpawnError {
    /// QEMU could not bind the forwarded port (another process took it after the probe).
    PortTaken(String),
    Other(HostError),
}

fn tail_of(tail: &Mutex<String>) -> String {
    tail.lock()
        .unwrap_or_else(|p| p.into_inner())
        .trim()
        .to_string()
}

impl QemuDriver {
    fn qemu_args(
        &self,
        job: &HostJob,
        dir: &Path,
        socket: &Path,
        plan: &image::BootPlan,
        disk: Option<(&[image::CheckedLayer], &Path)>,
        ssh_port: Option<u16>,
    ) -> Vec<String> {
        let c = &self.config;
        let mut a: Vec<String> = vec![
            "-name".into(),
            format!("paddock-job-{}", job.job_id),
            "-machine".into(),
            c.machine.clone(),
            "-accel".into(),
            self.accel.as_str().into(),
            "-smp".into(),
            c.cpus.to_string(),
            "-m".into(),
            c.memory_mib.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-S".into(),
            "-chardev".into(),
            "stdio,id=console,signal=off".into(),
            "-serial".into(),
            "chardev:console".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qemu_escape(socket)),
            "-device".into(),
            "virtio-serial-pci".into(),
            "-chardev".into(),
            format!(
                "socket,id=puppet,path={},server=on,wait=off",
                qemu_escape(&self.puppet_path(&job.job_id))
            ),
            "-device".into(),
            format!("virtserialport,chardev=puppet,name={PUPPET_PORT}"),
            "-pidfile".into(),
            dir.join("qemu.pid").display().to_string(),
        ];
        if let Some(k) = &plan.kernel {
            a.push("-kernel".into());
            a.push(k.display().to_string());
        }
        if let Some(i) = &plan.initrd {
            a.push("-initrd".into());
            a.push(i.display().to_string());
        }
        if let Some(cmdline) = &plan.cmdline {
            a.push("-append".into());
            a.push(cmdline.clone());
        }
        if let Some((layers, overlay)) = disk {
            a.extend(image::blockdev_args(layers, overlay));
        }
        if let Some(port) = ssh_port {
            a.extend(user_net_args(&c.ssh_listen, port));
        }
        a.extend(c.extra_args.iter().cloned());
        a
    }

    /// Spawns QEMU with `args` (recorded in `started` at once, for the caller's clean-up) and
    /// waits until its QMP socket answers (the machine is set up, paused).
    async fn spawn(
        &self,
        args: &[String],
        dir: &Path,
        socket: &Path,
        events: &EventSink,
        started: &mut Option<Started>,
    ) -> Result<Qmp, SpawnError> {
        let mut child = Command::new(&self.config.qemu)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                SpawnError::Other(HostError::Other(format!(
                    "starting {}: {e}",
                    self.config.qemu
                )))
            })?;
        let pgid = child.id().map(|p| p as i32).unwrap_or(0);
        let running = Arc::new(AtomicBool::new(true));
        let (exited_tx, mut exited) = watch::channel(false);
        let (go_tx, mut go) = watch::channel(false);
        let tail = Arc::new(Mutex::new(String::new()));
        let stdin = child.stdin.take();
        let console = child
            .stdout
            .take()
            .map(|o| tokio::spawn(pump(Box::new(o), ConsoleStream::Stdout, events.clone())));
        let errors = child
            .stderr
            .take()
            .map(|e| tokio::spawn(stderr_pump(e, tail.clone(), events.clone())));
        let monitor = tokio::spawn(
            {
                let running = running.clone();
                let tail = tail.clone();
                let events = events.clone();
                async move {
                    let status = child.wait().await;
                    running.store(false, Ordering::SeqCst);
                    exited_tx.send_replace(true);
                    for h in [console, errors].into_iter().flatten() {
                        let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
                    }
                    let ev = match status {
                        Ok(s) if s.success() => HostEvent::PoweredOff {
                            detail: "the VM powered off".into(),
                        },
                        Ok(s) => HostEvent::Exited {
                            code: None,
                            detail: format!("QEMU ended ({s}): {}", tail_of(&tail)),
                        },
                        Err(e) => HostEvent::Exited {
                            code: None,
                            detail: format!("waiting for QEMU: {e}"),
                        },
                    };
                    // A failed start's QEMU (the sender dropped before `true`) is not news.
                    if go.wait_for(|g| *g).await.is_ok() {
                        tracing::info!(?ev, "QEMU ended");
                        let _ = events.send(ev).await;
                    }
                }
            }
            .in_current_span(),
        );
        *started = Some(Started {
            pgid,
            running: running.clone(),
            monitor,
            go: go_tx,
            stdin,
        });

        // QMP answers once QEMU has set the machine up (paused).
        let deadline = Instant::now() + Duration::from_secs(self.config.boot_timeout_s);
        let qmp = loop {
            if *exited.borrow_and_update() {
                // Let the error pump finish its last read.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let tail = tail_of(&tail);
                if tail.contains(HOSTFWD_FAILED) {
                    return Err(SpawnError::PortTaken(tail));
                }
                return Err(SpawnError::Other(HostError::Other(format!(
                    "QEMU ended while starting: {tail}"
                ))));
            }
            if Instant::now() >= deadline {
                return Err(SpawnError::Other(HostError::Other(format!(
                    "QEMU's QMP socket did not answer within boot_timeout_s = {}",
                    self.config.boot_timeout_s
                ))));
            }
            if socket.exists() {
                match tokio::time::timeout(QMP_TIMEOUT, Qmp::connect(socket)).await {
                    Ok(Ok(q)) => break q,
                    Ok(Err(e)) => tracing::debug!(error = %e, "QMP not ready yet"),
                    Err(_) => tracing::debug!("QMP handshake timed out; retrying"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = exited.changed() => {}
            }
        };
        Ok(qmp)
    }

    async fn prepare_and_spawn(
        &self,
        job: &HostJob,
        dir: &Path,
        socket: &Path,
        events: EventSink,
        started: &mut Option<Started>,
    ) -> Result<QemuHost, HostError> {
        let mut plan = image::plan(job)?;
        for l in &mut plan.disk {
            l.path = std::path::absolute(&l.path)
                .map_err(HostError::io(format!("resolving {}", l.path.display())))?;
        }
        remove_dir(dir).await;
        make_private_dir(dir)?;
        let _ = std::fs::remove_file(socket);

        let overlay = dir.join("overlay.qcow2");
        let mut checked = Vec::new();
        if !plan.disk.is_empty() {
            let (layers, size) = image::check_chain(&self.config.qemu_img, &plan.disk)
                .await
                .map_err(|e| HostError::Image(format!("image {}: {e}", job.image.id)))?;
            image::create_overlay(&self.config.qemu_img, &layers[0], size, &overlay)
                .await
                .map_err(HostError::Other)?;
            checked = layers;
        }
        let disk = (!checked.is_empty()).then_some((checked.as_slice(), overlay.as_path()));
        let mut attempt = 0;
        let (lease, mut qmp, spawned_at) = loop {
            attempt += 1;
            let lease = match self.config.network {
                Network::User => Some(self.take_port()?),
                Network::None => None,
            };
            let args = self.qemu_args(
                job,
                dir,
                socket,
                &plan,
                disk,
                lease.as_ref().map(|l| l.port),
            );
            tracing::debug!(qemu = %self.config.qemu, ?args, "starting QEMU");
            let spawned_at = Instant::now();
            match self.spawn(&args, dir, socket, &events, started).await {
                Ok(qmp) => break (lease, qmp, spawned_at),
                Err(SpawnError::PortTaken(detail)) if attempt < PORT_ATTEMPTS => {
                    tracing::info!(
                        port = lease.as_ref().map(|l| l.port),
                        attempt,
                        %detail,
                        "QEMU could not bind the SSH port (taken since the probe); trying another"
                    );
                    if let Some(s) = started.take() {
                        drop(s.go);
                        kill_and_wait(s.pgid, &s.running, s.monitor).await;
                    }
                    let _ = std::fs::remove_file(socket);
                    let _ = std::fs::remove_file(self.puppet_path(&job.job_id));
                }
                Err(SpawnError::PortTaken(detail)) => {
                    return Err(HostError::Other(format!(
                        "QEMU could not bind an SSH port in {PORT_ATTEMPTS} attempts: {detail}"
                    )));
                }
                Err(SpawnError::Other(e)) => return Err(e),
            }
        };
        match tokio::time::timeout(QMP_TIMEOUT, qmp.execute("cont")).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(HostError::Other(format!("starting the guest: {e}"))),
            Err(_) => return Err(HostError::Other("QMP cont timed out".into())),
        }
        let boot_deadline = tokio::time::Instant::from_std(
            spawned_at + Duration::from_secs(self.config.boot_timeout_s),
        );
        let Some(s) = started.take() else {
            return Err(HostError::Other("lost the QEMU process".into()));
        };
        // From here QEMU's end is the host's event.
        s.go.send_replace(true);
        let access = lease.as_ref().map(|l| AccessEndpoint {
            host: self.access_host.clone(),
            port: l.port,
            user: self.config.ssh_user.clone(),
        });
        tracing::info!(
            pid = s.pgid,
            accel = self.accel.as_str(),
            disk_layers = checked.len(),
            ssh_port = lease.as_ref().map(|l| l.port),
            "VM started"
        );
        let (reported_tx, reported_rx) = watch::channel(false);
        let puppet = tokio::spawn(
            puppet_port(
                self.puppet_path(&job.job_id),
                events.clone(),
                JobData {
                    job_id: job.job_id,
                    parameters: job.parameters.clone(),
                    ssh_keys: job.ssh_keys.clone(),
                },
                s.running.clone(),
                reported_tx,
            )
            .in_current_span(),
        );
        let watchdog = tokio::spawn(
            boot_watchdog(
                boot_deadline,
                self.config.boot_timeout_s,
                reported_rx,
                events,
                s.pgid,
                s.running.clone(),
            )
            .in_current_span(),
        );
        Ok(QemuHost {
            dir: dir.to_path_buf(),
            socket: socket.to_path_buf(),
            puppet_socket: self.puppet_path(&job.job_id),
            tasks: vec![puppet, watchdog],
            pid: s.pgid,
            grace: Duration::from_secs(self.config.stop_grace_s),
            running: s.running,
            monitor: Some(s.monitor),
            qmp: Some(qmp),
            access,
            lease,
            _go: s.go,
            console_in: s.stdin,
        })
    }
}

/// A running (or finished) VM.
#[derive(Debug)]
pub struct QemuHost {
    dir: PathBuf,
    socket: PathBuf,
    puppet_socket: PathBuf,
    /// The puppet port's server and the boot watchdog.
    tasks: Vec<JoinHandle<()>>,
    pid: i32,
    grace: Duration,
    running: Arc<AtomicBool>,
    monitor: Option<JoinHandle<()>>,
    qmp: Option<Qmp>,
    /// Where the guest's sshd is forwarded (`network = "user"`).
    access: Option<AccessEndpoint>,
    /// The forwarded port, held until QEMU is gone.
    lease: Option<PortLease>,
    /// Kept `true`: QEMU's end is this host's event.
    _go: watch::Sender<bool>,
    /// QEMU's standard input, the serial port's input (`-chardev stdio` reads it).
    console_in: Option<tokio::process::ChildStdin>,
}

impl QemuHost {
    /// QEMU's process id (also its process group).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    async fn wait_gone(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.running.load(Ordering::SeqCst) {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
        true
    }
}

impl Drop for QemuHost {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Host for QemuHost {
    async fn stop(&mut self) -> Result<(), HostError> {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if self.running.load(Ordering::SeqCst) {
            let asked = match self.qmp.as_mut() {
                Some(q) => {
                    match tokio::time::timeout(QMP_TIMEOUT, q.execute("system_powerdown")).await {
                        Ok(Ok(_)) => true,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "QMP system_powerdown");
                            false
                        }
                        Err(_) => {
                            tracing::warn!("QMP system_powerdown timed out");
                            false
                        }
                    }
                }
                None => false,
            };
            let gone = asked && self.wait_gone(self.grace).await;
            if gone {
                tracing::info!("the guest powered off when asked");
            } else {
                tracing::info!(
                    grace_s = self.grace.as_secs(),
                    "the VM is still running after the power-down request; killing QEMU"
                );
                let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
                if !self.wait_gone(Duration::from_secs(10)).await {
                    tracing::warn!(pid = self.pid, "QEMU outlived SIGKILL");
                }
            }
        }
        self.qmp.take();
        self.console_in.take();
        if let Some(m) = self.monitor.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), m).await;
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.puppet_socket);
        remove_dir(&self.dir).await;
        if !self.running.load(Ordering::SeqCst) {
            self.lease.take();
        }
        Ok(())
    }

    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    fn access(&self) -> Option<AccessEndpoint> {
        self.access.clone()
    }

    /// Writes to QEMU's standard input, which `-chardev stdio` hands to the guest's serial
    /// port. Bounded in time: a guest that does not read its serial port fills QEMU's pipe.
    async fn console_input(&mut self, data: &[u8]) -> Result<(), HostError> {
        if !self.running.load(Ordering::SeqCst) {
            return Err(HostError::Other("the VM is not running".into()));
        }
        let Some(w) = self.console_in.as_mut() else {
            return Err(HostError::Other(
                "the VM's serial port input is closed".into(),
            ));
        };
        let write = async {
            w.write_all(data).await?;
            w.flush().await
        };
        match tokio::time::timeout(CONSOLE_INPUT_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.console_in = None;
                Err(HostError::Io {
                    what: "writing to the VM's serial port".into(),
                    source: e,
                })
            }
            Err(_) => Err(HostError::Other(format!(
                "the VM's serial port took no input for {} s",
                CONSOLE_INPUT_TIMEOUT.as_secs()
            ))),
        }
    }
}
