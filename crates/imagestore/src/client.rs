//! A client for a store server: push an image from a local store, list, show and pull.

use std::path::Path;
use std::sync::atomic::AtomicU64;

use paddock_core::ImageId;
use paddock_core::manifest::{blob_path, image_path, sha256_id};

use crate::local::LocalStore;
use crate::paths::StorePath;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    /// The server answered 404.
    #[error("{url}: not found (HTTP 404)")]
    NotFound { url: String },
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

/// A store server at `base` (`http://HOST:PORT`), with an optional push token.
#[derive(Debug, Clone)]
pub struct StoreClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl StoreClient {
    pub fn new(base: &str, token: Option<String>) -> StoreClient {
        StoreClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: crate::mirror::http_client(),
        }
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

    async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| http_err(&url, transfer_text(e)))?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(ClientError::NotFound { url });
        }
        if !r.status().is_success() {
            let s = r.status();
            let text = r.text().await.unwrap_or_default();
            return Err(http_err(&url, format!("HTTP {s}: {}", text.trim())));
        }
        r.json().await.map_err(|e| http_err(&url, transfer_text(e)))
    }

    /// `GET /api/v1/images`.
    pub async fn list(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/api/v1/images").await
    }

    /// `GET /api/v1/images/NAME` (id, label or label@revision), with the manifest.
    pub async fn show(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        self.get_json(&format!("/api/v1/images/{name}")).await
    }

    /// Downloads image `name` (id, label or label@revision) into the store at `dir`, every
    /// file verified. Returns the image id. A full id that `/api/v1/images/` does not know is
    /// fetched from its store path: a plain static Treadmill store has no API, only files.
    pub async fn pull(&self, name: &str, dir: &Path) -> Result<ImageId, ClientError> {
        let id: ImageId = match self.show(name).await {
            Ok(shown) => {
                if let Some(p) = shown["problem"].as_str() {
                    return Err(ClientError::Other(format!(
                        "image {name} cannot be used: {p}"
                    )));
                }
                shown["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| ClientError::Other("the server named no image id".into()))?
            }
            Err(ClientError::NotFound { .. }) if name.parse::<ImageId>().is_ok() => name
                .parse()
                .map_err(|_| ClientError::Other(name.to_string()))?,
            Err(ClientError::NotFound { url }) => {
                return Err(ClientError::Other(format!(
                    "no image {name:?} at {} ({url}: 404; a label needs a Paddock image store \
                     server, a plain static store serves full image ids only)",
                    self.base
                )));
            }
            Err(e) => return Err(e),
        };
        let counter = AtomicU64::new(0);
        // The manifest is held in memory until its blobs are in: a store never has a manifest
        // whose blobs are missing.
        let url = self.url(&image_path(&id));
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| http_err(&url, transfer_text(e)))?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(ClientError::Other(format!(
                "no image {id} at {} ({url}: 404)",
                self.base
            )));
        }
        if !r.status().is_success() {
            return Err(http_err(&url, format!("HTTP {}", r.status())));
        }
        let bytes = r
            .bytes()
            .await
            .map_err(|e| http_err(&url, transfer_text(e)))?;
        let actual = sha256_id(&bytes);
        if actual != id {
            return Err(http_err(
                &url,
                format!("the manifest hashes to {actual}, not {id}"),
            ));
        }
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
