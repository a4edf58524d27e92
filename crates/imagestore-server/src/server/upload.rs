//! Uploads: `PUT` of a blob or a manifest, authenticated by a push token, verified before it
//! becomes visible, written through [`paddock_imagestore::staged`] (every write error seen, the file on
//! disk checked before the rename). A full disk is answered 507, nothing stored.

use std::path::Path;

use axum::body::Body;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use paddock_core::ImageId;
use paddock_core::manifest::{ImageManifest, blob_path, sha256_id};
use tracing::Instrument;

use super::Srv;
use super::error::{ApiError, text};
use super::index_task::INDEX_WAIT;
use paddock_imagestore::local::StoreError;
use paddock_imagestore::paths::StorePath;
use paddock_imagestore::staged::{Durability, StagedFile, StagedWriter};

/// Largest manifest accepted.
const MAX_MANIFEST: usize = 1024 * 1024;

/// A `PUT` of a store path.
pub(crate) async fn put(
    srv: &Srv,
    path: &StorePath,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let who = authorize(srv, headers)?;
    let span = tracing::info_span!("put", path = %path.index_line(), token = %who);
    async {
        match path {
            StorePath::AllTxt => Err(ApiError::MethodNotAllowed(
                "all.txt is maintained by the server",
            )),
            StorePath::Blob(d) => put_blob(srv, d, body).await,
            StorePath::Image(id) => put_manifest(srv, id, body).await,
        }
    }
    .instrument(span)
    .await
}

/// The name of the push token the request carries (`Authorization: Bearer …`), if valid.
fn authorize(srv: &Srv, headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| srv.tokens.check(t.trim()))
        .ok_or(ApiError::Unauthorized)
}

async fn put_blob(srv: &Srv, digest: &ImageId, body: Body) -> Result<Response, ApiError> {
    let (file, len) = receive_blob(srv, body).await?;
    let actual = file.digest();
    if &actual != digest {
        tracing::warn!(%actual, "blob upload refused: digest mismatch");
        return Err(ApiError::BadRequest(format!(
            "the content hashes to {actual}, not {digest}; nothing was stored"
        )));
    }
    let (root, rel, d) = (srv.root.clone(), blob_path(digest), digest.clone());
    let stored = tokio::task::spawn_blocking(move || publish_blob(file, &root, &rel, &d))
        .await?
        .map_err(ApiError::store_failed)?;
    if !stored {
        return Ok(text(StatusCode::OK, "already stored"));
    }
    tracing::info!(bytes = len, "blob stored");
    srv.index.request();
    Ok(text(StatusCode::CREATED, "stored"))
}

/// Writes the body to a staged file (hashed while written), at most the server's upload limit.
/// Returns the file (not yet published) and its length.
async fn receive_blob(srv: &Srv, body: Body) -> Result<(StagedFile, u64), ApiError> {
    let store = srv.store.clone();
    let writer = StagedWriter::spawn(move || store.staged("upload"));
    let mut len: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                drop(writer.finish().await);
                return Err(ApiError::BadRequest(format!("reading the upload: {e}")));
            }
        };
        len += chunk.len() as u64;
        if len > srv.max_upload {
            drop(writer.finish().await);
            return Err(ApiError::PayloadTooLarge(format!(
                "blobs are limited to {} bytes",
                srv.max_upload
            )));
        }
        if !writer.send(chunk).await {
            // The writer stopped on an error: `finish` says which.
            break;
        }
    }
    let file = writer.finish().await.map_err(ApiError::store_failed)?;
    Ok((file, len))
}

/// Renames a whole, verified upload into place, unless the blob is already stored (a regular
/// file: a link there is replaced). Returns whether it was stored now.
fn publish_blob(
    file: StagedFile,
    root: &Path,
    rel: &Path,
    digest: &ImageId,
) -> Result<bool, StoreError> {
    if let Ok((f, _)) = paddock_imagestore::regular::open(root, rel) {
        // Already there: refresh its time so a garbage collection about to remove it as
        // unreferenced waits another grace period (a manifest naming it may follow).
        let _ = f.set_modified(std::time::SystemTime::now());
        return Ok(false);
    }
    file.publish(root, rel, Some(digest), Durability::Fsync)?;
    Ok(true)
}

async fn put_manifest(srv: &Srv, id: &ImageId, body: Body) -> Result<Response, ApiError> {
    let (bytes, manifest) = receive_manifest(id, body).await?;
    check_blobs_present(srv, &manifest)?;
    let store = srv.store.clone();
    tokio::task::spawn_blocking(move || store.put_manifest(&bytes))
        .await?
        .map_err(|e| match e {
            e @ StoreError::Missing { .. } => ApiError::Conflict(e.to_string()),
            e => ApiError::store_failed(e),
        })?;
    tracing::info!(label = %manifest.label, revision = manifest.revision, "image stored");
    // Read-your-writes: a mirror started once the push returns sees the image.
    if !srv.index.sync(INDEX_WAIT).await {
        tracing::error!(
            wait_ms = INDEX_WAIT.as_millis() as u64,
            "image stored, but all.txt does not list it yet (rewriting it failed or is slow)"
        );
        return Ok(text(
            StatusCode::CREATED,
            "stored; all.txt does not list it yet (the server logged why)",
        ));
    }
    Ok(text(StatusCode::CREATED, "stored"))
}

/// Reads a manifest body (at most [`MAX_MANIFEST`] bytes), checks that it hashes to `id` and
/// parses it.
async fn receive_manifest(
    id: &ImageId,
    body: Body,
) -> Result<(bytes::Bytes, ImageManifest), ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!("manifests are limited to {MAX_MANIFEST} bytes"))
        })?;
    let actual = sha256_id(&bytes);
    if &actual != id {
        return Err(ApiError::BadRequest(format!(
            "the manifest hashes to {actual}, not {id}; nothing was stored"
        )));
    }
    let manifest = ImageManifest::parse(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("manifest refused: {e}")))?;
    Ok((bytes, manifest))
}

/// Whether the blob `digest` is stored (a regular file) with `size` bytes.
fn blob_stored(srv: &Srv, digest: &str, size: u64) -> bool {
    digest
        .parse::<ImageId>()
        .ok()
        .and_then(|d| paddock_imagestore::regular::open(&srv.root, &blob_path(&d)).ok())
        .is_some_and(|(_, m)| m.len() == size)
}

/// Refuses (409) a manifest whose blobs are not all stored with the sizes it gives.
fn check_blobs_present(srv: &Srv, manifest: &ImageManifest) -> Result<(), ApiError> {
    let missing: Vec<String> = manifest
        .blobs
        .iter()
        .filter(|(_, spec)| !blob_stored(srv, &spec.sha256_digest, spec.size))
        .map(|(name, spec)| format!("{name} ({})", spec.sha256_digest))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "upload these blobs first (missing, or of another size): {}",
        missing.join(", ")
    )))
}
