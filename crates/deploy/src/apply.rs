//! One sync of the deployments repo: read the branch's commit, and unless the switchboard
//! already runs it, validate it whole and either apply it (one admin call, generation one
//! above the applied one) or report it rejected with every error. The last good state stays
//! live on any error.

use paddock_core::deployments;
use serde_json::json;

use crate::git_source::{GitError, Snapshot, Source};

/// Where states are applied: the switchboard's URL and an admin token.
#[derive(Debug, Clone)]
pub struct Switchboard {
    pub url: String,
    pub token: String,
    pub http: reqwest::Client,
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The switchboard already runs this commit.
    Unchanged { commit: String },
    Applied {
        commit: String,
        generation: i64,
        /// One line per change; empty when the content did not change.
        summary: Vec<String>,
    },
    /// The commit is invalid (or the branch is gone): nothing applied, the errors reported.
    Rejected { commit: String, errors: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("switchboard {url}: {message}")]
    Switchboard { url: String, message: String },
    #[error("reading the repository: {0}")]
    Task(String),
}

impl Switchboard {
    fn err(&self, message: impl std::fmt::Display) -> SyncError {
        SyncError::Switchboard {
            url: self.url.clone(),
            message: message.to_string(),
        }
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, SyncError> {
        let url = format!("{}/api/v1{path}", self.url.trim_end_matches('/'));
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| self.err(e))?;
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            let why = v["error"].as_str().unwrap_or("").to_string();
            return Err(self.err(format!("{path}: HTTP {status}: {why}")));
        }
        Ok(v)
    }
}

/// Reads (fetching a remote first) `branch` of `source` and brings the switchboard to it.
pub async fn sync_once(
    source: &Source,
    branch: &str,
    sb: &Switchboard,
) -> Result<Outcome, SyncError> {
    let snapshot = read_source(source, branch).await?;
    apply_snapshot(sb, snapshot).await
}

/// Reads the branch off the async threads (a fetch may take a while).
pub async fn read_source(
    source: &Source,
    branch: &str,
) -> Result<Result<Snapshot, GitError>, SyncError> {
    let (source, branch) = (source.clone(), branch.to_string());
    tokio::task::spawn_blocking(move || source.read(&branch))
        .await
        .map_err(|e| SyncError::Task(e.to_string()))
}

/// Brings the switchboard to `snapshot` (a commit, or a working tree's content): unchanged
/// when it runs it already, applied when valid, rejected whole (and reported) otherwise.
pub async fn apply_snapshot(
    sb: &Switchboard,
    snapshot: Result<Snapshot, GitError>,
) -> Result<Outcome, SyncError> {
    let applied = sb.call(reqwest::Method::GET, "/deployment", None).await?;
    let applied_commit = applied["commit"].as_str().unwrap_or("").to_string();
    let generation = applied["generation"].as_i64().unwrap_or(0);
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e @ GitError::NoBranch { .. }) => {
            // A deleted branch is reported; what runs stays as it is.
            return reject(sb, "(none)", vec![e.to_string()]).await;
        }
        Err(e) => return reject(sb, "(unreadable)", vec![e.to_string()]).await,
    };
    if snapshot.commit == applied_commit {
        return Ok(Outcome::Unchanged {
            commit: snapshot.commit,
        });
    }
    let mut errors: Vec<String> = snapshot
        .not_text
        .iter()
        .map(|f| format!("{f}:1:1: not UTF-8 text"))
        .collect();
    let state = match deployments::load(&snapshot.files) {
        Ok(s) => Some(s),
        Err(d) => {
            errors.extend(d.0.iter().map(|e| e.to_string()));
            None
        }
    };
    let Some(state) = state.filter(|_| errors.is_empty()) else {
        tracing::warn!(commit = %snapshot.commit, errors = errors.len(), "deployment rejected");
        return reject(sb, &snapshot.commit, errors).await;
    };
    let v = sb
        .call(
            reqwest::Method::POST,
            "/deployment",
            Some(json!({
                "commit": snapshot.commit,
                "generation": generation + 1,
                "state": state,
            })),
        )
        .await;
    let v = match v {
        Ok(v) => v,
        // The switchboard refused it whole (a name held by a supervisor added by hand, …).
        Err(SyncError::Switchboard { message, .. }) => {
            return reject(sb, &snapshot.commit, vec![message]).await;
        }
        Err(e) => return Err(e),
    };
    let summary: Vec<String> = v["summary"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for line in &summary {
        tracing::info!(commit = %snapshot.commit, "applied: {line}");
    }
    Ok(Outcome::Applied {
        commit: snapshot.commit,
        generation: generation + 1,
        summary,
    })
}

async fn reject(sb: &Switchboard, commit: &str, errors: Vec<String>) -> Result<Outcome, SyncError> {
    sb.call(
        reqwest::Method::POST,
        "/deployment/rejection",
        Some(json!({"commit": commit, "errors": errors})),
    )
    .await?;
    Ok(Outcome::Rejected {
        commit: commit.to_string(),
        errors,
    })
}
