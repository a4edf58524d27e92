//! The client configuration: switchboard URL and API token, from the environment
//! (`PADDOCK_URL`, `PADDOCK_TOKEN`) or the file `paddock login` writes (mode 0600).

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Base URL of the switchboard, e.g. `http://127.0.0.1:8080`.
    pub url: Option<String>,
    /// API token (`pdk_…`). Never printed.
    pub token: Option<String>,
    /// Where `token` came from (`PADDOCK_TOKEN` or the file), for messages; not stored.
    #[serde(skip)]
    pub token_from: Option<String>,
    /// Where `url` came from (`PADDOCK_URL` or the file), for messages; not stored.
    #[serde(skip)]
    pub url_from: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

pub fn path() -> PathBuf {
    if let Some(p) = std::env::var_os("PADDOCK_CONFIG") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("paddock").join("config.toml")
}

impl ClientConfig {
    /// The file (if any), overridden by the environment.
    pub fn load() -> anyhow::Result<ClientConfig> {
        let p = path();
        let mut c = match std::fs::read_to_string(&p) {
            Ok(text) => {
                let mut c: ClientConfig = paddock_core::config_file::parse_toml(&p, &text)?;
                if c.token.is_some() {
                    c.token_from = Some(p.display().to_string());
                }
                if c.url.is_some() {
                    c.url_from = Some(format!("url in {}", p.display()));
                }
                c
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClientConfig::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        };
        if let Ok(u) = std::env::var("PADDOCK_URL") {
            c.url = Some(u);
            c.url_from = Some("PADDOCK_URL".into());
        }
        match std::env::var("PADDOCK_TOKEN") {
            Ok(t) => {
                c.token = Some(t);
                c.token_from = Some("PADDOCK_TOKEN".into());
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                anyhow::bail!(
                    "the API token in PADDOCK_TOKEN is not usable: it is not valid UTF-8 \
                     ({TOKEN_SHAPE})"
                );
            }
            Err(std::env::VarError::NotPresent) => {}
        }
        Ok(c)
    }

    /// Writes the file atomically, readable by the owner only.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let p = path();
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = p.with_extension("toml.tmp");
        let text = toml::to_string(self)?;
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&tmp)
                .with_context(|| format!("writing {}", tmp.display()))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }
}

/// What an API token looks like, for messages.
const TOKEN_SHAPE: &str = "an API token is `pdk_` and 64 hex digits, on one line, without quotes";

/// Refuses a token that cannot be sent in an `Authorization` header, or that holds what a
/// paste or an editor adds (a `\r`, quotes, spaces): the message names `from` (where the token
/// came from) and what is wrong, never the token.
pub fn check_token(token: &str, from: &str) -> anyhow::Result<()> {
    match token_problem(token) {
        None => Ok(()),
        Some(problem) => Err(anyhow::anyhow!(
            "the API token in {from} is not usable: it {problem} ({TOKEN_SHAPE})"
        )),
    }
}

/// What is wrong with `token`, as a phrase after "it"; `None` when it can be sent.
fn token_problem(token: &str) -> Option<String> {
    if token.is_empty() {
        return Some("is empty".into());
    }
    let len = token.chars().count();
    token.chars().enumerate().find_map(|(i, c)| {
        let at = format!("at character {} of {len}", i + 1);
        let what = match c {
            '\r' => "a carriage return (\\r)".to_string(),
            '\n' => "a line break (\\n)".to_string(),
            '"' | '\'' => format!("a quote ({c})"),
            ' ' => "a space".to_string(),
            '\t' => "a tab".to_string(),
            c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
            c if !c.is_ascii() => format!("a non-ASCII character (U+{:04X})", c as u32),
            _ => return None,
        };
        Some(format!("contains {what} {at}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_problems_are_named_without_the_token() {
        let good = format!("pdk_{}", "ab".repeat(32));
        assert!(check_token(&good, "PADDOCK_TOKEN").is_ok());
        for (token, problem) in [
            (
                format!("{good}\r"),
                "carriage return (\\r) at character 69 of 69",
            ),
            (format!("{good}\n"), "line break"),
            (format!("'{good}'"), "quote (') at character 1"),
            (format!("{good}\u{e9}"), "non-ASCII character (U+00E9)"),
            (format!("{good}\u{7f}"), "control character (U+007F)"),
            (format!(" {good}"), "a space at character 1"),
            (String::new(), "is empty"),
        ] {
            let e = check_token(&token, "/home/u/.config/paddock/config.toml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.contains(problem) && e.contains("config.toml"),
                "{token:?}: {e}"
            );
            assert!(!e.contains(&good[4..]), "{e}");
        }
    }
}
