//! The `paddock-supervisor` command line: `run` and `check-config`. Exit codes: 0 success,
//! 1 failure (the error chain is printed once), 2 usage error.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, DriverConfig};
use crate::connection::LinkSettings;
use crate::driver::local::LocalDriver;
use crate::driver::qemu::QemuDriver;
use crate::supervisor::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "paddock-supervisor",
    version,
    about = "Paddock's site agent: runs jobs on its host and reports to the switchboard",
    after_help = "See supervisor.example.toml for every configuration field. Logs go to standard \
                  error; RUST_LOG sets the level (default info)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to the switchboard and run jobs until SIGINT or SIGTERM; then stop every job
    /// (it ends with internal_supervisor_error) and exit.
    Run {
        #[arg(long, env = "PADDOCK_SUPERVISOR_CONFIG")]
        config: PathBuf,
    },
    /// Check a configuration file (and that the token file is readable) and print the settings.
    CheckConfig {
        #[arg(long, env = "PADDOCK_SUPERVISOR_CONFIG")]
        config: PathBuf,
        /// Do not read the token file (a build-time check, where secrets do not exist yet).
        #[arg(long)]
        no_secrets: bool,
    },
}

impl Config {
    /// The run-time settings; reads the token file.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings {
            link: LinkSettings {
                switchboard_url: self.switchboard_url.clone(),
                token: self.token()?,
                supervisor_id: self.supervisor_id,
                reconnect_min: Duration::from_millis(self.reconnect_min_ms),
                reconnect_max: Duration::from_millis(self.reconnect_max_ms),
                console_budget: self.console_budget_bytes,
            },
            stores: self.images.stores.clone(),
            urls: self.images.urls.clone(),
            cache_dir: self
                .images
                .cache_dir
                .clone()
                .unwrap_or_else(|| self.work_dir.join("cache")),
            cache_max_bytes: self.images.cache_max_bytes,
        })
    }
}

pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    paddock_core::service::serve(run(cli))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig { config, no_secrets } => {
            let c = Config::load(&config)?;
            if no_secrets {
                // Build time: secrets do not exist yet.
            } else if paddock_core::credential::outside_its_unit(&c.token_file) {
                eprintln!(
                    "{}",
                    paddock_core::credential::not_checked("token_file", &c.token_file)
                );
            } else {
                c.token().with_context(|| config.display().to_string())?;
            }
            println!("{}: ok", config.display());
            println!("switchboard_url = {}", c.switchboard_url);
            println!("work_dir = {}", c.work_dir.display());
            for s in &c.images.stores {
                println!("image store = {}", s.display());
            }
            for u in &c.images.urls {
                println!("image server = {u}");
            }
            match &c.driver {
                DriverConfig::Local(l) => println!(
                    "driver = local (stop_grace_s = {}, path = {})",
                    l.stop_grace_s, l.path
                ),
                DriverConfig::Qemu(q) => println!(
                    "driver = qemu ({}, machine = {}, cpus = {}, memory_mib = {}, accel = {}, boot_timeout_s = {}, stop_grace_s = {})",
                    q.qemu,
                    q.machine,
                    q.cpus,
                    q.memory_mib,
                    q.accel.as_str(),
                    q.boot_timeout_s,
                    q.stop_grace_s
                ),
            }
            Ok(())
        }
        Command::Run { config } => {
            let c = Config::load(&config)?;
            let settings = c.settings().with_context(|| config.display().to_string())?;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let signal = paddock_core::service::shutdown_signal();
            tokio::spawn(async move {
                signal.await;
                tracing::info!("signal received; stopping jobs");
                stop_tx.send_replace(true);
            });
            match c.driver {
                DriverConfig::Local(l) => {
                    let driver = LocalDriver::new(l, &c.work_dir)
                        .with_context(|| format!("preparing {}", c.work_dir.display()))?;
                    crate::supervisor::run(settings, driver, stop_rx, None).await;
                }
                DriverConfig::Qemu(q) => {
                    let driver = QemuDriver::new(q, &c.work_dir)
                        .await
                        .with_context(|| format!("preparing {}", c.work_dir.display()))?;
                    crate::supervisor::run(settings, driver, stop_rx, None).await;
                }
            }
            Ok(())
        }
    }
}
