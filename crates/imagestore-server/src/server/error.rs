//! The server's one HTTP error type. [`ApiError`]'s `IntoResponse` is the only place that
//! decides the status code and body of a refused or failed request. Refusals (4xx) say why in
//! a `text/plain` body; a server error (5xx) never carries internal text (paths, OS errors):
//! its body names a request id, and the cause is logged once, with that id, here.

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use paddock_imagestore::local::StoreError;
use paddock_imagestore::paths::PathError;
use paddock_imagestore::regular::OpenError;

/// The header a 5xx answer carries its request id in (also in its body and in the log).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// Not a store path, no such file, or a link or non-regular file at a store path.
    #[error("not found")]
    NotFound,
    #[error("no such image")]
    NoSuchImage,
    #[error("{0}")]
    BadRequest(String),
    #[error("a push token is required")]
    Unauthorized,
    #[error("{0}")]
    MethodNotAllowed(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// A `Range` outside the file: 416 with the file's headers (`Content-Range: bytes */len`)
    /// and no body.
    #[error("range not satisfiable")]
    RangeNotSatisfiable(HeaderMap),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// An upload not stored because the disk (or the quota) is full: 507, the client may retry
    /// once space is freed.
    #[error("no space left on the store's disk; nothing was stored")]
    DiskFull(#[source] StoreError),
    /// An upload not stored for another reason.
    #[error("upload failed; nothing was stored")]
    UploadFailed(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] Internal),
}

/// The cause of a 500 outside uploads: logged, never sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Internal {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("a blocking task failed")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Other(&'static str),
}

impl ApiError {
    /// An upload that could not be stored: 507 when the disk is full, 500 otherwise.
    pub(crate) fn store_failed(e: StoreError) -> ApiError {
        if e.is_disk_full() {
            ApiError::DiskFull(e)
        } else {
            ApiError::UploadFailed(e)
        }
    }

    pub(crate) fn internal(e: impl Into<Internal>) -> ApiError {
        ApiError::Internal(e.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound | ApiError::NoSuchImage => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::UploadFailed(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Logs a server error with its causes under a new request id; returns the body sent.
    fn log_server_error(&self, id: &str) -> String {
        let error = paddock_core::error_text::with_causes(self);
        match self {
            ApiError::DiskFull(_) => {
                tracing::error!(request_id = id, %error, "upload refused: no space left on the store's disk");
                format!("{self} (request id {id})")
            }
            ApiError::UploadFailed(_) => {
                tracing::error!(request_id = id, %error, "upload failed");
                format!("internal error (logged with request id {id}); nothing was stored")
            }
            _ => {
                tracing::error!(request_id = id, %error, "internal error");
                format!("internal error (logged with request id {id})")
            }
        }
    }
}

/// A `text/plain` answer: `msg` and a newline.
pub(crate) fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], m).into_response()
}

/// A new request id: 16 hex digits, random.
fn request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::RangeNotSatisfiable(headers) = self {
            return (status, headers).into_response();
        }
        if !status.is_server_error() {
            let mut r = text(status, self.to_string());
            if matches!(self, ApiError::Unauthorized) {
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            return r;
        }
        let id = request_id();
        let mut r = text(status, self.log_server_error(&id));
        if let Ok(v) = HeaderValue::from_str(&id) {
            r.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        r
    }
}

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        match e {
            PathError::NotFound => ApiError::NotFound,
            PathError::Malformed(m) => ApiError::BadRequest(m),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(e)
    }
}

/// A store error outside uploads (listing, reading): internal.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

/// Opening a file to serve it: a missing file, a link or a non-regular file is 404 (not part of
/// the store: `all.txt` never lists it); anything else is internal.
impl From<OpenError> for ApiError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::NotFound(_) => ApiError::NotFound,
            OpenError::NotRegular(p) => {
                tracing::warn!(path = %p.display(), "refused to serve a link or non-regular file");
                ApiError::NotFound
            }
            e => ApiError::internal(e),
        }
    }
}
