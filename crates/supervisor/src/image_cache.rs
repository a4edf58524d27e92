//! Where a job's image comes from: local store directories first (verified in place), then
//! store servers (first that answers) through a size-bounded cache.
//!
//! The cache is a store directory of its own (`images/`, `blobs/`). A blob is downloaded once
//! even when several jobs need it at the same moment (a per-digest lock: the second job waits
//! and finds the file), verified against its digest before it is renamed into the cache, and
//! the manifest is written only after its blobs. When the cache grows past its limit, the
//! least recently used blobs go first, never one that a running job holds (a [`Pin`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use paddock_client::{StoreApiError, StoreClient};
use paddock_core::ImageId;
use paddock_core::manifest::{ImageManifest, ManifestError, blob_path, image_path, sha256_id};
use paddock_imagestore::mirror::FetchError;
use paddock_imagestore::paths::StorePath;
use paddock_imagestore::{LocalStore, StoreError, VerifiedImage};

/// Why a job's image could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {id}: no image store is configured")]
    NoStore { id: ImageId },
    #[error("image {id} is in none of the image stores: {stores}")]
    NotInStores { id: ImageId, stores: String },
    /// An image (local, or downloaded whole) that does not verify.
    #[error("image {id} refused: {source}")]
    Refused { id: ImageId, source: StoreError },
    /// No server had the manifest: why, server by server (`BASE: reason`).
    #[error("image {id}: not found in any store ({})", .errors.join("; "))]
    NotFound { id: ImageId, errors: Vec<String> },
    #[error("image {id}: {source}")]
    Manifest { id: ImageId, source: ManifestError },
    #[error("image {id}: bad blob digest {digest}")]
    BadDigest { id: ImageId, digest: String },
    /// No server gave the blob: each server's error, in order.
    #[error("blob {digest}: {}", join(.errors))]
    Blob {
        digest: ImageId,
        errors: Vec<FetchError>,
    },
    #[error("image {id}: the manifest staged in {} changed; fetch it again", .path.display())]
    StagedChanged { id: ImageId, path: PathBuf },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cache(#[from] StoreError),
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn join(errors: &[FetchError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Image sources of a supervisor.
#[derive(Debug)]
pub struct ImageSource {
    stores: Vec<LocalStore>,
    urls: Vec<String>,
    /// The image stores of this supervisor's site in the deployments repo, as the switchboard
    /// last pushed them; tried after `urls` (this supervisor's own configuration).
    site_urls: std::sync::RwLock<Vec<String>>,
    cache: LocalStore,
    max_bytes: u64,
    http: reqwest::Client,
    state: Mutex<CacheState>,
    /// One lock per blob digest being downloaded.
    downloads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Blobs downloaded since start (a figure for tests and logs).
    pub blobs_downloaded: AtomicU64,
}

#[derive(Debug, Default)]
struct CacheState {
    /// Blob digest → last use.
    last_used: HashMap<String, SystemTime>,
    /// Blob digest → running jobs holding it.
    pins: HashMap<String, usize>,
}

/// Keeps an image's blobs in the cache while a job uses them.
#[derive(Debug)]
pub struct Pin {
    source: Arc<ImageSource>,
    blobs: Vec<String>,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut s = self.source.state.lock().unwrap_or_else(|p| p.into_inner());
        for b in &self.blobs {
            if let Some(n) = s.pins.get_mut(b) {
                *n -= 1;
                if *n == 0 {
                    s.pins.remove(b);
                }
            }
        }
    }
}

impl ImageSource {
    pub fn new(
        stores: Vec<PathBuf>,
        urls: Vec<String>,
        cache_dir: &Path,
        max_bytes: u64,
    ) -> ImageSource {
        ImageSource {
            stores: stores.into_iter().map(LocalStore::new).collect(),
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            site_urls: std::sync::RwLock::default(),
            cache: LocalStore::new(cache_dir),
            max_bytes,
            http: paddock_client::transport::http_client(paddock_client::store::CONNECT_TIMEOUT),
            state: Mutex::default(),
            downloads: Mutex::default(),
            blobs_downloaded: AtomicU64::new(0),
        }
    }

    /// Replaces the site's image stores (from a configuration the switchboard pushed); the
    /// next image fetched uses them. Returns whether they changed.
    pub fn set_site_urls(&self, urls: Vec<String>) -> bool {
        let urls: Vec<String> = urls
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        let mut site = self.site_urls.write().unwrap_or_else(|p| p.into_inner());
        let changed = *site != urls;
        *site = urls;
        changed
    }

    /// The image servers to ask, in order: this supervisor's own, then its site's.
    pub fn urls(&self) -> Vec<String> {
        let site = self.site_urls.read().unwrap_or_else(|p| p.into_inner());
        let mut all = self.urls.clone();
        for u in site.iter() {
            if !all.contains(u) {
                all.push(u.clone());
            }
        }
        all
    }

    /// The verified image, and a pin that keeps its cached blobs until dropped.
    pub async fn get(
        self: &Arc<Self>,
        id: &ImageId,
    ) -> Result<(VerifiedImage, Option<Pin>), ImageError> {
        // Local stores, verified in place.
        let stores = self.stores.clone();
        let wanted = id.clone();
        let local = tokio::task::spawn_blocking(move || {
            for s in &stores {
                match s.verified_image(&wanted) {
                    Ok(i) => return Ok(Some(i)),
                    Err(StoreError::Missing { what: "image", .. }) => continue,
                    Err(source) => return Err(ImageError::Refused { id: wanted, source }),
                }
            }
            Ok(None)
        })
        .await??;
        if let Some(i) = local {
            return Ok((i, None));
        }
        if self.urls().is_empty() {
            return Err(if self.stores.is_empty() {
                ImageError::NoStore { id: id.clone() }
            } else {
                ImageError::NotInStores {
                    id: id.clone(),
                    stores: self
                        .stores
                        .iter()
                        .map(|s| s.root().display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            });
        }
        let manifest = self.manifest(id).await?;
        let blobs: Vec<String> = manifest
            .blobs
            .values()
            .map(|b| b.sha256_digest.clone())
            .collect();
        // Pin first, so an eviction running meanwhile leaves these alone.
        let pin = self.pin(&blobs);
        for spec in manifest.blobs.values() {
            let d: ImageId = spec
                .sha256_digest
                .parse()
                .map_err(|_| ImageError::BadDigest {
                    id: id.clone(),
                    digest: spec.sha256_digest.clone(),
                })?;
            self.blob(&d).await?;
        }
        self.publish_manifest(id)?;
        let cache = self.cache.clone();
        let wanted = id.clone();
        let image = tokio::task::spawn_blocking(move || cache.verified_image(&wanted))
            .await?
            .map_err(|source| ImageError::Refused {
                id: id.clone(),
                source,
            })?;
        self.evict();
        Ok((image, Some(pin)))
    }

    fn pin(self: &Arc<Self>, blobs: &[String]) -> Pin {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = SystemTime::now();
        for b in blobs {
            *s.pins.entry(b.clone()).or_default() += 1;
            s.last_used.insert(b.clone(), now);
        }
        Pin {
            source: self.clone(),
            blobs: blobs.to_vec(),
        }
    }

    /// The manifest, from the cache or the first server that has it; written to the cache
    /// only by [`Self::get`] once its blobs are there.
    async fn manifest(&self, id: &ImageId) -> Result<ImageManifest, ImageError> {
        let cached = self.cache.root().join(image_path(id));
        if let Ok(bytes) = std::fs::read(&cached)
            && &sha256_id(&bytes) == id
            && let Ok(m) = ImageManifest::parse(&bytes)
        {
            return Ok(m);
        }
        let mut errors = Vec::new();
        for base in &self.urls() {
            // Read with a bound and verified against the id by the store client.
            let bytes = match self.store(base).manifest(id).await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    errors.push(format!("{base}: HTTP 404 Not Found"));
                    continue;
                }
                Err(StoreApiError::Status { status, .. }) => {
                    errors.push(format!("{base}: HTTP {status}"));
                    continue;
                }
                Err(StoreApiError::WrongManifest { actual, .. }) => {
                    errors.push(format!("{base}: the manifest hashes to {actual}"));
                    continue;
                }
                Err(StoreApiError::Http { message, .. } | StoreApiError::Read { message, .. }) => {
                    errors.push(format!("{base}: {message}"));
                    continue;
                }
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let m = ImageManifest::parse(&bytes).map_err(|source| ImageError::Manifest {
                id: id.clone(),
                source,
            })?;
            // Kept aside until the blobs are in (see `get`).
            let staging = self.cache.root().join(".manifests");
            let io = |path: &Path| {
                let path = path.to_path_buf();
                move |source| ImageError::Io { path, source }
            };
            std::fs::create_dir_all(&staging).map_err(io(&staging))?;
            let staged = staging.join(id.as_str());
            std::fs::write(&staged, &bytes).map_err(io(&staged))?;
            return Ok(m);
        }
        Err(ImageError::NotFound {
            id: id.clone(),
            errors,
        })
    }

    /// The store server at `base`, sharing this source's connections.
    fn store(&self, base: &str) -> StoreClient {
        StoreClient::with_http(base, None, self.http.clone())
    }

    async fn blob(&self, d: &ImageId) -> Result<(), ImageError> {
        let lock = self
            .downloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(d.to_string())
            .or_default()
            .clone();
        let _held = lock.lock().await;
        if self.cache.root().join(blob_path(d)).is_file() {
            return Ok(());
        }
        let counter = AtomicU64::new(0);
        let mut errors = Vec::new();
        for base in &self.urls() {
            match paddock_imagestore::mirror::try_fetch_file(
                &self.store(base),
                &StorePath::Blob(d.clone()),
                self.cache.root(),
                &counter,
                paddock_imagestore::mirror::Durability::Fsync,
            )
            .await
            {
                Ok(_) => {
                    self.blobs_downloaded.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) => errors.push(e),
            }
        }
        Err(ImageError::Blob {
            digest: d.clone(),
            errors,
        })
    }

    /// Publishes a manifest staged by [`Self::manifest`] (its blobs are in now).
    fn publish_manifest(&self, id: &ImageId) -> Result<(), ImageError> {
        let staged = self.cache.root().join(".manifests").join(id.as_str());
        if let Ok(bytes) = std::fs::read(&staged) {
            let _ = std::fs::remove_file(&staged);
            // What was staged is used only if it is still the manifest named `id`.
            if &sha256_id(&bytes) != id {
                return Err(ImageError::StagedChanged {
                    id: id.clone(),
                    path: staged,
                });
            }
            self.cache.put_manifest(&bytes)?;
        }
        Ok(())
    }

    /// Removes least recently used, unpinned blobs (and the manifests naming them) until the
    /// cache fits.
    fn evict(&self) {
        let root = self.cache.root().to_path_buf();
        let Ok(lines) = paddock_imagestore::index::list(&root) else {
            return;
        };
        let mut blobs = Vec::new();
        let mut total = 0u64;
        for l in &lines {
            if let Ok(StorePath::Blob(d)) = StorePath::parse(l) {
                let p = root.join(blob_path(&d));
                let meta = std::fs::metadata(&p).ok();
                let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
                total += size;
                blobs.push((d, p, size, meta.and_then(|m| m.modified().ok())));
            }
        }
        if total <= self.max_bytes {
            return;
        }
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let used = |d: &ImageId, mtime: Option<SystemTime>| {
            s.last_used
                .get(d.as_str())
                .copied()
                .or(mtime)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        blobs.sort_by_key(|(d, _, _, m)| used(d, *m));
        let mut evicted = Vec::new();
        for (d, p, size, _) in blobs {
            if total <= self.max_bytes {
                break;
            }
            if s.pins.contains_key(d.as_str()) {
                continue;
            }
            if std::fs::remove_file(&p).is_ok() {
                total -= size;
                evicted.push(d.to_string());
            }
        }
        drop(s);
        if evicted.is_empty() {
            return;
        }
        tracing::info!(
            blobs = evicted.len(),
            "image cache: evicted least recently used blobs"
        );
        // Manifests whose blobs are gone are removed too: the cache never holds an image it
        // cannot serve.
        for l in &lines {
            if let Ok(StorePath::Image(id)) = StorePath::parse(l) {
                let p = root.join(image_path(&id));
                let refs_gone = std::fs::read(&p)
                    .ok()
                    .and_then(|b| ImageManifest::parse(&b).ok())
                    .is_some_and(|m| m.blobs.values().any(|b| evicted.contains(&b.sha256_digest)));
                if refs_gone {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }
}
