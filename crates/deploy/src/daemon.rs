//! The `paddock-deploy` daemon: a sync every `poll_interval_s`, and at once when a push
//! webhook with a valid GitHub-style signature (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256
//! of the body>`) arrives. A bad or missing signature is 401 and syncs nothing.
//!
//! With a working tree configured, its edits apply as soon as they settle (notify, debounced)
//! and the remote branch applies when it moves: the newest change wins, and the report says
//! when the live state is ahead of the remote. After a commit of the branch is live, a changed
//! `hosts/<host>/` is activated (see `activation`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::activation::{self, ActivationConfig};
use crate::apply::{Memory, Outcome, Switchboard, apply_snapshot_with, read_head, sync_head};
use crate::git_source::{GitError, Source};
use crate::report::{Report, WorktreeReport, drift};
use crate::{watch, worktree};

/// What the daemon needs, read from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub switchboard: Switchboard,
    pub source: Source,
    pub branch: String,
    pub poll_interval: Duration,
    /// A working tree of the repo on this server, watched: its edits apply at once.
    pub worktree: Option<PathBuf>,
    /// Quiet time that ends a burst of edits.
    pub debounce: Duration,
    pub activation: Option<ActivationConfig>,
    /// Where the mirror of a remote, the activation record and its checkout live.
    pub state_dir: PathBuf,
}

impl Settings {
    /// Settings for a local repo, no working tree, no activation.
    pub fn new(switchboard: Switchboard, source: Source, branch: &str, poll: Duration) -> Self {
        Settings {
            switchboard,
            source,
            branch: branch.to_string(),
            poll_interval: poll,
            worktree: None,
            debounce: Duration::from_millis(50),
            activation: None,
            state_dir: std::env::temp_dir(),
        }
    }
}

/// Why a turn of the loop happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    Poll,
    Push,
    Edit,
}

/// The `X-Hub-Signature-256` value of `body` under `secret`: `sha256=<hex HMAC-SHA256>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// True when `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`
/// (compared in constant time).
pub fn signature_ok(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[derive(Clone)]
struct Hook {
    secret: Arc<Vec<u8>>,
    wake: Arc<Notify>,
}

async fn push(State(h): State<Hook>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !signature_ok(&h.secret, &body, sig) {
        tracing::warn!("webhook with a missing or bad signature refused");
        return (
            StatusCode::UNAUTHORIZED,
            "missing or bad X-Hub-Signature-256\n".into(),
        );
    }
    h.wake.notify_one();
    (StatusCode::ACCEPTED, "sync scheduled\n".into())
}

/// The webhook router: `POST /hooks/push`; a valid one wakes the sync loop through `wake`.
pub fn webhook(secret: Vec<u8>, wake: Arc<Notify>) -> Router {
    Router::new()
        .route("/hooks/push", post(push))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .with_state(Hook {
            secret: Arc::new(secret),
            wake,
        })
}

/// Syncs until `shutdown` resolves: at start, every poll interval, whenever `wake` is
/// notified (the webhook), and when the working tree's edits settle. Errors are logged and
/// retried at the next turn. A turn reads a commit's files only when the switchboard does not
/// run it and it is not the one last rejected: a rejected commit is validated and reported
/// once, not at every poll. A rejection the switchboard still shows is withdrawn once no source
/// holds the rejected state any more (an edit reverted to the live content, a branch moved back
/// to the live commit), and forgotten, so the same bad state made again is reported again.
pub async fn run(
    settings: Settings,
    wake: Arc<Notify>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let edits = Arc::new(Notify::new());
    let _watch = settings.worktree.as_ref().and_then(|w| {
        match watch::watch(w, settings.debounce, edits.clone()) {
            Ok(watch) => Some(watch),
            Err(e) => {
                tracing::error!(
                    "watching {}: {e}; its edits apply at the next poll",
                    w.display()
                );
                None
            }
        }
    });
    let mut state = LoopState::default();
    let mut trigger = Trigger::Start;
    loop {
        let span = tracing::info_span!("sync", repo = %settings.source, branch = %settings.branch, ?trigger);
        tracing::Instrument::instrument(turn(&settings, trigger, &mut state), span).await;
        trigger = tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(settings.poll_interval) => Trigger::Poll,
            _ = wake.notified() => Trigger::Push,
            _ = edits.notified() => Trigger::Edit,
        };
    }
}

#[derive(Default)]
struct LoopState {
    /// The remote branch as last read: its commit, or why it could not be read.
    remote_seen: Option<Result<String, String>>,
    last_report: Option<Report>,
    /// The state last rejected, not read or reported again.
    memory: Memory,
}

async fn turn(settings: &Settings, trigger: Trigger, st: &mut LoopState) {
    let sb = &settings.switchboard;
    // The remote's commit is found on every turn but an edit's (which must be quick); its
    // files are read only when it is to be applied.
    let remote: Option<Result<String, GitError>> = if trigger == Trigger::Edit {
        None
    } else {
        match read_head(&settings.source, &settings.branch).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("reading the repository: {e}");
                return;
            }
        }
    };
    let seen = remote
        .as_ref()
        .map(|r| r.clone().map_err(|e| e.to_string()));
    let remote_moved = seen.is_some() && seen != st.remote_seen;
    if let Some(seen) = seen {
        st.remote_seen = Some(seen);
    }
    let tree = match &settings.worktree {
        Some(root) => {
            let root = root.clone();
            match tokio::task::spawn_blocking(move || worktree::read(&root)).await {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("reading the working tree: {e}");
                    return;
                }
            }
        }
        None => None,
    };
    // The newest change wins: the remote when it moved (or always, without a working tree),
    // the working tree at start and on its edits.
    let outcome = match (&tree, remote) {
        (Some(t), _) if matches!(trigger, Trigger::Start | Trigger::Edit) => {
            let snapshot = t.clone().map(|t| t.snapshot);
            Some(apply_snapshot_with(sb, snapshot, &mut st.memory).await)
        }
        (Some(_), Some(r)) if remote_moved => {
            Some(sync_head(sb, &settings.source, r, &mut st.memory).await)
        }
        (None, Some(r)) => Some(sync_head(sb, &settings.source, r, &mut st.memory).await),
        _ => None,
    };
    match &outcome {
        None | Some(Ok(Outcome::Unchanged { .. })) | Some(Ok(Outcome::AlreadyRejected { .. })) => {}
        Some(Ok(Outcome::Applied {
            commit,
            generation,
            summary,
        })) => tracing::info!(%commit, generation, changes = summary.len(), "applied"),
        Some(Ok(Outcome::Rejected { commit, errors })) => {
            let shown = paddock_core::deployments::limits::MAX_REPORTED_ERRORS;
            for e in errors.iter().take(shown) {
                tracing::warn!(%commit, "rejected: {e}");
            }
            if errors.len() > shown {
                tracing::warn!(
                    %commit,
                    total = errors.len(),
                    "rejected: … and {} more errors",
                    errors.len() - shown
                );
            }
        }
        Some(Err(e)) => tracing::warn!("sync failed (retried at the next turn): {e}"),
    }
    let (live, rejected) = match sb.applied_state().await {
        Ok(a) => (a.commit, a.last_error.map(|r| r.commit)),
        Err(e) => {
            tracing::warn!("reading the applied state: {e}");
            return;
        }
    };
    if let Some(rejected) = rejected
        && rejection_is_stale(&rejected, tree.as_ref(), st.remote_seen.as_ref())
    {
        match sb.clear_rejection(&rejected).await {
            Ok(()) => {
                tracing::info!(commit = %rejected, "rejection withdrawn: no source holds it any more");
                st.memory.forget();
            }
            Err(e) => tracing::warn!(commit = %rejected, "withdrawing the rejection: {e}"),
        }
    }
    let remote_commit = st.remote_seen.clone().and_then(|r| r.ok());
    let activation = match (&settings.activation, &remote_commit) {
        (Some(cfg), Some(commit)) if *commit == live => {
            activate_if_needed(settings, cfg, commit).await
        }
        (Some(_), _) => activation::last(&settings.state_dir),
        (None, _) => None,
    };
    let worktree = match (&tree, &settings.worktree) {
        (Some(Ok(t)), Some(root)) => Some(WorktreeReport {
            path: root.display().to_string(),
            head: t.head.clone(),
            edited: t.edited.clone(),
            commit: t.snapshot.commit.clone(),
            ahead: remote_commit
                .as_deref()
                .and_then(|r| worktree::commits_ahead(root, &t.head, r)),
        }),
        (Some(Err(e)), _) => {
            tracing::warn!("reading the working tree: {e}");
            None
        }
        _ => None,
    };
    let (pending, drift) = drift(&live, remote_commit.as_deref(), worktree.as_ref());
    let report = Report {
        repo: settings.source.to_string(),
        branch: settings.branch.clone(),
        remote_commit,
        remote_error: st.remote_seen.clone().and_then(|r| r.err()),
        worktree,
        pending,
        drift,
        activation,
        checked_at: paddock_core::api::now_ms(),
    };
    if st
        .last_report
        .as_ref()
        .is_some_and(|r| crate::report::same(r, &report))
    {
        return;
    }
    let body = serde_json::to_value(&report).unwrap_or_default();
    match sb
        .call(reqwest::Method::POST, "/deployment/report", Some(body))
        .await
    {
        Ok(_) => st.last_report = Some(report),
        Err(e) => tracing::warn!("reporting to the switchboard: {e}"),
    }
}

/// Whether the recorded rejection of `rejected` is of a state none of the daemon's sources
/// holds any more (a rejected edit reverted, a branch moved back to the live commit), so that
/// `GET /deployment` and `/metrics` stop reporting it. Undecided (false) while a source could
/// not be read: the working tree (`tree`, when one is configured) and the remote branch as
/// last seen (`remote`; in error, it still holds a branch or repository rejection).
fn rejection_is_stale(
    rejected: &str,
    tree: Option<&Result<worktree::Worktree, GitError>>,
    remote: Option<&Result<String, String>>,
) -> bool {
    let held_by_tree = match tree {
        None => false,
        Some(Ok(t)) => t.snapshot.commit == rejected,
        Some(Err(_)) => return false,
    };
    let held_by_remote = match remote {
        None => return false,
        Some(Ok(commit)) => commit == rejected,
        Some(Err(_)) => rejected == crate::apply::NO_BRANCH || rejected == crate::apply::UNREADABLE,
    };
    !held_by_tree && !held_by_remote
}

/// Activates `commit` when its `hosts/<host>/` changed; the last record either way.
async fn activate_if_needed(
    settings: &Settings,
    cfg: &ActivationConfig,
    commit: &str,
) -> Option<activation::Record> {
    let repo = settings.source.git_dir().to_path_buf();
    let needed = activation::needed(cfg, &repo, commit, &settings.state_dir);
    match needed {
        Ok(Some(tree)) => {
            match activation::activate(cfg, &repo, commit, &tree, &settings.state_dir).await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!(%commit, "activation: {e}");
                    activation::last(&settings.state_dir)
                }
            }
        }
        Ok(None) => activation::last(&settings.state_dir),
        Err(e) => {
            tracing::error!(%commit, "activation: {e}");
            activation::last(&settings.state_dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_is_stale_only_when_no_readable_source_holds_it() {
        let ok = |c: &str| Some(Ok::<String, String>(c.to_string()));
        let gone: Option<Result<String, String>> = Some(Err("branch `main` does not exist".into()));
        // Remote only.
        assert!(rejection_is_stale("bad", None, ok("live").as_ref()));
        assert!(!rejection_is_stale("bad", None, ok("bad").as_ref()));
        assert!(!rejection_is_stale("bad", None, None));
        // A remote in error still holds a branch or repository rejection, not a commit's.
        assert!(!rejection_is_stale(
            crate::apply::NO_BRANCH,
            None,
            gone.as_ref()
        ));
        assert!(!rejection_is_stale(
            crate::apply::UNREADABLE,
            None,
            gone.as_ref()
        ));
        assert!(rejection_is_stale("bad", None, gone.as_ref()));
        assert!(rejection_is_stale(
            crate::apply::NO_BRANCH,
            None,
            ok("live").as_ref()
        ));
        // An unreadable working tree decides nothing.
        let unreadable: Result<worktree::Worktree, GitError> = Err(GitError::Open {
            path: "/srv/deployments".into(),
            message: "gone".into(),
        });
        assert!(!rejection_is_stale(
            "bad",
            Some(&unreadable),
            ok("live").as_ref()
        ));
    }
}
