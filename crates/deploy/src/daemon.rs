//! The `paddock-deploy` daemon: a sync every `poll_interval_s`, and at once when a push
//! webhook with a valid GitHub-style signature (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256
//! of the body>`) arrives. A bad or missing signature is 401 and syncs nothing.

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

use crate::apply::{Outcome, Switchboard, sync_once};

/// What the daemon needs, read from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub switchboard: Switchboard,
    pub repo: PathBuf,
    pub branch: String,
    pub poll_interval: Duration,
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

/// Syncs until `shutdown` resolves: at start, every poll interval, and whenever `wake` is
/// notified (the webhook). Errors are logged and retried at the next turn.
pub async fn run(
    settings: Settings,
    wake: Arc<Notify>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let span =
            tracing::info_span!("sync", repo = %settings.repo.display(), branch = %settings.branch);
        let _g = span.enter();
        match sync_once(&settings.repo, &settings.branch, &settings.switchboard).await {
            Ok(Outcome::Unchanged { .. }) => {}
            Ok(Outcome::Applied {
                commit,
                generation,
                summary,
            }) => tracing::info!(%commit, generation, changes = summary.len(), "applied"),
            Ok(Outcome::Rejected { commit, errors }) => {
                for e in &errors {
                    tracing::warn!(%commit, "rejected: {e}");
                }
            }
            Err(e) => tracing::warn!("sync failed (retried at the next turn): {e}"),
        }
        drop(_g);
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(settings.poll_interval) => {}
            _ = wake.notified() => {}
        }
    }
}
