//! `paddock-deploy`'s configuration file (TOML); see `deploy.example.toml`, field by field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The switchboard the state is applied to.
    pub switchboard_url: String,
    /// File holding an admin's API token.
    pub token_file: PathBuf,
    /// The deployments repository: a local path (bare or not), or a URL (`ssh://`, `git://`,
    /// `file://`, scp-like `git@host:path`) fetched with gix into `state_dir/mirror.git`.
    pub repo: String,
    /// The branch whose newest commit is applied.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Seconds between two reads of the branch.
    #[serde(default = "default_poll")]
    pub poll_interval_s: u64,
    /// Webhook listener (`POST /hooks/push`); none when absent.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// File holding the webhook secret; required with `listen`.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// `[tls]`: the webhook listener serves HTTPS with `cert_file` (PEM chain) and `key_file`
    /// (PEM key), read again when they change; plain HTTP when absent. Only with `listen`.
    #[serde(default)]
    pub tls: Option<paddock_http::TlsFiles>,
    /// A working tree of the repo on this server, watched; its edits apply at once.
    #[serde(default)]
    pub worktree: Option<PathBuf>,
    /// Milliseconds without another change that end a burst of edits.
    #[serde(default = "default_debounce")]
    pub debounce_ms: u64,
    /// The daemon's own files: the mirror of a remote, the host activation's record and checkout.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Optional host activation (`[activation]`).
    #[serde(default)]
    pub activation: Option<crate::activation::ActivationConfig>,
}

fn default_debounce() -> u64 {
    50
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/paddock-deploy")
}

fn default_branch() -> String {
    "main".into()
}

fn default_poll() -> u64 {
    30
}

pub use paddock_core::config_file::ConfigError;

impl Config {
    /// Where the branch's commits are read from.
    pub fn source(&self) -> crate::git_source::Source {
        crate::git_source::Source::new(&self.repo, &self.state_dir.join("mirror.git"))
    }

    /// Reads and checks a configuration; every problem is reported, each at its line.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_checking(path, false)
    }

    /// As [`Config::load`]; with `secrets`, also that the token file and the webhook secret
    /// file read (`check-config`). A systemd credential exists only inside its unit: one
    /// outside it is not read (the caller says so).
    pub fn load_checking(path: &Path, secrets: bool) -> Result<Config, ConfigError> {
        let (mut c, mut problems): (Config, _) =
            paddock_core::config_file::read_toml_checked(path)?;
        paddock_core::config_file::relative_to_file(
            path,
            [Some(&mut c.token_file), Some(&mut c.state_dir)]
                .into_iter()
                .chain([c.webhook_secret_file.as_mut(), c.worktree.as_mut()])
                .flatten(),
        );
        if let Some(t) = &mut c.tls {
            paddock_core::config_file::relative_to_file(path, [&mut t.cert_file, &mut t.key_file]);
        }
        if !crate::git_source::is_remote(&c.repo) {
            let mut repo = PathBuf::from(&c.repo);
            paddock_core::config_file::relative_to_file(path, [&mut repo]);
            c.repo = repo.display().to_string();
        }
        if let Some(a) = &c.activation {
            if a.host.is_empty() || a.host.contains('/') || a.host.starts_with('.') {
                problems.at(
                    "activation.host",
                    format!(
                        "activation.host: `{}` is not a directory name under hosts/",
                        a.host
                    ),
                );
            }
            if a.command.trim().is_empty() {
                problems.at("activation.command", "activation.command: empty");
            }
            if a.timeout_s == 0 {
                problems.at("activation.timeout_s", "activation.timeout_s: at least 1");
            }
        }
        if !(c.switchboard_url.starts_with("http://") || c.switchboard_url.starts_with("https://"))
        {
            problems.at(
                "switchboard_url",
                format!(
                    "switchboard_url: `{}` is not an http(s) URL",
                    c.switchboard_url
                ),
            );
        } else if let Err(e) = paddock_core::transport::require_plain(&c.switchboard_url) {
            problems.at("switchboard_url", format!("switchboard_url: {e}"));
        }
        if c.debounce_ms == 0 || c.debounce_ms > 10_000 {
            problems.at("debounce_ms", "debounce_ms: 1 to 10000");
        }
        if c.poll_interval_s == 0 {
            problems.at("poll_interval_s", "poll_interval_s: must be at least 1");
        }
        if c.branch.is_empty() || c.branch.contains("..") || c.branch.starts_with('/') {
            problems.at(
                "branch",
                format!("branch: `{}` is not a branch name", c.branch),
            );
        }
        if c.tls.is_some() && c.listen.is_none() {
            problems.at(
                "tls",
                "tls: only with `listen` (it is the webhook listener's)",
            );
        }
        if c.listen.is_some() && c.webhook_secret_file.is_none() {
            problems.at(
                "listen",
                "webhook_secret_file: required when `listen` is set (unsigned webhooks are refused)",
            );
        }
        if secrets {
            let secret_files = [
                ("token_file", Some(&c.token_file)),
                ("webhook_secret_file", c.webhook_secret_file.as_ref()),
            ];
            for (field, file) in secret_files {
                if let Some(f) = file.filter(|f| !paddock_core::credential::outside_its_unit(f))
                    && let Err(e) = read_secret(f)
                {
                    problems.at(field, format!("{field}: {e}"));
                }
            }
            if let Some(t) = c
                .tls
                .as_ref()
                .filter(|t| !paddock_core::credential::outside_its_unit(&t.key_file))
                && let Err(e) = paddock_http::TlsServer::new(t.clone())
            {
                problems.at("tls", format!("tls: {e}"));
            }
        }
        problems.finish()?;
        Ok(c)
    }

    /// The settings that matter, one `name: value` a line, for `check-config` (no secret:
    /// the secret files are named, never read into it).
    pub fn summary(&self) -> String {
        let mut lines = vec![
            format!("switchboard_url: {}", self.switchboard_url),
            format!("token_file: {}", self.token_file.display()),
            format!("repo: {}", self.source()),
            format!("branch: {}", self.branch),
            format!("poll_interval_s: {}", self.poll_interval_s),
            match self.listen {
                Some(a) => format!(
                    "webhook: {}://{a}/hooks/push",
                    if self.tls.is_some() { "https" } else { "http" }
                ),
                None => "webhook: none".into(),
            },
        ];
        if let Some(f) = &self.webhook_secret_file {
            lines.push(format!("webhook_secret_file: {}", f.display()));
        }
        lines.push(match &self.worktree {
            Some(w) => format!(
                "worktree: {} (debounce {} ms)",
                w.display(),
                self.debounce_ms
            ),
            None => "worktree: none".into(),
        });
        lines.push(format!("state_dir: {}", self.state_dir.display()));
        match &self.activation {
            None => lines.push("activation: none".into()),
            Some(a) => {
                lines.push(format!("activation.host: {}", a.host));
                lines.push(format!("activation.command: {}", a.command));
                if let Some(h) = &a.health_check {
                    lines.push(format!("activation.health_check: {h}"));
                }
                if let Some(r) = &a.rollback {
                    lines.push(format!("activation.rollback: {r}"));
                }
                lines.push(format!("activation.timeout_s: {}", a.timeout_s));
            }
        }
        lines.join("\n")
    }
}

/// The first line of a secret file, trimmed.
pub fn read_secret(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let s = text.lines().next().unwrap_or("").trim().to_string();
    if s.is_empty() {
        return Err(ConfigError::invalid(path, "empty"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("deploy.toml");
        std::fs::write(&p, include_str!("../deploy.example.toml")).unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!((c.branch.as_str(), c.poll_interval_s), ("main", 30));
        assert_eq!(c.debounce_ms, 50);
        assert!(c.activation.is_none() && c.worktree.is_none());
        // The commented-out parts, enabled, parse too.
        let enabled: String = include_str!("../deploy.example.toml")
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with("worktree")
                        || rest.starts_with("[activation]")
                        || rest.starts_with("host")
                        || rest.starts_with("command")
                        || rest.starts_with("health_check")
                        || rest.starts_with("rollback")
                        || rest.starts_with("timeout_s") =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&p, enabled).unwrap();
        let c = Config::load(&p).unwrap();
        let a = c.activation.unwrap();
        assert_eq!((a.host.as_str(), a.timeout_s), ("lab1-server", 3600));
        assert!(a.rollback.is_some() && c.worktree.is_some());
        let url =
            "switchboard_url = \"http://x\"\ntoken_file = \"t\"\nrepo = \"git@forge:lab/d.git\"\n";
        // No TLS in this build: an https:// switchboard is refused when the file is read.
        std::fs::write(&p, url.replace("http://x", "https://x")).unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("switchboard_url") && e.contains("no TLS"), "{e}");
        std::fs::write(&p, url).unwrap();
        let c = Config::load(&p).unwrap();
        assert!(matches!(
            c.source(),
            crate::git_source::Source::Remote { .. }
        ));
        std::fs::write(&p, url.replace("git@forge:lab/d.git", "local.git")).unwrap();
        assert_eq!(
            Config::load(&p).unwrap().source(),
            crate::git_source::Source::Local(dir.path().join("local.git"))
        );
        std::fs::write(
            &p,
            "switchboard_url = \"http://x\"\ntoken_file = \"t\"\nrepo = \"r\"\npoll = 3\n",
        )
        .unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("poll") && e.contains("deploy.toml:4: "), "{e}");
        std::fs::write(
            &p,
            "switchboard_url = \"http://x\"\ntoken_file = \"t\"\nrepo = \"r\"\nlisten = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("webhook_secret_file"), "{e}");
        assert!(Config::load(&dir.path().join("missing.toml")).is_err());
    }
}
