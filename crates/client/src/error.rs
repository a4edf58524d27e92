//! Why a call failed.

/// A failed call of the switchboard API. The URL is named once (reqwest's own text, which
/// repeats it, is dropped) and every cause is kept.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be used (`from` names where it came from).
    #[error("{from}: {url:?} {why} (expected http://HOST:PORT)")]
    BadUrl {
        from: String,
        url: String,
        why: String,
    },
    /// The URL needs TLS, which this build does not have.
    #[error("{from}: {why}")]
    Transport { from: String, why: String },
    /// No answer: connection refused, timed out, reset.
    #[error("connecting to {base}: {cause}")]
    Connect { base: String, cause: String },
    /// The switchboard answered with an error status; `message` is its `error` text.
    #[error("{} {}: {message}", status.as_u16(), status.canonical_reason().unwrap_or(""))]
    Status {
        method: reqwest::Method,
        path: String,
        status: reqwest::StatusCode,
        message: String,
    },
    /// The answer could not be read or decoded (or was larger than the bound).
    #[error("{method} {path}: reading the answer: {cause}")]
    Answer {
        method: reqwest::Method,
        path: String,
        cause: String,
    },
    /// The body could not be encoded as JSON.
    #[error("{method} {path}: encoding the body: {cause}")]
    Encode {
        method: reqwest::Method,
        path: String,
        cause: String,
    },
}

impl ClientError {
    /// The HTTP status, when the switchboard answered with an error.
    pub fn status(&self) -> Option<reqwest::StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The switchboard's own message, when it answered with an error.
    pub fn message(&self) -> Option<&str> {
        match self {
            ClientError::Status { message, .. } => Some(message),
            _ => None,
        }
    }
}
