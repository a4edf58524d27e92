//! The `paddock-deploy` command line (the binary is installed by paddock-cli): `serve`,
//! `check-config`. Exit codes: 0 success, 1 failure, 2 usage.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::apply::Switchboard;
use crate::config::{Config, read_secret};
use crate::daemon::{Settings, run, webhook};

#[derive(Debug, Parser)]
#[command(
    name = "paddock-deploy",
    version,
    about = "Paddock GitOps: keep the switchboard at the newest valid commit of the deployments repo",
    after_help = "See deploy.example.toml and docs/deployments.md."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sync at start, every poll interval, and on each signed push webhook.
    Serve {
        /// The TOML configuration file (see deploy.example.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a configuration file (and that its secret files read): print the settings, one a
    /// line, or every problem as `FILE:LINE: field: …` (exit status 1).
    CheckConfig {
        /// The TOML configuration file (see deploy.example.toml).
        #[arg(long)]
        config: PathBuf,
        /// Do not read the secret files (a build-time check, where secrets do not exist yet).
        #[arg(long)]
        no_secrets: bool,
    },
}

fn settings(c: &Config) -> Result<Settings, String> {
    let token = read_secret(&c.token_file).map_err(|e| format!("token_file: {e}"))?;
    Ok(Settings {
        switchboard: Switchboard {
            url: c.switchboard_url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        },
        source: c.source(),
        branch: c.branch.clone(),
        poll_interval: Duration::from_secs(c.poll_interval_s),
        worktree: c.worktree.clone(),
        debounce: Duration::from_millis(c.debounce_ms),
        activation: c.activation.clone(),
        state_dir: c.state_dir.clone(),
    })
}

async fn serve(c: Config) -> Result<(), String> {
    // Caught from here on: a SIGTERM right after the ready lines stops gracefully.
    let signal = paddock_core::service::shutdown_signal();
    let settings = settings(&c)?;
    let wake = Arc::new(tokio::sync::Notify::new());
    if let Some(addr) = c.listen {
        let secret_file = c
            .webhook_secret_file
            .clone()
            .ok_or("webhook_secret_file: required when `listen` is set")?;
        let secret = read_secret(&secret_file).map_err(|e| format!("webhook_secret_file: {e}"))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("listening on {addr}: {e}"))?;
        let tls = match &c.tls {
            Some(files) => {
                Some(paddock_http::TlsServer::new(files.clone()).map_err(|e| format!("tls: {e}"))?)
            }
            None => {
                tracing::info!("no [tls] configured: the webhook listener serves plain HTTP");
                None
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let app = webhook(secret.into_bytes(), wake.clone());
        tokio::spawn(async move {
            let limits = paddock_http::Limits::default();
            if let Err(e) =
                paddock_http::serve_with(listener, app, limits, tls, std::future::pending()).await
            {
                tracing::error!("webhook listener: {e}");
            }
        });
        eprintln!("paddock-deploy: webhook on {scheme}://{addr}/hooks/push");
    }
    std::fs::create_dir_all(&c.state_dir)
        .map_err(|e| format!("state_dir {}: {e}", c.state_dir.display()))?;
    eprintln!(
        "paddock-deploy: {} branch {} -> {} every {} s",
        settings.source, c.branch, c.switchboard_url, c.poll_interval_s
    );
    if let Some(w) = &c.worktree {
        eprintln!("paddock-deploy: watching the working tree {}", w.display());
    }
    run(settings, wake, signal).await;
    Ok(())
}

/// Parses the arguments and runs; the exit code.
pub fn main() -> std::process::ExitCode {
    use paddock_core::service::{Runtime, run as start};
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config, no_secrets } => {
            paddock_core::logging::init("info");
            check_config(&config, no_secrets)
        }
        Command::Serve { config } => start(Some("info"), Runtime::MultiThread, async move {
            // One `error: ` line per problem, as check-config prints them.
            let c = Config::load(&config).map_err(|e| anyhow::anyhow!(e.lines().join("\n")))?;
            serve(c).await.map_err(anyhow::Error::msg)?;
            Ok(std::process::ExitCode::SUCCESS)
        }),
    }
}

/// `check-config`: 0 with `FILE: ok` and the settings, or 1 with every problem, one line each.
fn check_config(config: &std::path::Path, no_secrets: bool) -> std::process::ExitCode {
    match Config::load_checking(config, !no_secrets) {
        Ok(c) => {
            // A systemd credential exists only inside its unit.
            let secret_files = [
                ("token_file", Some(&c.token_file)),
                ("webhook_secret_file", c.webhook_secret_file.as_ref()),
            ];
            for (field, f) in secret_files {
                if let Some(f) =
                    f.filter(|f| !no_secrets && paddock_core::credential::outside_its_unit(f))
                {
                    eprintln!("{}", paddock_core::credential::not_checked(field, f));
                }
            }
            println!("{}: ok\n{}", config.display(), c.summary());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            for line in e.lines() {
                eprintln!("error: {line}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
