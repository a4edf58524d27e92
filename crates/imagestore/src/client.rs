//! A client for a store server: push an image from a local store, list, show, find and pull.
//! Answers are the typed values of [`paddock_core::api::images`], read with a bound; a call
//! may be given a time limit ([`StoreClient::call_limit`]).

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use paddock_core::ImageId;
use paddock_core::api::images::{ImageList, ImageShown};
use paddock_core::manifest::{blob_path, image_path, sha256_id};

use crate::local::LocalStore;
use crate::paths::StorePath;

/// The largest answer read from `/api/v1/images/{name}` (a summary and its manifest as stored).
pub const MAX_API_ANSWER: usize = 4 * 1024 * 1024;
/// The largest listing read from `/api/v1/images` (a few hundred bytes an image).
pub const MAX_LIST_ANSWER: usize = 64 * 1024 * 1024;
/// The largest manifest read from a store path (the store server's limit on a manifest).
pub const MAX_MANIFEST: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
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
    #[error(transparent)]
    Store(#[from] crate::local::StoreError),
    #[error("{0}")]
    Other(String),
}

fn http_err(url: &str, message: impl Into<String>) -> ClientError {
    ClientError::Http {
        url: url.to_string(),
        message: message.into(),
    }
}

/// A failed transfer's reqwest error as text: without the URL (the message names it once)
/// and with its causes (reqwest's own text is only "error sending request").
fn transfer_text(e: reqwest::Error) -> String {
    paddock_core::error_text::with_causes(&e.without_url())
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
        manifest: Result<Option<Vec<u8>>, ClientError>,
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
}

impl StoreClient {
    pub fn new(base: &str, token: Option<String>) -> StoreClient {
        StoreClient::with_http(base, token, crate::mirror::http_client())
    }

    /// A client sharing the connections of `http`.
    pub fn with_http(base: &str, token: Option<String>, http: reqwest::Client) -> StoreClient {
        StoreClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
            call_limit: None,
        }
    }

    /// Limits each API call and manifest download to `limit`, answer included.
    pub fn call_limit(mut self, limit: Duration) -> StoreClient {
        self.call_limit = Some(limit);
        self
    }

    /// The store's base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, rel: &Path) -> String {
        format!("{}/{}", self.base, rel.display())
    }

    async fn put(&self, url: &str, body: reqwest::Body) -> Result<(), ClientError> {
        let token = self.token.as_deref().ok_or_else(|| {
            ClientError::Other("pushing needs a token (PADDOCK_IMAGESTORE_TOKEN)".into())
        })?;
        let r = self
            .http
            .put(url)
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .map_err(|e| http_err(url, transfer_text(e)))?;
        if r.status().is_success() {
            return Ok(());
        }
        let s = r.status();
        let text = r.text().await.unwrap_or_default();
        Err(http_err(url, format!("HTTP {s}: {}", text.trim())))
    }

    async fn exists(&self, url: &str) -> Result<bool, ClientError> {
        let r = self
            .http
            .head(url)
            .send()
            .await
            .map_err(|e| http_err(url, transfer_text(e)))?;
        Ok(r.status().is_success())
    }

    /// Uploads image `id` of `store`: its blobs (those the server lacks), then its manifest.
    /// Returns the bytes uploaded.
    pub async fn push(&self, store: &LocalStore, id: &ImageId) -> Result<u64, ClientError> {
        let image = store.verified_image(id)?;
        let mut sent = 0;
        for (_, path) in &image.blobs {
            let digest = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<ImageId>().ok())
                .ok_or_else(|| ClientError::Other(format!("bad blob path {}", path.display())))?;
            let url = self.url(&blob_path(&digest));
            if self.exists(&url).await? {
                continue;
            }
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| ClientError::Other(format!("{}: {e}", path.display())))?;
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
            self.put(&url, reqwest::Body::wrap_stream(stream)).await?;
            sent += len;
        }
        let manifest = store.root().join(image_path(id));
        let bytes = std::fs::read(&manifest)
            .map_err(|e| ClientError::Other(format!("{}: {e}", manifest.display())))?;
        sent += bytes.len() as u64;
        self.put(&self.url(&image_path(id)), bytes.into()).await?;
        Ok(sent)
    }

    /// A limited GET of `url`: the answer's body (at most `max` bytes) when it is a success,
    /// `None` on 404.
    async fn get_bounded(&self, url: &str, max: usize) -> Result<Option<Vec<u8>>, ClientError> {
        let mut req = self.http.get(url);
        if let Some(limit) = self.call_limit {
            req = req.timeout(limit);
        }
        let r = req
            .send()
            .await
            .map_err(|e| http_err(url, transfer_text(e)))?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(ClientError::Status {
                url: url.to_string(),
                status: r.status(),
                text: String::new(),
            });
        }
        read_bounded(url, r, max).await.map(Some)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        max: usize,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.get(&url);
        if let Some(limit) = self.call_limit {
            req = req.timeout(limit);
        }
        let r = req
            .send()
            .await
            .map_err(|e| http_err(&url, transfer_text(e)))?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(ClientError::NotFound { url });
        }
        if !r.status().is_success() {
            let status = r.status();
            let text = read_bounded(&url, r, 64 * 1024).await.unwrap_or_default();
            return Err(ClientError::Status {
                url,
                status,
                text: String::from_utf8_lossy(&text).trim().to_string(),
            });
        }
        let body = read_bounded(&url, r, max).await?;
        serde_json::from_slice(&body).map_err(|source| ClientError::Answer { url, source })
    }

    /// `GET /api/v1/images`.
    pub async fn list(&self) -> Result<ImageList, ClientError> {
        self.get_json("/api/v1/images", MAX_LIST_ANSWER).await
    }

    /// `GET /api/v1/images/NAME` (id, label or label@revision), with the manifest.
    pub async fn show(&self, name: &str) -> Result<ImageShown, ClientError> {
        self.get_json(&format!("/api/v1/images/{name}"), MAX_API_ANSWER)
            .await
    }

    /// The manifest of `id` read from its store path (`images/aa/bb/cc/<id>`), as a static
    /// Treadmill store serves it: its bytes, verified to hash to `id` (not parsed); `None`
    /// when it is not there (404).
    pub async fn manifest(&self, id: &ImageId) -> Result<Option<Vec<u8>>, ClientError> {
        let url = self.url(&image_path(id));
        let Some(bytes) = self.get_bounded(&url, MAX_MANIFEST).await? else {
            return Ok(None);
        };
        let actual = sha256_id(&bytes);
        if &actual != id {
            return Err(ClientError::WrongManifest {
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
    pub async fn find(&self, name: &str) -> Result<Found, ClientError> {
        match self.show(name).await {
            Ok(shown) => Ok(Found::Shown(shown)),
            Err(ClientError::NotFound { url }) => match name.parse::<ImageId>() {
                Ok(id) => {
                    let manifest = self.manifest(&id).await;
                    Ok(Found::ByPath { id, manifest })
                }
                Err(_) => Ok(Found::Missing { url }),
            },
            Err(e) => Err(e),
        }
    }

    /// Downloads image `name` (id, label or label@revision) into the store at `dir`, every
    /// file verified. Returns the image id. A full id that `/api/v1/images/` does not know is
    /// fetched from its store path: a plain static Treadmill store has no API, only files.
    pub async fn pull(&self, name: &str, dir: &Path) -> Result<ImageId, ClientError> {
        let (id, bytes) = match self.find(name).await? {
            Found::Shown(shown) => {
                if let Some(p) = &shown.problem {
                    return Err(ClientError::Other(format!(
                        "image {name} cannot be used: {p}"
                    )));
                }
                let bytes = self.manifest(&shown.id).await;
                (shown.id, bytes)
            }
            Found::ByPath { id, manifest } => (id, manifest),
            Found::Missing { url } => {
                return Err(ClientError::Other(format!(
                    "no image {name:?} at {} ({url}: 404; a label needs a Paddock image store \
                     server, a plain static store serves full image ids only)",
                    self.base
                )));
            }
        };
        // The manifest is held in memory until its blobs are in: a store never has a manifest
        // whose blobs are missing.
        let Some(bytes) = bytes? else {
            return Err(ClientError::Other(format!(
                "no image {id} at {} ({}: 404)",
                self.base,
                self.url(&image_path(&id))
            )));
        };
        let counter = AtomicU64::new(0);
        let m = paddock_core::manifest::ImageManifest::parse(&bytes)
            .map_err(|e| ClientError::Other(e.to_string()))?;
        for spec in m.blobs.values() {
            let d: ImageId = spec
                .sha256_digest
                .parse()
                .map_err(|_| ClientError::Other("bad digest in manifest".into()))?;
            if crate::regular::exists(dir, &blob_path(&d)) {
                continue;
            }
            crate::mirror::fetch_file(
                &self.http,
                &self.base,
                &StorePath::Blob(d),
                dir,
                &counter,
                crate::mirror::Durability::Fsync,
            )
            .await
            .map_err(ClientError::Other)?;
        }
        let _ = std::fs::remove_dir(dir.join(".partial"));
        let store = LocalStore::new(dir);
        store.put_manifest(&bytes)?;
        store.verified_image(&id)?;
        Ok(id)
    }
}

/// Reads an answer's body, refusing one larger than `max` bytes without reading past it
/// (announced by its length, or found while reading).
async fn read_bounded(
    url: &str,
    mut r: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ClientError> {
    let too_large = || ClientError::TooLarge {
        url: url.to_string(),
        max,
    };
    if r.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| ClientError::Read {
        url: url.to_string(),
        message: transfer_text(e),
    })? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
