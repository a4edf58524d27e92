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

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::invalid(path, message);
        let mut c: Config = paddock_core::config_file::read_toml(path)?;
        paddock_core::config_file::relative_to_file(
            path,
            [Some(&mut c.token_file), Some(&mut c.state_dir)]
                .into_iter()
                .chain([c.webhook_secret_file.as_mut(), c.worktree.as_mut()])
                .flatten(),
        );
        if !crate::git_source::is_remote(&c.repo) {
            let mut repo = PathBuf::from(&c.repo);
            paddock_core::config_file::relative_to_file(path, [&mut repo]);
            c.repo = repo.display().to_string();
        }
        if let Some(a) = &c.activation {
            if a.host.is_empty() || a.host.contains('/') || a.host.starts_with('.') {
                return Err(invalid(format!(
                    "activation.host: `{}` is not a directory name under hosts/",
                    a.host
                )));
            }
            if a.command.trim().is_empty() {
                return Err(invalid("activation.command: empty".into()));
            }
        }
        if !(c.switchboard_url.starts_with("http://") || c.switchboard_url.starts_with("https://"))
        {
            return Err(invalid(format!(
                "switchboard_url: `{}` is not an http(s) URL",
                c.switchboard_url
            )));
        }
        paddock_core::transport::require_plain(&c.switchboard_url)
            .map_err(|e| invalid(format!("switchboard_url: {e}")))?;
        if c.debounce_ms == 0 || c.debounce_ms > 10_000 {
            return Err(invalid("debounce_ms: 1 to 10000".into()));
        }
        if c.poll_interval_s == 0 {
            return Err(invalid("poll_interval_s: must be at least 1".into()));
        }
        if c.branch.is_empty() || c.branch.contains("..") || c.branch.starts_with('/') {
            return Err(invalid(format!(
                "branch: `{}` is not a branch name",
                c.branch
            )));
        }
        if c.listen.is_some() && c.webhook_secret_file.is_none() {
            return Err(invalid(
                "webhook_secret_file: required when `listen` is set (unsigned webhooks are refused)"
                    .into(),
            ));
        }
        Ok(c)
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
        assert!(e.contains("poll") && e.contains("line 4"), "{e}");
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
