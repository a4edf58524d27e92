//! One sync of the deployments repo: find the branch's commit, and unless the switchboard
//! already runs it (or it is the commit last rejected), read and validate it whole and either
//! apply it (one admin call, generation one above the applied one) or report it rejected:
//! the first [`limits::MAX_REPORTED_ERRORS`] errors and their total. The last good state
//! stays live on any error.

use paddock_core::api::deployment::{Applied, ApplyRequest, ApplyResponse, RejectionRequest};
use paddock_core::deployments::{self, limits};
use reqwest::StatusCode;

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
    /// The commit is invalid, the switchboard refused it, or the branch is gone: nothing
    /// applied. `errors` holds every error; the switchboard got the first
    /// [`limits::MAX_REPORTED_ERRORS`] and the total.
    Rejected { commit: String, errors: Vec<String> },
    /// The commit (or branch error) last rejected, again: not read, validated or reported
    /// again.
    AlreadyRejected { commit: String },
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A call to the switchboard failed; `status` is its HTTP status when it answered.
    #[error("switchboard {url}: {message}")]
    Switchboard {
        url: String,
        status: Option<u16>,
        message: String,
    },
    #[error("reading the repository: {0}")]
    Task(String),
}

/// What a sync loop remembers between its turns: the last commit (or working-tree state, or
/// branch error) it rejected and reported, so that the same one is not read, validated and
/// reported again at every poll. An applied one needs no memory: the switchboard names it.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    rejected: Option<String>,
}

impl Memory {
    /// Forgets the rejected state: seen again, it is validated and reported again (after its
    /// rejection was withdrawn, the switchboard no longer shows it).
    pub fn forget(&mut self) {
        self.rejected = None;
    }
}

/// The `commit` a rejection names when the branch is gone.
pub const NO_BRANCH: &str = "(none)";
/// The `commit` a rejection names when the repository (or working tree) cannot be read.
pub const UNREADABLE: &str = "(unreadable)";

impl Switchboard {
    fn err(&self, status: Option<u16>, message: impl std::fmt::Display) -> SyncError {
        SyncError::Switchboard {
            url: self.url.clone(),
            status,
            message: message.to_string(),
        }
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, SyncError> {
        let body = body
            .map(|b| serde_json::to_vec(&b))
            .transpose()
            .map_err(|e| self.err(None, format!("{method} {path}: encoding the body: {e}")))?;
        self.send(method, path, body).await
    }

    /// Sends `body` (JSON) to `/api/v1{path}` through the one switchboard client
    /// (`paddock_client`: time limits, idempotent calls retried); a failure names what was
    /// sent and why.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<serde_json::Value, SyncError> {
        use paddock_client::ClientError;
        let what = match path {
            "/deployment" => "the deployment",
            "/deployment/rejection" => "the rejection report",
            "/deployment/report" => "the daemon's report",
            _ => "the body",
        };
        let len = body.as_ref().map_or(0, Vec::len);
        let client = paddock_client::Switchboard::from_parts(
            &self.url,
            Some(self.token.clone()),
            self.http.clone(),
            paddock_client::Timeouts::default(),
        );
        match client.call_raw(method.clone(), path, body).await {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)),
            // The URL is named once, by the error (reqwest's own text would repeat it).
            Err(ClientError::Connect { cause, .. }) if len > 0 => Err(self.err(
                None,
                format!("{method} {path}: sending {what} ({len} bytes): {cause}"),
            )),
            Err(ClientError::Connect { cause, .. }) => {
                Err(self.err(None, format!("{method} {path}: {cause}")))
            }
            Err(ClientError::Status { status, .. }) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(self.err(
                    Some(status.as_u16()),
                    format!(
                        "{method} {path}: {what} is {len} bytes, over the switchboard's limit (HTTP 413)"
                    ),
                ))
            }
            Err(ClientError::Status {
                status, message, ..
            }) => Err(self.err(
                Some(status.as_u16()),
                format!("{method} {path}: HTTP {status}: {message}"),
            )),
            Err(e) => Err(self.err(None, e)),
        }
    }

    /// Withdraws the switchboard's record of the rejected `commit` (kept if a newer rejection
    /// replaced it): none of the daemon's sources holds that commit any more.
    pub(crate) async fn clear_rejection(&self, commit: &str) -> Result<(), SyncError> {
        let query: String = url_query(&[("commit", commit)]);
        self.call(
            reqwest::Method::DELETE,
            &format!("/deployment/rejection?{query}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// What the switchboard runs (`GET /deployment`), typed.
    pub(crate) async fn applied_state(&self) -> Result<Applied, SyncError> {
        let v = self.call(reqwest::Method::GET, "/deployment", None).await?;
        self.answer(&reqwest::Method::GET, "/deployment", v)
    }

    /// The applied commit (empty before the first) and generation.
    async fn applied(&self) -> Result<(String, i64), SyncError> {
        let a = self.applied_state().await?;
        Ok((a.commit, a.generation))
    }

    /// A successful answer read as `T`; one that is not is an error naming the call.
    fn answer<T: serde::de::DeserializeOwned>(
        &self,
        method: &reqwest::Method,
        path: &str,
        v: serde_json::Value,
    ) -> Result<T, SyncError> {
        serde_json::from_value(v)
            .map_err(|e| self.err(None, format!("{method} {path}: unexpected answer: {e}")))
    }
}

/// `pairs` as an `application/x-www-form-urlencoded` query (a worktree state's `+` included).
fn url_query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        for (j, part) in [k, v].into_iter().enumerate() {
            if j > 0 {
                out.push('=');
            }
            for b in part.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// Reads (fetching a remote first) `branch` of `source` and brings the switchboard to it.
pub async fn sync_once(
    source: &Source,
    branch: &str,
    sb: &Switchboard,
) -> Result<Outcome, SyncError> {
    let head = read_head(source, branch).await?;
    sync_head(sb, source, head, &mut Memory::default()).await
}

/// Finds the branch's commit (fetching a remote first) off the async threads; nothing of
/// the commit is read yet.
pub async fn read_head(
    source: &Source,
    branch: &str,
) -> Result<Result<String, GitError>, SyncError> {
    let (source, branch) = (source.clone(), branch.to_string());
    tokio::task::spawn_blocking(move || source.head(&branch))
        .await
        .map_err(|e| SyncError::Task(e.to_string()))
}

/// Reads the DB files of `commit` (within the limits) off the async threads.
pub async fn read_commit(
    source: &Source,
    commit: &str,
) -> Result<Result<Snapshot, GitError>, SyncError> {
    let (source, commit) = (source.clone(), commit.to_string());
    tokio::task::spawn_blocking(move || source.snapshot(&commit))
        .await
        .map_err(|e| SyncError::Task(e.to_string()))
}

/// Brings the switchboard to `head` (the branch's commit as [`read_head`] found it). The
/// commit's files are read only when the switchboard does not run it already and it is not
/// the one `memory` last rejected.
pub async fn sync_head(
    sb: &Switchboard,
    source: &Source,
    head: Result<String, GitError>,
    memory: &mut Memory,
) -> Result<Outcome, SyncError> {
    let (live, generation) = sb.applied().await?;
    let commit = match head {
        Ok(c) => c,
        Err(e) => return reject_unreadable(sb, memory, e).await,
    };
    if commit == live {
        return Ok(Outcome::Unchanged { commit });
    }
    if memory.rejected.as_deref() == Some(commit.as_str()) {
        return Ok(Outcome::AlreadyRejected { commit });
    }
    let snapshot = read_commit(source, &commit).await?;
    bring(sb, memory, snapshot, generation).await
}

/// Brings the switchboard to `snapshot` (a commit, or a working tree's content): unchanged
/// when it runs it already, applied when valid, rejected whole (and reported) otherwise.
pub async fn apply_snapshot(
    sb: &Switchboard,
    snapshot: Result<Snapshot, GitError>,
) -> Result<Outcome, SyncError> {
    apply_snapshot_with(sb, snapshot, &mut Memory::default()).await
}

/// [`apply_snapshot`], skipping the state `memory` last rejected.
pub async fn apply_snapshot_with(
    sb: &Switchboard,
    snapshot: Result<Snapshot, GitError>,
    memory: &mut Memory,
) -> Result<Outcome, SyncError> {
    let (live, generation) = sb.applied().await?;
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e) => return reject_unreadable(sb, memory, e).await,
    };
    if snapshot.commit == live {
        return Ok(Outcome::Unchanged {
            commit: snapshot.commit,
        });
    }
    if memory.rejected.as_deref() == Some(snapshot.commit.as_str()) {
        return Ok(Outcome::AlreadyRejected {
            commit: snapshot.commit,
        });
    }
    bring(sb, memory, Ok(snapshot), generation).await
}

/// Validates a snapshot the switchboard does not run and applies it, or reports it rejected.
async fn bring(
    sb: &Switchboard,
    memory: &mut Memory,
    snapshot: Result<Snapshot, GitError>,
    generation: i64,
) -> Result<Outcome, SyncError> {
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e) => return reject_unreadable(sb, memory, e).await,
    };
    let commit = snapshot.commit;
    let state = match deployments::load_read(&snapshot.files, &snapshot.refused) {
        Ok(s) => s,
        Err(d) => {
            let errors: Vec<String> = d.0.iter().map(|e| e.to_string()).collect();
            tracing::warn!(%commit, errors = errors.len(), "deployment rejected");
            return reject(sb, memory, &commit, &commit, errors).await;
        }
    };
    let body = ApplyRequest {
        commit,
        generation: generation + 1,
        state,
    };
    let encoded = serde_json::to_vec(&body);
    let commit = body.commit;
    let body = encoded.map_err(|e| {
        sb.err(
            None,
            format!("POST /deployment: encoding the deployment: {e}"),
        )
    })?;
    if body.len() > limits::MAX_STATE_JSON_BYTES {
        let why = format!(
            "the deployment is {} bytes as JSON, over the {} MiB the switchboard takes for one state",
            body.len(),
            limits::MAX_STATE_JSON_BYTES >> 20
        );
        return reject(sb, memory, &commit, &commit, vec![why]).await;
    }
    let v = match sb
        .send(reqwest::Method::POST, "/deployment", Some(body))
        .await
    {
        Ok(v) => v,
        // The switchboard refused the state whole (a name held by a supervisor added by hand,
        // a timeout over its maximum, too big): rejected like an invalid commit. Anything else
        // (not reachable, a 5xx) is retried at the next turn.
        Err(SyncError::Switchboard {
            status: Some(400 | 409 | 413 | 422),
            message,
            ..
        }) => return reject(sb, memory, &commit, &commit, vec![message]).await,
        Err(e) => return Err(e),
    };
    let ApplyResponse { summary, .. } = sb.answer(&reqwest::Method::POST, "/deployment", v)?;
    for line in &summary {
        tracing::info!(%commit, "applied: {line}");
    }
    Ok(Outcome::Applied {
        commit,
        generation: generation + 1,
        summary,
    })
}

/// A branch that is gone or a repository that cannot be read: reported (once while it stays
/// the same); what runs stays as it is.
async fn reject_unreadable(
    sb: &Switchboard,
    memory: &mut Memory,
    e: GitError,
) -> Result<Outcome, SyncError> {
    let commit = match e {
        GitError::NoBranch { .. } => NO_BRANCH,
        _ => UNREADABLE,
    };
    let message = e.to_string();
    let key = format!("{commit} {message}");
    if memory.rejected.as_deref() == Some(key.as_str()) {
        return Ok(Outcome::AlreadyRejected {
            commit: commit.to_string(),
        });
    }
    reject(sb, memory, &key, commit, vec![message]).await
}

/// Reports `commit` rejected: its first errors (each cut to a bounded length) and their
/// total; remembered as `key` once the switchboard has it, or once it refused the report
/// itself (sending the same again would fail the same way at every poll).
async fn reject(
    sb: &Switchboard,
    memory: &mut Memory,
    key: &str,
    commit: &str,
    errors: Vec<String>,
) -> Result<Outcome, SyncError> {
    let shown: Vec<String> = errors
        .iter()
        .take(limits::MAX_REPORTED_ERRORS)
        .map(|e| limits::cut_line(e))
        .collect();
    let body = RejectionRequest {
        commit: commit.to_string(),
        errors: shown,
        total_errors: errors.len(),
    };
    let sent = match serde_json::to_vec(&body) {
        Ok(body) => {
            sb.send(reqwest::Method::POST, "/deployment/rejection", Some(body))
                .await
        }
        Err(e) => Err(sb.err(
            None,
            format!("POST /deployment/rejection: encoding the body: {e}"),
        )),
    };
    if let Err(SyncError::Switchboard {
        status: Some(400 | 413 | 422),
        ..
    }) = &sent
    {
        memory.rejected = Some(key.to_string());
    }
    sent?;
    memory.rejected = Some(key.to_string());
    Ok(Outcome::Rejected {
        commit: commit.to_string(),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_query_escapes_a_worktree_state_and_markers() {
        assert_eq!(
            url_query(&[("commit", "3a3f+edits-0123456789ab")]),
            "commit=3a3f%2Bedits-0123456789ab"
        );
        assert_eq!(url_query(&[("commit", NO_BRANCH)]), "commit=%28none%29");
        assert_eq!(
            url_query(&[("a", "x y&z"), ("b", "é")]),
            "a=x%20y%26z&b=%C3%A9"
        );
    }
}
