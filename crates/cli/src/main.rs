//! `paddock`: parse arguments and run the command. Exit codes (docs/errors.md): 0 success, 1
//! failure (the error is printed once on standard error), 2 usage error.

use clap::Parser;
use paddock_core::service::{Runtime, run};

fn main() -> std::process::ExitCode {
    let cli = paddock_cli::Cli::parse();
    let (log, runtime) = match cli.command {
        // `paddock up` runs a whole lab: its services log to standard error (RUST_LOG sets the
        // level, default warn) and share a multi-threaded runtime.
        paddock_cli::Command::Up(_) => (Some("warn"), Runtime::MultiThread),
        // Mirrors and pushes hash while they transfer: use every core.
        paddock_cli::Command::Image(_) => (None, Runtime::MultiThread),
        _ => (None, Runtime::CurrentThread),
    };
    run(log, runtime, async {
        paddock_cli::run(cli)
            .await
            .map(|()| std::process::ExitCode::SUCCESS)
    })
}
