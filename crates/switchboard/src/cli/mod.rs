//! The `paddock-switchboard` command line: `serve`, `check-config` and `user` administration.
//! Exit codes: 0 success, 1 failure (the error chain is printed once), 2 usage error (clap).

mod serve;
mod user;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "paddock-switchboard",
    version,
    about = "Paddock's central coordinator: API, supervisor WebSocket, scheduler"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and run the scheduler (SQLite in --data-dir unless --database-url is set).
    Serve(Settings),
    /// Check a configuration file and print the settings in effect (the database URL without
    /// its password). Reads `database_url_file` unless --no-secrets.
    CheckConfig {
        /// The TOML configuration file (see switchboard.example.toml).
        #[arg(long)]
        config: PathBuf,
        /// Do not read the secret files (a build-time check, where secrets do not exist yet).
        #[arg(long)]
        no_secrets: bool,
    },
    /// Manage users directly in the database (bootstrap the first admin).
    #[command(subcommand)]
    User(user::UserCommand),
}

/// Where the configuration comes from: a file, then flags that override it.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// TOML configuration file (see switchboard.example.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory holding the SQLite database [default: paddock-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Database URL (sqlite://PATH or postgres://...) [default: SQLite in the data directory].
    #[arg(long, env = "PADDOCK_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl Settings {
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(l) = self.listen {
            config.listen = l;
        }
        if let Some(u) = &self.database_url {
            // The flag (or PADDOCK_DATABASE_URL) wins over the file's URL and URL file.
            config.database_url = Some(u.clone());
            config.database_url_file = None;
        }
        // A problem names where the value came from: the flag, else the file (as check-config
        // does), else just the field (a default).
        let named = |(field, msg): (&str, String)| match &self.config {
            _ if field == "database_url" && self.database_url.is_some() => {
                format!("--database-url (or PADDOCK_DATABASE_URL): {msg}")
            }
            Some(path) => format!("{}: {field}: {msg}", path.display()),
            None => format!("{field}: {msg}"),
        };
        config.validate().map_err(|bad| {
            let lines: Vec<String> = bad.into_iter().map(named).collect();
            anyhow::anyhow!("{}", lines.join("\n"))
        })?;
        config
            .read_database_url_file()
            .map_err(|e| anyhow::anyhow!("{}", named(e)))?;
        Ok(config)
    }

    /// Opens the database, creating the data directory for SQLite.
    pub async fn open_db(&self) -> anyhow::Result<(Config, crate::db::Db)> {
        let config = self.load()?;
        if config.database_url.is_none() {
            // The error names the directory and the cause.
            crate::db::file_modes::secure_data_dir(&config.data_dir)
                .context("preparing the data directory")?;
        }
        let url = config.database_url();
        let db = crate::db::Db::connect(&url)
            .await
            .with_context(|| format!("opening database {}", redact_url(&url)))?;
        Ok((config, db))
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// The whole program: parse arguments, set up logging, run, choose the exit code. Shared by the
/// `paddock-switchboard` binaries of this package and of `paddock-cli`.
pub fn main() -> std::process::ExitCode {
    main_with(Cli::parse())
}

/// [`main`] with arguments already parsed.
pub fn main_with(cli: Cli) -> std::process::ExitCode {
    use paddock_core::service::{Runtime, run as start};
    start(Some("info,sqlx=warn"), Runtime::MultiThread, async {
        run(cli).await.map(|()| std::process::ExitCode::SUCCESS)
    })
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(s) => serve::serve(s).await,
        Command::CheckConfig { config, no_secrets } => {
            let mut c = Config::load(&config)?;
            let unread = match c.database_url_file.clone() {
                Some(f) if no_secrets => Some(f),
                // A systemd credential exists only inside its unit.
                Some(f) if paddock_core::credential::outside_its_unit(&f) => {
                    eprintln!(
                        "{}",
                        paddock_core::credential::not_checked("database_url_file", &f)
                    );
                    Some(f)
                }
                _ => {
                    c.read_database_url_file().map_err(|(field, msg)| {
                        anyhow::anyhow!("{}: {field}: {msg}", config.display())
                    })?;
                    None
                }
            };
            // The key is a secret: read (and the pair checked) unless told not to, or when it is
            // a systemd credential outside its unit.
            let tls_checked = match &c.tls {
                Some(_) if no_secrets => Some(false),
                Some(t) if paddock_core::credential::outside_its_unit(&t.key_file) => {
                    eprintln!(
                        "{}",
                        paddock_core::credential::not_checked("tls.key_file", &t.key_file)
                    );
                    Some(false)
                }
                Some(t) => {
                    paddock_http::TlsServer::new(t.clone())
                        .map_err(|e| anyhow::anyhow!("{}: tls: {e}", config.display()))?;
                    Some(true)
                }
                None => None,
            };
            println!("{}: ok", config.display());
            println!("listen = {}", c.listen);
            match (&c.tls, tls_checked) {
                (Some(t), Some(true)) => println!(
                    "tls = {} with {} (read, and they match)",
                    t.cert_file.display(),
                    t.key_file.display()
                ),
                (Some(t), _) => println!(
                    "tls = {} with {} (not read)",
                    t.cert_file.display(),
                    t.key_file.display()
                ),
                (None, _) => println!("tls = none: plain HTTP"),
            }
            match unread {
                Some(f) => println!("database = the URL in {} (not read)", f.display()),
                None => println!("database = {}", redact_url(&c.database_url())),
            }
            Ok(())
        }
        Command::User(u) => user::run(u).await,
    }
}
