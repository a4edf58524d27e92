//! One start-up for the Paddock binaries (feature `service`): logs set up once
//! ([`crate::logging`]), the tokio runtime, the shutdown signals, the error printed once with its
//! causes ([`crate::error_text::report`]), and one table of exit codes ([`exit`], documented in
//! docs/errors.md).

use std::future::Future;
use std::process::ExitCode;

/// The exit codes of every Paddock binary (docs/errors.md).
pub mod exit {
    /// Done.
    pub const SUCCESS: u8 = 0;
    /// Failed: the error is printed on standard error.
    pub const FAILURE: u8 = 1;
    /// Bad usage: an unknown flag, a value that does not parse (clap's own code). The audit
    /// agent also uses it for its run-time failures (docs/errors.md says why).
    pub const USAGE: u8 = 2;
}

/// The runtime a binary's work runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Every core: servers, and clients that hash while they transfer.
    MultiThread,
    /// One thread: a short client command.
    CurrentThread,
}

/// A long-running service's `main`: logs at `info` by default, the multi-threaded runtime,
/// exit status 0 when `main` returns and 1 (the error printed once) when it fails.
pub fn serve<F>(main: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    run(Some("info"), Runtime::MultiThread, async {
        main.await.map(|()| ExitCode::SUCCESS)
    })
}

/// Runs `main` to its end: logs set up first when `log` is given (the default directives
/// when `RUST_LOG` is unset, see [`crate::logging::init`]), then `main` on a `runtime`; an
/// error is printed once, `error: ` on every line, and exits [`exit::FAILURE`].
pub fn run<F>(log: Option<&str>, runtime: Runtime, main: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<ExitCode>>,
{
    if let Some(default) = log {
        crate::logging::init(default);
    }
    let built = match runtime {
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match rt.block_on(main) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", crate::error_text::report(e.as_ref()));
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// A future that resolves at the first SIGINT (Ctrl-C) or SIGTERM (what systemd and `kill`
/// send to stop a service), logging which: a server then stops taking work and ends what it
/// holds, instead of being killed mid-request by SIGTERM's default action. The handlers are
/// installed when this is called (not when the future is first polled): call it before saying
/// the service is ready, so that a signal sent as soon as it is ready is caught. Needs a tokio
/// runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let which = match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("signals cannot be caught ({e}): only Ctrl-C stops gracefully");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        };
        tracing::info!("{which}: shutting down");
    }
}
