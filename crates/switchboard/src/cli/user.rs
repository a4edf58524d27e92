//! `paddock-switchboard user add|token|passwd`: direct database administration, used to
//! bootstrap the first admin before any token exists.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;
use paddock_core::{Name, Privilege};

use super::Settings;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print a new API token for it (alone on the last line).
    Add {
        /// The new user's name.
        name: Name,
        /// A privilege to grant; repeat for several (admin, submit_jobs, list_jobs, cancel_jobs,
        /// manage_supervisors, list_supervisors, console_input).
        #[arg(long = "privilege")]
        privileges: Vec<Privilege>,
        /// The user's e-mail address (shown by the API; nothing is sent to it).
        #[arg(long)]
        email: Option<String>,
        /// Read a password for `paddock login` from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        settings: Settings,
    },
    /// Print a new API token for an existing user (alone on the last line).
    Token {
        /// The user's name.
        name: Name,
        /// Lifetime in seconds; no expiry when absent.
        #[arg(long)]
        expires_in_s: Option<u64>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Set a user's password from the first line of standard input.
    Passwd {
        /// The user's name.
        name: Name,
        #[command(flatten)]
        settings: Settings,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(pw.len() >= 8, "password must have at least 8 characters");
    Ok(pw)
}

pub async fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            privileges,
            email,
            password_stdin,
            settings,
        } => {
            let password = password_stdin.then(read_password).transpose()?;
            let (_, db) = settings.open_db().await?;
            let user = db
                .create_user(&name, email.as_deref(), &privileges)
                .await
                .with_context(|| format!("creating user {name}"))?;
            if let Some(pw) = password {
                db.set_password_hash(&name, &crate::auth::hash_password(&pw)?)
                    .await?;
            }
            let token = crate::tokens::mint(&db, &user.name, None).await?;
            let privs: Vec<&str> = privileges.iter().map(|p| p.as_str()).collect();
            eprintln!(
                "created user {name} with privileges [{}]; its API token (shown once):",
                privs.join(", ")
            );
            println!("{}", token.token);
        }
        UserCommand::Token {
            name,
            expires_in_s,
            settings,
        } => {
            let (_, db) = settings.open_db().await?;
            db.get_user(&name)
                .await
                .with_context(|| format!("user {name}"))?;
            let token = crate::tokens::mint(&db, &name, expires_in_s).await?;
            eprintln!("new API token for {name} (shown once):");
            println!("{}", token.token);
        }
        UserCommand::Passwd { name, settings } => {
            let pw = read_password()?;
            let (_, db) = settings.open_db().await?;
            db.set_password_hash(&name, &crate::auth::hash_password(&pw)?)
                .await
                .with_context(|| format!("user {name}"))?;
            eprintln!("password of {name} set");
        }
    }
    Ok(())
}
