//! Host activation: when a newly applied commit changes `hosts/<host>/` (this site server's
//! own configuration), the commit is exported to a directory and the configured command runs
//! (e.g. `nixos-rebuild switch --flake "$PADDOCK_DEPLOY_CHECKOUT#$PADDOCK_DEPLOY_HOST"`).
//! Then the health check runs; if either fails, the rollback command runs. The outcome is
//! recorded in `state_dir/activation.json` (so a restart does not activate the same tree
//! again) and reported to the switchboard.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::git_source::{self, GitError};

/// `[activation]` of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationConfig {
    /// This host's directory under `hosts/` in the repo.
    pub host: String,
    /// Shell command (`/bin/sh -c`) run when `hosts/<host>/` changed.
    pub command: String,
    /// Shell command run after a successful activation; a non-zero exit means unhealthy.
    #[serde(default)]
    pub health_check: Option<String>,
    /// Shell command run when the activation or the health check failed.
    #[serde(default)]
    pub rollback: Option<String>,
    /// Each command is killed after this many seconds (and counts as failed).
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
}

fn default_timeout() -> u64 {
    3600
}

/// One activation and what came of it (the wire type of the daemon's report).
pub use paddock_core::api::deployment::ActivationRecord as Record;

/// Whether the activation succeeded (and was healthy).
pub fn succeeded(r: &Record) -> bool {
    r.outcome == "activated"
}

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The record of the last activation in `state_dir`, if any (an unreadable one is ignored:
/// the next change activates again).
pub fn last(state_dir: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(state_dir.join("activation.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// True when `commit` has a `hosts/<host>/` that differs from the last activated one.
pub fn needed(
    cfg: &ActivationConfig,
    repo: &Path,
    commit: &str,
    state_dir: &Path,
) -> Result<Option<String>, ActivationError> {
    let sub = format!("hosts/{}", cfg.host);
    let Some(tree) = git_source::subtree_id(repo, commit, &sub)? else {
        return Ok(None);
    };
    match last(state_dir) {
        Some(r) if r.tree == tree => Ok(None),
        _ => Ok(Some(tree)),
    }
}

/// Exports `commit`, runs the command, the health check and, when needed, the rollback;
/// records and returns the outcome.
pub async fn activate(
    cfg: &ActivationConfig,
    repo: &Path,
    commit: &str,
    tree: &str,
    state_dir: &Path,
) -> Result<Record, ActivationError> {
    let checkout = state_dir.join("checkout");
    let (r, c, d) = (repo.to_path_buf(), commit.to_string(), checkout.clone());
    tokio::task::spawn_blocking(move || git_source::export_commit(&r, &c, &d))
        .await
        .map_err(|e| ActivationError::Io {
            path: checkout.clone(),
            source: std::io::Error::other(e.to_string()),
        })??;
    let started_at = paddock_core::api::now_ms();
    let env = [
        ("PADDOCK_DEPLOY_CHECKOUT", checkout.display().to_string()),
        ("PADDOCK_DEPLOY_COMMIT", commit.to_string()),
        ("PADDOCK_DEPLOY_HOST", cfg.host.clone()),
    ];
    let timeout = Duration::from_secs(cfg.timeout_s.max(1));
    let mut steps = Vec::new();
    let mut tail;
    tracing::info!(%commit, host = %cfg.host, "activating: {}", cfg.command);
    let (ok, out) = run_shell(&cfg.command, &env, &checkout, timeout).await;
    steps.push((cfg.command.clone(), out.status.clone()));
    tail = out.tail;
    let mut outcome = if ok {
        "activated".to_string()
    } else {
        "activation failed".to_string()
    };
    if ok && let Some(check) = &cfg.health_check {
        let (healthy, out) = run_shell(check, &env, &checkout, timeout).await;
        steps.push((check.clone(), out.status.clone()));
        tail = out.tail;
        if !healthy {
            outcome = "unhealthy".to_string();
        }
    }
    if outcome != "activated"
        && let Some(rollback) = &cfg.rollback
    {
        tracing::warn!(%commit, host = %cfg.host, "{outcome}: rolling back: {rollback}");
        let (rolled, out) = run_shell(rollback, &env, &checkout, timeout).await;
        steps.push((rollback.clone(), out.status.clone()));
        if !out.tail.is_empty() {
            tail = out.tail;
        }
        outcome.push_str(if rolled {
            ", rolled back"
        } else {
            ", rollback failed"
        });
    }
    let record = Record {
        commit: commit.to_string(),
        tree: tree.to_string(),
        started_at,
        finished_at: paddock_core::api::now_ms(),
        outcome,
        steps,
        output_tail: tail,
    };
    let file = state_dir.join("activation.json");
    let tmp = state_dir.join("activation.json.tmp");
    let io = |path: &Path, source| ActivationError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, serde_json::to_vec_pretty(&record).unwrap_or_default())
        .map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &file).map_err(|e| io(&file, e))?;
    if succeeded(&record) {
        tracing::info!(%commit, host = %cfg.host, "activated");
    } else {
        tracing::warn!(%commit, host = %cfg.host, "activation: {}", record.outcome);
    }
    Ok(record)
}

struct Ran {
    /// `exit 0`, `exit 3`, `killed after 60 s`, `could not start: …`.
    status: String,
    tail: String,
}

/// Runs `command` with `/bin/sh -c` in `dir`; true when it exited 0 within `timeout`.
async fn run_shell(
    command: &str,
    env: &[(&str, String)],
    dir: &Path,
    timeout: Duration,
) -> (bool, Ran) {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = tokio::time::timeout(timeout, cmd.output()).await;
    match output {
        Err(_) => (
            false,
            Ran {
                status: format!("killed after {} s", timeout.as_secs()),
                tail: String::new(),
            },
        ),
        Ok(Err(e)) => (
            false,
            Ran {
                status: format!("could not start: {e}"),
                tail: String::new(),
            },
        ),
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            let status = match out.status.code() {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".to_string(),
            };
            (out.status.success(), Ran { status, tail })
        }
    }
}
