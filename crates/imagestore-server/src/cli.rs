//! The `paddock-imagestore` command line (the binary is installed by paddock-cli): `serve`,
//! `check-config`, `token add|list|revoke`, `gc`, `check`. Exit codes: 0 success, 1 failure,
//! 2 usage.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::server::ServerSettings;

#[derive(Debug, Parser)]
#[command(
    name = "paddock-imagestore",
    version,
    about = "Paddock's image store: serve a content-addressed store over HTTP, and maintain it",
    after_help = "Layout: ROOT/images/aa/bb/cc/<id>, ROOT/blobs/aa/bb/cc/<sha256>, ROOT/all.txt. \
                  See imagestore.example.toml and docs/images.md."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct RootArg {
    /// The store directory.
    #[arg(long, env = "PADDOCK_IMAGESTORE_ROOT")]
    root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the store (GET/HEAD/PUT of images/, blobs/, all.txt; /api/v1/images).
    Serve {
        /// The configuration file (TOML, see imagestore.example.toml); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The store directory [default: from --config, else ./store].
        #[arg(long)]
        root: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:8081].
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Check a configuration file and print the settings.
    CheckConfig {
        /// The configuration file to check (TOML, see imagestore.example.toml).
        #[arg(long)]
        config: PathBuf,
        /// Do not read the TLS key (a build-time check, where secrets do not exist yet).
        #[arg(long)]
        no_secrets: bool,
    },
    /// Manage push tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Remove blobs no manifest references, once older than the grace period.
    Gc {
        #[command(flatten)]
        root: RootArg,
        /// Seconds an unreferenced blob is kept (an upload's manifest may still be coming).
        #[arg(long, default_value_t = 86_400)]
        grace_s: u64,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-hash every file; `--repair` moves corrupt ones to ROOT/quarantine/.
    Check {
        #[command(flatten)]
        root: RootArg,
        /// Move corrupt files and links to ROOT/quarantine/ (a link is moved itself, never
        /// followed); manifests Treadmill cannot read are only reported.
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a push token; it is printed once, alone on the last line.
    Add {
        /// A name for the token (who or what pushes with it, e.g. `ci`).
        name: String,
        #[command(flatten)]
        root: RootArg,
    },
    /// List push tokens (names and creation times, never the tokens).
    List {
        #[command(flatten)]
        root: RootArg,
    },
    /// Revoke a push token.
    Revoke {
        /// The token's name, as `token add` was given it.
        name: String,
        #[command(flatten)]
        root: RootArg,
    },
}

pub fn main() -> std::process::ExitCode {
    main_with(Cli::parse())
}

/// [`main`] with arguments already parsed (the benchmark re-executes itself as the server).
pub fn main_with(cli: Cli) -> std::process::ExitCode {
    paddock_core::service::serve(run(cli))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            root,
            listen,
        } => {
            let mut c = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            if let Some(r) = root {
                c.root = r;
            }
            if let Some(l) = listen {
                c.listen = l;
            }
            std::fs::create_dir_all(&c.root)
                .with_context(|| format!("creating {}", c.root.display()))?;
            let settings = ServerSettings {
                root: c.root.clone(),
                listen: c.listen,
                max_upload_bytes: c.max_upload_bytes,
            };
            let listener = tokio::net::TcpListener::bind(c.listen)
                .await
                .with_context(|| format!("listening on {}", c.listen))?;
            let addr = listener.local_addr()?;
            let tls = match &c.tls {
                Some(files) => Some(
                    paddock_http::TlsServer::new(files.clone())
                        .context("[tls]: the certificate and key")?,
                ),
                None => {
                    tracing::info!("no [tls] configured: serving plain HTTP");
                    None
                }
            };
            let scheme = if tls.is_some() { "https" } else { "http" };
            // Caught from here on: a SIGTERM right after the line below stops gracefully.
            let stop = paddock_core::service::shutdown_signal();
            eprintln!(
                "paddock-imagestore: serving {} on {scheme}://{addr}",
                c.root.display()
            );
            crate::server::serve_with(&settings, listener, tls, stop)
                .await
                .context("serving")?;
            Ok(())
        }
        Command::CheckConfig { config, no_secrets } => {
            let c = Config::load(&config)?;
            // The key is a secret: read (and the pair checked) unless told not to, or when it
            // is a systemd credential outside its unit.
            let tls = match &c.tls {
                Some(t) if no_secrets => Some((t, false)),
                Some(t) if paddock_core::credential::outside_its_unit(&t.key_file) => {
                    eprintln!(
                        "{}",
                        paddock_core::credential::not_checked("tls.key_file", &t.key_file)
                    );
                    Some((t, false))
                }
                Some(t) => {
                    paddock_http::TlsServer::new(t.clone())
                        .map_err(|e| anyhow::anyhow!("{}: tls: {e}", config.display()))?;
                    Some((t, true))
                }
                None => None,
            };
            println!("{}: ok", config.display());
            println!("root = {}", c.root.display());
            println!("listen = {}", c.listen);
            println!("max_upload_bytes = {}", c.max_upload_bytes);
            match tls {
                Some((t, read)) => println!(
                    "tls = {} with {} ({})",
                    t.cert_file.display(),
                    t.key_file.display(),
                    if read {
                        "read, and they match"
                    } else {
                        "not read"
                    }
                ),
                None => println!("tls = none: plain HTTP"),
            }
            Ok(())
        }
        Command::Token(TokenCommand::Add { name, root }) => {
            let t = crate::tokens::add(&root.root, &name)?;
            eprintln!(
                "push token {name} for {} (shown once):",
                root.root.display()
            );
            println!("{t}");
            Ok(())
        }
        Command::Token(TokenCommand::List { root }) => {
            for t in crate::tokens::load(&root.root)? {
                println!("{}\tcreated {}", t.name, t.created_at);
            }
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { name, root }) => {
            crate::tokens::revoke(&root.root, &name)?;
            eprintln!("revoked {name}");
            Ok(())
        }
        Command::Gc {
            root,
            grace_s,
            dry_run,
        } => {
            existing_store(&root.root)?;
            let r = paddock_imagestore::maintenance::gc(
                &root.root,
                Duration::from_secs(grace_s),
                dry_run,
            )?;
            let bytes: u64 = r.removed.iter().map(|(_, s)| s).sum();
            for (p, s) in &r.removed {
                println!(
                    "{} {} ({s} bytes)",
                    if dry_run { "would remove" } else { "removed" },
                    p.display()
                );
            }
            eprintln!(
                "gc: {} images reference {} blobs; {} unreferenced blobs ({bytes} bytes) {}; {} younger than {grace_s} s kept; {} stale uploads {}",
                r.images,
                r.referenced,
                r.removed.len(),
                if dry_run {
                    "would be removed"
                } else {
                    "removed"
                },
                r.young,
                r.stale_temporaries,
                if dry_run {
                    "would be removed"
                } else {
                    "removed"
                },
            );
            Ok(())
        }
        Command::Check { root, repair } => {
            existing_store(&root.root)?;
            let tty = std::io::stderr().is_terminal();
            let r = paddock_imagestore::maintenance::check(&root.root, repair, |i, n| {
                if tty && (i % 64 == 0 || i == n) {
                    eprint!("\r\x1b[Kcheck: {i}/{n} files");
                }
            })?;
            if tty {
                eprintln!();
            }
            for c in &r.corrupt {
                println!(
                    "CORRUPT {}: hashes to {}{}",
                    c.path.display(),
                    c.actual,
                    c.quarantined
                        .as_ref()
                        .map(|q| format!(", moved to {}", q.display()))
                        .unwrap_or_default()
                );
            }
            for (i, l) in r.links.iter().enumerate() {
                println!(
                    "LINK {}: a link or not a regular file, never served{}",
                    l.display(),
                    r.links_quarantined
                        .get(i)
                        .map(|q| format!(", moved to {}", q.display()))
                        .unwrap_or_default()
                );
            }
            for (path, why) in &r.invalid {
                println!(
                    "INVALID {}: not a usable image manifest: {why}",
                    path.display()
                );
            }
            eprintln!(
                "check: {} files, {} bytes, {} corrupt, {} links, {} invalid manifests",
                r.checked,
                r.bytes,
                r.corrupt.len(),
                r.links.len(),
                r.invalid.len()
            );
            if (!r.corrupt.is_empty() || !r.links.is_empty()) && !repair {
                bail!(
                    "{} corrupt files, {} links (run with --repair to quarantine them)",
                    r.corrupt.len(),
                    r.links.len()
                );
            }
            if !r.invalid.is_empty() {
                bail!(
                    "{} manifests are not usable images (never repaired: remove them, or publish fixed ones)",
                    r.invalid.len()
                );
            }
            Ok(())
        }
    }
}

/// `gc` and `check` of a store that is not there would report zero files and succeed: a
/// mistyped `--root` says so instead.
fn existing_store(root: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("{}: not a directory (--root names a store)", root.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{}: no store there (check --root)", root.display())
        }
        Err(e) => Err(e).with_context(|| root.display().to_string()),
    }
}
