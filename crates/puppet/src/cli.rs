//! The `paddock-puppet` command line (the binary is installed by paddock-cli): report to the
//! supervisor from inside a job: over the local driver's socket (`PADDOCK_PUPPET_SOCKET`) or,
//! inside a VM, the guest puppet's relay socket (`/run/paddock/puppet.sock`) or the
//! virtio-serial port (`/dev/virtio-ports/org.paddock.puppet.0`); or, inside a VM, run the
//! guest puppet (`paddock-puppet guest`, [`crate::guest`]). Exit codes: 0 the supervisor took
//! it, 1 it refused or could not be reached, 2 usage.

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
    /// device). Without it, inside a VM: the guest puppet's /run/paddock/puppet.sock when it
    /// exists, else /dev/virtio-ports/org.paddock.puppet.0.
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
    /// Inside a VM: the long-running guest puppet. Fetches the job's data over the port,
    /// writes the run directory (job-id, parameters/ with secret ones 0600, authorized_keys),
    /// reports ready (see --ready-command) and relays the one-shot commands of the guest to
    /// the port it holds, through its socket in the run directory.
    Guest {
        /// The VM's puppet port.
        #[arg(long, default_value = crate::VM_PORT)]
        port: PathBuf,
        /// Where the job's data is written.
        #[arg(long, default_value = crate::GUEST_RUN_DIR)]
        run_dir: PathBuf,
        /// The relay socket the one-shot commands use [default: RUN_DIR/puppet.sock].
        #[arg(long)]
        listen: Option<PathBuf>,
        /// Also write the job's SSH keys to RUN_DIR/authorized_keys.d/USER (for sshd's
        /// AuthorizedKeysFile /run/paddock/authorized_keys.d/%u). Repeatable.
        #[arg(long = "ssh-user", value_name = "USER")]
        ssh_users: Vec<String>,
        /// Report ready only once this shell command succeeds (run every second), e.g.
        /// `systemctl is-active --quiet multi-user.target`. Without it: as soon as the data
        /// is written.
        #[arg(long, value_name = "CMD", conflicts_with = "no_ready")]
        ready_command: Option<String>,
        /// Never report ready (the image runs `paddock-puppet ready` itself).
        #[arg(long)]
        no_ready: bool,
    },
}

pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let timeout = Duration::from_secs(cli.timeout);
    let request = match cli.command {
        Command::Ready => PuppetRequest::Ready,
        Command::Exit { outcome, message } => PuppetRequest::Exit { outcome, message },
        Command::Terminate => PuppetRequest::Terminate,
        Command::Guest {
            port,
            run_dir,
            listen,
            ssh_users,
            ready_command,
            no_ready,
        } => {
            let opts = crate::guest::GuestOptions {
                listen: listen.unwrap_or_else(|| run_dir.join("puppet.sock")),
                port,
                run_dir,
                ssh_users,
                ready_command,
                no_ready,
                timeout,
            };
            let e = match crate::guest::run(&opts) {
                Ok(()) => return std::process::ExitCode::SUCCESS,
                Err(e) => e,
            };
            eprintln!(
                "paddock-puppet guest: {}",
                paddock_core::error_text::with_causes(&e)
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    let Some(socket) = crate::default_target(cli.socket) else {
        eprintln!(
            "paddock-puppet: no --socket, no {SOCKET_ENV}, no {} and no {} (is this a Paddock job?)",
            crate::GUEST_SOCKET,
            crate::VM_PORT
        );
        return std::process::ExitCode::from(2);
    };
    match crate::send(&socket, &request, timeout) {
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
