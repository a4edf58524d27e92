//! `paddock-bench`: benchmark programs that print figures.
//!
//! `paddock-bench scheduler` runs a real switchboard as a child process (this same binary,
//! re-executed as `paddock-bench switchboard …`), connects simulated supervisors over real
//! WebSockets that finish every job at once, enqueues jobs over the HTTP API, and prints
//! end-to-end throughput, enqueue → `start_job` latency, and the switchboard's resident memory
//! with many idle supervisors connected. Run it with `--release`.

mod audit;
mod deploy_latency;
mod deployments;
mod images;
mod local;
mod qemu;
mod scheduler;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "paddock-bench",
    about = "Paddock benchmarks (run with --release)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scheduler throughput and latency on SQLite and PostgreSQL, and idle-connection memory.
    Scheduler(scheduler::Options),
    /// Jobs/s and enqueue -> ready latency with real local supervisors running a trivial
    /// workload.
    Local(local::Options),
    /// The QEMU driver: overlay creation, start_job -> QEMU exec, boot -> ready under TCG,
    /// supervisor memory per running VM (needs qemu-system-x86_64 and the test guest).
    Qemu(qemu::Options),
    /// Image store: mirror versus the wget one-liner, serving versus a static server.
    Images(images::Options),
    /// Deployments DB: validate + plan time of a synthetic fleet (10,000 supervisors).
    Deployments(deployments::Options),
    /// paddock-deploy: working-tree edit -> applied and push webhook -> applied latencies.
    DeployLatency(deploy_latency::Options),
    /// paddock-audit: full collect time here, parsing every fixture, a timed fuzz of every
    /// parser.
    Audit(audit::Options),
    /// Internal: the image store server under test (same arguments as `paddock-imagestore`).
    #[command(hide = true)]
    Imagestore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Internal: the switchboard under test (same arguments as `paddock-switchboard`).
    #[command(hide = true)]
    Switchboard {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Switchboard { args } => {
            let argv = std::iter::once("paddock-switchboard".to_string()).chain(args);
            let parsed = <paddock_switchboard::cli::Cli as Parser>::parse_from(argv);
            paddock_switchboard::cli::main_with(parsed)
        }
        Command::Scheduler(opts) => block_on(scheduler::run(opts)),
        Command::Local(opts) => block_on(local::run(opts)),
        Command::Qemu(opts) => block_on(qemu::run(opts)),
        Command::Images(opts) => block_on(images::run(opts)),
        Command::Deployments(opts) => block_on(deployments::run(opts)),
        Command::DeployLatency(opts) => block_on(deploy_latency::run(opts)),
        Command::Audit(opts) => block_on(audit::run(opts)),
        Command::Imagestore { args } => {
            let argv = std::iter::once("paddock-imagestore".to_string()).chain(args);
            let parsed = <paddock_imagestore_server::cli::Cli as Parser>::parse_from(argv);
            paddock_imagestore_server::cli::main_with(parsed)
        }
    }
}

fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
