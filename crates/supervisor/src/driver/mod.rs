//! Host drivers: what starts and stops the host a job runs on. The `local` driver runs the
//! workload as a child process, `qemu` runs it in a VM; `netboot` (a physical board powered through a
//! PDU) will implement the same trait.
//!
//! The contract, the same for every driver:
//! - [`HostDriver::start`] prepares the host (disk images, parameters, the puppet channel) and
//!   starts it. It returns once the host is started, or with a [`HostError`], which the
//!   supervisor reports as `supervisor_host_start_error`. A driver must leave nothing behind
//!   when `start` fails.
//! - Everything the host does afterwards arrives as [`HostEvent`]s on the channel given to
//!   `start`: `Ready` when the workload runs (at once for a process, on the puppet's `ready`
//!   for a VM), console output, puppet requests, and `Exited` when the host stops by itself.
//! - [`Host::console_input`] types into the host's console (a VM's serial port); a host
//!   without one refuses.
//! - [`Host::stop`] stops the host and releases everything it held; it may be called at any
//!   time, also after `Exited`, and more than once.

pub mod local;
pub mod process_group;
pub mod qemu;

use std::collections::BTreeMap;
use std::future::Future;

use paddock_core::protocol::{ConsoleStream, JobParameter};
use paddock_core::puppet::PuppetRequest;
use paddock_core::{JobId, SupervisorId};
use paddock_imagestore::VerifiedImage;
use tokio::sync::mpsc;

/// What a driver needs to start a job's host.
#[derive(Debug, Clone)]
pub struct HostJob {
    pub job_id: JobId,
    pub supervisor_id: Option<SupervisorId>,
    /// The image, its manifest and blobs verified against their digests.
    pub image: VerifiedImage,
    /// Secret values are never logged (`JobParameter`'s `Debug` redacts them).
    pub parameters: BTreeMap<String, JobParameter>,
    pub ssh_keys: Vec<String>,
}

/// Something the host did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// The host is up and runs the workload.
    Ready,
    /// Console output, in order per stream.
    Console { stream: ConsoleStream, data: String },
    /// A request from the workload or the puppet agent over the puppet channel.
    Puppet(PuppetRequest),
    /// The host stopped by itself. `code` is the workload's exit code where the driver knows
    /// one (a process); `None` means it ended without one (killed by a signal, VM powered off).
    Exited { code: Option<i32>, detail: String },
    /// The host stopped by itself and has no exit code by nature (a VM whose guest powered
    /// off): unless the puppet reported an outcome first, the job ends
    /// `workload_finished_unknown`.
    PoweredOff { detail: String },
    /// The host did not become ready (a VM whose puppet did not report `ready` within
    /// `boot_timeout_s`); the driver has killed it. The job ends `supervisor_host_start_error`.
    StartFailed { detail: String },
}

/// Where a host's events go. Bounded: a host that floods its console is slowed down.
pub type EventSink = mpsc::Sender<HostEvent>;

/// Why a host could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{0}")]
    Image(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl HostError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HostError {
        let what = what.into();
        move |source| HostError::Io { what, source }
    }
}

/// A kind of host.
pub trait HostDriver: Send + Sync + 'static {
    type Host: Host;

    /// A short name for logs (`local`, `qemu`, ...).
    fn name(&self) -> &'static str;

    /// Prepares and starts the host of `job`; see the module documentation.
    fn start(
        &self,
        job: HostJob,
        events: EventSink,
    ) -> impl Future<Output = Result<Self::Host, HostError>> + Send;

    /// Removes what a crashed earlier run left behind (processes, job directories, VMs). Called
    /// once at start, before any job.
    fn cleanup_leftovers(&self) -> impl Future<Output = ()> + Send;
}

/// A started host.
pub trait Host: Send + 'static {
    /// Stops the host and releases everything it held. Idempotent.
    fn stop(&mut self) -> impl Future<Output = Result<(), HostError>> + Send;

    /// Whether the host still runs.
    fn is_running(&self) -> bool;

    /// How a user logs in to the host (a VM's forwarded sshd), when it offers that.
    fn access(&self) -> Option<paddock_core::protocol::AccessEndpoint> {
        None
    }

    /// Writes `data` to the host's console input (a VM's serial port), as it is. The default
    /// refuses: a host without a console to type into. Never log `data` (its length at most).
    fn console_input(&mut self, data: &[u8]) -> impl Future<Output = Result<(), HostError>> + Send {
        let _ = data;
        async { Err(HostError::Other("this host has no console input".into())) }
    }
}

/// Longest path a Unix socket address takes here (108 bytes less a margin).
pub(crate) const MAX_SOCKET_PATH: usize = 100;

/// The private directory of a driver's sockets, whose names are at most `longest_name` bytes:
/// `wanted`, or, when a socket there would be too long an address, a private directory under
/// the system temporary directory (`paddock-<tag>-<pid>-<random>`).
pub(crate) fn socket_dir(
    wanted: &std::path::Path,
    longest_name: usize,
    tag: &str,
) -> Result<std::path::PathBuf, HostError> {
    let dir = if wanted.as_os_str().len() + 1 + longest_name > MAX_SOCKET_PATH {
        std::env::temp_dir().join(format!(
            "paddock-{tag}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ))
    } else {
        wanted.to_path_buf()
    };
    local::make_private_dir(&dir)?;
    Ok(dir)
}
