//! The `paddock` command line: one file per subcommand under `cmd/`, an HTTP client for the
//! switchboard API in `client.rs`, and the client configuration in `config.rs`.

pub mod client;
pub mod cmd;
pub mod config;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "paddock",
    version,
    about = "Paddock: lend lab machines to people and CI",
    after_help = "The switchboard URL and token come from PADDOCK_URL and PADDOCK_TOKEN when set, \
                  else from the file written by `paddock login` ($PADDOCK_CONFIG, default \
                  ~/.config/paddock/config.toml)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to a switchboard and store the URL and token for later commands.
    Login(cmd::login::Login),
    /// Enqueue, inspect and cancel jobs.
    #[command(subcommand)]
    Job(cmd::job::JobCommand),
    /// Add and inspect supervisors.
    #[command(subcommand)]
    Supervisor(cmd::supervisor::SupervisorCommand),
    /// Build, push, list, pull and mirror images.
    #[command(subcommand)]
    Image(cmd::image::ImageCommand),
    /// Run a whole lab on this machine: switchboard, image store and local supervisors.
    Up(cmd::up::Up),
    /// The deployments repo (GitOps): validate a working tree, apply a branch, show status.
    #[command(subcommand)]
    Deploy(cmd::deploy::DeployCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Login(l) => cmd::login::run(l).await,
        Command::Job(j) => cmd::job::run(j).await,
        Command::Supervisor(s) => cmd::supervisor::run(s).await,
        Command::Image(i) => cmd::image::run(i).await,
        Command::Up(u) => cmd::up::run(u).await,
        Command::Deploy(d) => cmd::deploy::run(d).await,
    }
}
