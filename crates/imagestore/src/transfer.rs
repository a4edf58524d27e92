//! Whole images between a local store and a store server, over the store client of
//! `paddock_client`: [`push`] uploads an image (the blobs the server lacks, then its
//! manifest), [`pull`] downloads one into a store directory with every file verified.

use std::path::Path;
use std::sync::atomic::AtomicU64;

use paddock_client::store::{Found, StoreApiError, StoreClient};
use paddock_core::ImageId;
use paddock_core::manifest::{blob_path, image_path};

use crate::local::LocalStore;
use crate::mirror::FetchError;
use crate::paths::StorePath;

/// Why a push or a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Api(#[from] StoreApiError),
    #[error(transparent)]
    Store(#[from] crate::local::StoreError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Other(String),
}

/// Uploads image `id` of `store`: its blobs (those the server lacks), then its manifest.
/// Returns the bytes uploaded.
pub async fn push(
    client: &StoreClient,
    store: &LocalStore,
    id: &ImageId,
) -> Result<u64, TransferError> {
    let image = store.verified_image(id)?;
    let mut sent = 0;
    for (_, path) in &image.blobs {
        let digest = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<ImageId>().ok())
            .ok_or_else(|| TransferError::Other(format!("bad blob path {}", path.display())))?;
        let rel = blob_path(&digest);
        if client.exists(&rel).await? {
            continue;
        }
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| TransferError::Other(format!("{}: {e}", path.display())))?;
        let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        client.put(&rel, reqwest::Body::wrap_stream(stream)).await?;
        sent += len;
    }
    let manifest = store.root().join(image_path(id));
    let bytes = std::fs::read(&manifest)
        .map_err(|e| TransferError::Other(format!("{}: {e}", manifest.display())))?;
    sent += bytes.len() as u64;
    client.put(&image_path(id), bytes.into()).await?;
    Ok(sent)
}

/// Downloads image `name` (id, label or label@revision) into the store at `dir`, every
/// file verified. Returns the image id. A full id that `/api/v1/images/` does not know is
/// fetched from its store path: a plain static Treadmill store has no API, only files.
pub async fn pull(client: &StoreClient, name: &str, dir: &Path) -> Result<ImageId, TransferError> {
    let (id, bytes) = match client.find(name).await? {
        Found::Shown(shown) => {
            if let Some(p) = &shown.problem {
                return Err(TransferError::Other(format!(
                    "image {name} cannot be used: {p}"
                )));
            }
            let bytes = client.manifest(&shown.id).await;
            (shown.id, bytes)
        }
        Found::ByPath { id, manifest } => (id, manifest),
        Found::Missing { url } => {
            return Err(TransferError::Other(format!(
                "no image {name:?} at {} ({url}: 404; a label needs a Paddock image store \
                 server, a plain static store serves full image ids only)",
                client.base()
            )));
        }
    };
    // The manifest is held in memory until its blobs are in: a store never has a manifest
    // whose blobs are missing.
    let Some(bytes) = bytes? else {
        return Err(TransferError::Other(format!(
            "no image {id} at {} ({}: 404)",
            client.base(),
            client.url(&image_path(&id))
        )));
    };
    let counter = AtomicU64::new(0);
    let m = paddock_core::manifest::ImageManifest::parse(&bytes)
        .map_err(|e| TransferError::Other(e.to_string()))?;
    for spec in m.blobs.values() {
        let d: ImageId = spec
            .sha256_digest
            .parse()
            .map_err(|_| TransferError::Other("bad digest in manifest".into()))?;
        if crate::regular::exists(dir, &blob_path(&d)) {
            continue;
        }
        crate::mirror::try_fetch_file(
            client,
            &StorePath::Blob(d),
            dir,
            &counter,
            crate::mirror::Durability::Fsync,
        )
        .await?;
    }
    let _ = std::fs::remove_dir(dir.join(".partial"));
    let store = LocalStore::new(dir);
    store.put_manifest(&bytes)?;
    store.verified_image(&id)?;
    Ok(id)
}
