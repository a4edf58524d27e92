//! `paddock`: parse arguments and run the command. Exit codes: 0 success, 1 failure (the error
//! is printed once on standard error), 2 usage error.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = paddock_cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(paddock_cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
