//! `paddock login`: exchange a user name and password for a token, or store a given token.

use std::io::BufRead;

use anyhow::Context;
use clap::Args;
use paddock_core::Name;
use paddock_core::api::auth::{LoginRequest, NewToken, WhoAmI};

use crate::client::Client;
use crate::config::ClientConfig;

#[derive(Debug, Args)]
pub struct Login {
    /// Switchboard URL [default: PADDOCK_URL or the stored one].
    #[arg(long)]
    url: Option<String>,
    /// User name; the password is read from the first line of standard input.
    #[arg(long, conflicts_with = "token_stdin")]
    user: Option<Name>,
    /// Read an existing API token from standard input instead of logging in.
    #[arg(long)]
    token_stdin: bool,
}

fn read_line(what: &str) -> anyhow::Result<String> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("{what}: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading {what}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(l: Login) -> anyhow::Result<()> {
    let stored = ClientConfig::load()?;
    let (url, from) = match (l.url, stored.url) {
        (Some(u), _) => (u, "--url".to_string()),
        (None, Some(u)) => (u, stored.url_from.unwrap_or_default()),
        (None, None) => anyhow::bail!("no switchboard URL: pass --url"),
    };
    crate::client::check_http_url(&url, &from)?;
    let token = if l.token_stdin {
        let t = read_line("token")?;
        crate::config::check_token(&t, "standard input")?;
        t
    } else {
        let user = match l.user {
            Some(u) => u,
            None => read_line("user")?
                .parse()
                .context("the user name on standard input's first line (or pass --user)")?,
        };
        let password = read_line("password")?;
        let t: NewToken = Client::new(&url, None)
            .post_json(
                "/login",
                &LoginRequest {
                    user,
                    password,
                    expires_in_s: None,
                },
            )
            .await
            .context("logging in")?;
        t.token
    };
    let (me, _): (WhoAmI, _) = Client::new(&url, Some(token.clone()))
        .get_json("/whoami")
        .await
        .context("checking the token")?;
    let path = ClientConfig {
        url: Some(url.clone()),
        token: Some(token),
        token_from: None,
        url_from: None,
    }
    .save()?;
    eprintln!(
        "logged in to {url} as {} (saved to {})",
        me.user,
        path.display()
    );
    Ok(())
}
