//! An image store server's HTTP API as one value ([`StoreClient`]): its store paths
//! (`images/aa/bb/cc/<id>`, `blobs/…`, `all.txt`), as a static Treadmill store serves them
//! too, and the image API (`/api/v1/images`) of a Paddock store server. Answers are the typed
//! values of [`paddock_core::api::images`], read with a bound; an API call may be given a
//! time limit ([`StoreClient::call_limit`]); reads that got no answer are tried again.
//!
//! Moving whole images between a local store and a server (push, pull, mirror) is the image
//! store library's (`paddock_imagestore::transfer`, `paddock_imagestore::mirror`), on this.

use std::path::Path;
use std::time::Duration;

use paddock_core::ImageId;
use paddock_core::api::images::{ImageList, ImageShown};
use paddock_core::manifest::{image_path, sha256_id};
use reqwest::RequestBuilder;

use crate::transport::{ReadError, http_client, read_bounded, retry, transfer_text};

/// The largest answer read from `/api/v1/images/{name}` (a summary and its manifest as stored).
pub const MAX_API_ANSWER: usize = 4 * 1024 * 1024;
/// The largest listing read from `/api/v1/images` (a few hundred bytes an image).
pub const MAX_LIST_ANSWER: usize = 64 * 1024 * 1024;
/// The largest manifest read from a store path (the store server's limit on a manifest).
pub const MAX_MANIFEST: usize = 1024 * 1024;
/// The largest `all.txt` read (a line of about 80 bytes per file: three million files).
pub const MAX_INDEX: usize = 256 * 1024 * 1024;
/// The limit of a TCP connect to a store.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Most bytes of an error answer read for its text.
const MAX_ERROR_TEXT: usize = 64 * 1024;

/// A failed call of a store server.
#[derive(Debug, thiserror::Error)]
pub enum StoreApiError {
    /// The request could not be sent, or no answer came (within the time limit).
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    /// The server answered 404.
    #[error("{url}: not found (HTTP 404)")]
    NotFound { url: String },
    /// The server answered another error status; `text` is its message (empty when unread).
    #[error("{url}: HTTP {status}{}", if text.is_empty() { String::new() } else { format!(": {text}") })]
    Status {
        url: String,
        status: reqwest::StatusCode,
        text: String,
    },
    /// The answer's body broke off (or ran past the time limit).
    #[error("{url}: {message}")]
    Read { url: String, message: String },
    /// The answer is larger than the client reads.
    #[error("{url}: answer larger than {max} bytes")]
    TooLarge { url: String, max: usize },
    /// The answer is not JSON (`source.is_data()`: JSON, but not of the API's shape).
    #[error("{url}: error decoding response body: {source}")]
    Answer {
        url: String,
        source: serde_json::Error,
    },
    /// The file at an image's store path is not that image.
    #[error("{url}: the manifest hashes to {actual}, not {id}")]
    WrongManifest {
        url: String,
        actual: ImageId,
        id: ImageId,
    },
    /// Pushing without a push token.
    #[error("pushing needs a token (PADDOCK_IMAGESTORE_TOKEN)")]
    NoToken,
}

impl StoreApiError {
    /// Whether no answer came (refused, reset, timed out): worth another try.
    pub fn no_answer(&self) -> bool {
        matches!(self, StoreApiError::Http { .. })
    }
}

fn http_err(url: &str, message: impl Into<String>) -> StoreApiError {
    StoreApiError::Http {
        url: url.to_string(),
        message: message.into(),
    }
}

fn read_err(url: &str, e: ReadError) -> StoreApiError {
    match e {
        ReadError::TooLarge { max } => StoreApiError::TooLarge {
            url: url.to_string(),
            max,
        },
        ReadError::Transfer(message) => StoreApiError::Read {
            url: url.to_string(),
            message,
        },
    }
}

/// What a store has under a name ([`StoreClient::find`]).
#[derive(Debug)]
pub enum Found {
    /// The store's API knows the name: the image (with its `problem` when it cannot be used).
    Shown(ImageShown),
    /// A full id the API does not know (a plain static Treadmill store has no API, only
    /// files): what its store path gave, as [`StoreClient::manifest`] reads it.
    ByPath {
        id: ImageId,
        manifest: Result<Option<Vec<u8>>, StoreApiError>,
    },
    /// A label (or `label@revision`) the API does not know: `url` answered 404.
    Missing { url: String },
}

/// A store server at `base` (`http://HOST:PORT`), with an optional push token.
#[derive(Debug, Clone)]
pub struct StoreClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// The time limit of an API call and of a manifest's download (not of a blob's).
    call_limit: Option<Duration>,
    /// How many times a read (GET, HEAD) is tried when no answer came.
    tries: u32,
}

impl StoreClient {
    pub fn new(base: &str, token: Option<String>) -> StoreClient {
        StoreClient::with_http(base, token, http_client(CONNECT_TIMEOUT))
    }

    /// A client sharing the connections of `http`.
    pub fn with_http(base: &str, token: Option<String>, http: reqwest::Client) -> StoreClient {
        StoreClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
            call_limit: None,
            tries: 3,
        }
    }

    /// Limits each API call and manifest download to `limit`, answer included.
    pub fn call_limit(mut self, limit: Duration) -> StoreClient {
        self.call_limit = Some(limit);
        self
    }

    /// Tries each read `tries` times (at least once) when no answer came.
    pub fn tries(mut self, tries: u32) -> StoreClient {
        self.tries = tries;
        self
    }

    /// The store's base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of a store path (`images/…`, `blobs/…`, `all.txt`).
    pub fn url(&self, rel: &Path) -> String {
        format!("{}/{}", self.base, rel.display())
    }

    /// A GET of the store path `rel` without a time limit (a blob's download may be long),
    /// for the caller to add a range and send; its connections are the client's.
    pub fn file_request(&self, rel: &Path) -> RequestBuilder {
        self.http.get(self.url(rel))
    }

    /// Uploads `body` to the store path `rel` with the push token.
    pub async fn put(&self, rel: &Path, body: reqwest::Body) -> Result<(), StoreApiError> {
        let url = self.url(rel);
        let token = self.token.as_deref().ok_or(StoreApiError::NoToken)?;
        let r = self
            .http
            .put(&url)
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .map_err(|e| http_err(&url, transfer_text(e)))?;
        if r.status().is_success() {
            return Ok(());
        }
        let s = r.status();
        let text = read_bounded(r, MAX_ERROR_TEXT).await.unwrap_or_default();
        Err(http_err(
            &url,
            format!("HTTP {s}: {}", String::from_utf8_lossy(&text).trim()),
        ))
    }

    /// Whether the server has the store path `rel` (a HEAD answered with a success).
    pub async fn exists(&self, rel: &Path) -> Result<bool, StoreApiError> {
        let url = self.url(rel);
        retry(self.tries, StoreApiError::no_answer, || async {
            let r = self
                .http
                .head(&url)
                .send()
                .await
                .map_err(|e| http_err(&url, transfer_text(e)))?;
            Ok(r.status().is_success())
        })
        .await
    }

    /// A GET of `url` within the call limit, tried again when no answer came.
    async fn get(&self, url: &str) -> Result<reqwest::Response, StoreApiError> {
        retry(self.tries, StoreApiError::no_answer, || async {
            let mut req = self.http.get(url);
            if let Some(limit) = self.call_limit {
                req = req.timeout(limit);
            }
            req.send()
                .await
                .map_err(|e| http_err(url, transfer_text(e)))
        })
        .await
    }

    /// A limited GET of `url`: the answer's body (at most `max` bytes) when it is a success,
    /// `None` on 404.
    async fn get_bounded(&self, url: &str, max: usize) -> Result<Option<Vec<u8>>, StoreApiError> {
        let r = self.get(url).await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(StoreApiError::Status {
                url: url.to_string(),
                status: r.status(),
                text: String::new(),
            });
        }
        read_bounded(r, max)
            .await
            .map(Some)
            .map_err(|e| read_err(url, e))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        max: usize,
    ) -> Result<T, StoreApiError> {
        let url = format!("{}{path}", self.base);
        let r = self.get(&url).await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(StoreApiError::NotFound { url });
        }
        if !r.status().is_success() {
            let status = r.status();
            let text = read_bounded(r, MAX_ERROR_TEXT).await.unwrap_or_default();
            return Err(StoreApiError::Status {
                url,
                status,
                text: String::from_utf8_lossy(&text).trim().to_string(),
            });
        }
        let body = read_bounded(r, max).await.map_err(|e| read_err(&url, e))?;
        serde_json::from_slice(&body).map_err(|source| StoreApiError::Answer { url, source })
    }

    /// `GET /api/v1/images`.
    pub async fn list(&self) -> Result<ImageList, StoreApiError> {
        self.get_json("/api/v1/images", MAX_LIST_ANSWER).await
    }

    /// `GET /api/v1/images/NAME` (id, label or label@revision), with the manifest.
    pub async fn show(&self, name: &str) -> Result<ImageShown, StoreApiError> {
        self.get_json(&format!("/api/v1/images/{name}"), MAX_API_ANSWER)
            .await
    }

    /// The store's `all.txt` (at most [`MAX_INDEX`] bytes), as text.
    pub async fn index(&self) -> Result<String, StoreApiError> {
        let url = self.url(Path::new("all.txt"));
        match self.get_bounded(&url, MAX_INDEX).await? {
            Some(bytes) => String::from_utf8(bytes).map_err(|_| StoreApiError::Read {
                url,
                message: "not UTF-8 text".into(),
            }),
            None => Err(StoreApiError::NotFound { url }),
        }
    }

    /// The manifest of `id` read from its store path (`images/aa/bb/cc/<id>`), as a static
    /// Treadmill store serves it: its bytes, verified to hash to `id` (not parsed); `None`
    /// when it is not there (404).
    pub async fn manifest(&self, id: &ImageId) -> Result<Option<Vec<u8>>, StoreApiError> {
        let url = self.url(&image_path(id));
        let Some(bytes) = self.get_bounded(&url, MAX_MANIFEST).await? else {
            return Ok(None);
        };
        let actual = sha256_id(&bytes);
        if &actual != id {
            return Err(StoreApiError::WrongManifest {
                url,
                actual,
                id: id.clone(),
            });
        }
        Ok(Some(bytes))
    }

    /// What the store has under `name` (id, label or label@revision): what its API shows, or
    /// for a full id that the API does not know (`/api/v1/images/` answers 404, as a plain
    /// static store does), what its store path holds.
    pub async fn find(&self, name: &str) -> Result<Found, StoreApiError> {
        match self.show(name).await {
            Ok(shown) => Ok(Found::Shown(shown)),
            Err(StoreApiError::NotFound { url }) => match name.parse::<ImageId>() {
                Ok(id) => {
                    let manifest = self.manifest(&id).await;
                    Ok(Found::ByPath { id, manifest })
                }
                Err(_) => Ok(Found::Missing { url }),
            },
            Err(e) => Err(e),
        }
    }
}
