//! The `paddock-puppet` command line (the binary is installed by paddock-cli): report to the
//! supervisor from inside a job: over the local driver's socket (`PADDOCK_PUPPET_SOCKET`) or,
//! inside a VM, the virtio-serial port (`/dev/virtio-ports/org.paddock.puppet.0`). Exit codes:
//! 0 the supervisor took it, 1 it refused or could not be reached, 2 usage.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use paddock_core::puppet::{PuppetRequest, SOCKET_ENV, WorkloadOutcome};

#[derive(Debug, Parser)]
#[command(
    name = "paddock-puppet",
    version,
    about = "Report readiness and results of a Paddock job to its supervisor"
)]
pub struct Cli {
    /// The supervisor's puppet socket (a Unix socket), or a virtio-serial port (a character
    /// device). Without it, inside a VM: /dev/virtio-ports/org.paddock.puppet.0.
    #[arg(long, env = SOCKET_ENV)]
    socket: Option<PathBuf>,
    /// Seconds to wait for the supervisor's answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The workload is up (the job becomes `ready`).
    Ready,
    /// The workload's result: success, error or unknown.
    Exit {
        /// success, error or unknown: the job ends workload_finished_success, _error or
        /// _unknown.
        outcome: WorkloadOutcome,
        /// Why, in a line: the detail of the job's exit status (e.g. "3 tests failed").
        #[arg(long)]
        message: Option<String>,
    },
    /// Ask the supervisor to terminate this job.
    Terminate,
}

pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let request = match cli.command {
        Command::Ready => PuppetRequest::Ready,
        Command::Exit { outcome, message } => PuppetRequest::Exit { outcome, message },
        Command::Terminate => PuppetRequest::Terminate,
    };
    let vm_port = std::path::Path::new(crate::VM_PORT);
    let socket = match cli.socket {
        Some(s) => s,
        None if vm_port.exists() => vm_port.to_path_buf(),
        None => {
            eprintln!(
                "paddock-puppet: no --socket, no {SOCKET_ENV} and no {} (is this a Paddock job?)",
                crate::VM_PORT
            );
            return std::process::ExitCode::from(2);
        }
    };
    match crate::send(&socket, &request, Duration::from_secs(cli.timeout)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes, once each.
            eprintln!(
                "paddock-puppet: {}",
                paddock_core::error_text::with_causes(&e)
            );
            std::process::ExitCode::FAILURE
        }
    }
}
