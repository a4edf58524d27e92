//! `paddock`: parse arguments and run the command. Exit codes: 0 success, 1 failure (the error
//! is printed once on standard error), 2 usage error.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = paddock_cli::Cli::parse();
    let rt = if matches!(cli.command, paddock_cli::Command::Up(_)) {
        // `paddock up` runs a whole lab: its services log to standard error (RUST_LOG sets the
        // level, default warn) and share a multi-threaded runtime.
        paddock_core::logging::init("warn");
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else if matches!(cli.command, paddock_cli::Command::Image(_)) {
        // Mirrors and pushes hash while they transfer: use every core.
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(paddock_cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Each cause once (a cause whose text is already shown is not repeated), and
            // `error: ` on every line.
            eprintln!("{}", paddock_core::error_text::report(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}
