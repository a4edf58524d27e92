//! The store's HTTP server: serves `images/…`, `blobs/…` and `all.txt` (GET, HEAD, byte
//! ranges, `ETag` = the digest, immutable caching, streamed bodies), takes authenticated
//! uploads with `PUT` on the same paths (verified before they become visible), lists images
//! under `/api/v1/images`, and keeps `all.txt` current ([`IndexHandle`]: within
//! [`RESCAN`] + the time of a walk of files published behind its back, before a manifest
//! PUT returns for uploads).
//!
//! Only regular files reached without a link are served ([`paddock_imagestore::regular`]): a link at a store
//! path is answered 404 like a missing file. An upload is written through
//! [`paddock_imagestore::staged`]: every write error is seen and the file on disk checked before it is
//! renamed into place; a full disk is answered 507 (Insufficient Storage), nothing stored.
//!
//! Every refusal and failure is an [`error::ApiError`], whose `IntoResponse` alone decides
//! the status and the body: a 5xx body names a request id (also in the `x-request-id` header)
//! and never internal text; the cause is logged with that id. `download.rs` serves files,
//! `upload.rs` takes uploads, `index_task.rs` keeps `all.txt` current.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use paddock_core::api::images::{ImageList, ImageShown};
use serde::Deserialize;

use crate::tokens::TokenCache;
use paddock_imagestore::catalog;
use paddock_imagestore::import::ImageSummary;
use paddock_imagestore::local::LocalStore;
use paddock_imagestore::paths::StorePath;

mod download;
pub mod error;
mod index_task;
mod upload;

use error::{ApiError, Internal};
pub use index_task::RESCAN;
use index_task::{IndexHandle, index_task};

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub root: PathBuf,
    pub listen: SocketAddr,
    /// Largest blob accepted by `PUT`, in bytes.
    pub max_upload_bytes: u64,
}

#[derive(Debug, Clone)]
struct Srv {
    root: Arc<PathBuf>,
    store: LocalStore,
    tokens: Arc<TokenCache>,
    /// Asks the index task to rewrite `all.txt`, and waits for it.
    index: IndexHandle,
    max_upload: u64,
}

/// The router, and the task that keeps `all.txt` current (it runs until the runtime stops).
pub fn app(root: &Path, max_upload_bytes: u64) -> Router {
    let srv = Srv {
        root: Arc::new(root.to_path_buf()),
        store: LocalStore::new(root),
        tokens: Arc::new(TokenCache::new(root)),
        index: IndexHandle::new(),
        max_upload: max_upload_bytes,
    };
    tokio::spawn(index_task(srv.root.clone(), srv.index.clone()));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/images", get(list_images))
        .route("/api/v1/images/{name}", get(show_image))
        .fallback(files)
        .with_state(srv)
        .layer(axum::middleware::from_fn(close_after_refused_upload))
}

/// An upload refused (401, 400, 409, …) may leave its body unread; the connection then cannot
/// carry another request, so the answer says so (`Connection: close`) and the client opens a
/// new one instead of writing its next request into a socket the server is closing.
async fn close_after_refused_upload(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let upload = matches!(
        *req.method(),
        axum::http::Method::PUT | axum::http::Method::POST
    );
    let mut resp = next.run(req).await;
    if upload && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    settings: &ServerSettings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(settings, listener, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given.
pub async fn serve_with(
    settings: &ServerSettings,
    listener: tokio::net::TcpListener,
    tls: Option<paddock_http::TlsServer>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    std::fs::create_dir_all(settings.root.join("tmp"))?;
    paddock_imagestore::index::write(&settings.root)?;
    // Header read and idle timeouts, a connection limit, and TCP_NODELAY (headers and body go
    // out in separate writes; with Nagle's algorithm and the client's delayed ACK every small
    // response would wait ~40 ms).
    paddock_http::serve_with(
        listener,
        app(&settings.root, settings.max_upload_bytes),
        paddock_http::Limits::default(),
        tls,
        shutdown,
    )
    .await
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    label: Option<String>,
}

async fn list_images(
    State(srv): State<Srv>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let store = srv.store.clone();
    let list = tokio::task::spawn_blocking(move || store.list()).await??;
    let images = list
        .into_iter()
        .filter(|i| q.label.as_ref().is_none_or(|l| &i.label == l))
        .collect();
    Ok(axum::Json(ImageList { images }).into_response())
}

/// One image by id, label (newest revision) or `label@revision`, with its manifest as stored
/// (its TOML as JSON: no key dropped, none added); an image with a problem is shown with it.
async fn show_image(
    State(srv): State<Srv>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let store = srv.store.clone();
    let (summary, manifest) =
        tokio::task::spawn_blocking(move || find_image(&store, &name)).await??;
    Ok(axum::Json(ImageShown::new(summary, manifest)).into_response())
}

/// The image `name` resolves to, and its manifest as JSON (`None` when it does not parse).
fn find_image(
    store: &LocalStore,
    name: &str,
) -> Result<(ImageSummary, Option<serde_json::Value>), ApiError> {
    let list = store.list()?;
    let s = catalog::resolve(&list, name)
        .cloned()
        .ok_or(ApiError::NoSuchImage)?;
    if let Some(problem) = &s.problem {
        tracing::warn!(image.id = %s.id, %problem, "asked for a stored image that cannot be used");
    }
    // Listed a moment ago: whatever fails now is internal (not a 404).
    let bytes =
        paddock_imagestore::regular::read(store.root(), &paddock_core::manifest::image_path(&s.id))
            .map_err(|e| ApiError::internal(Internal::Open(e)))?;
    Ok((s, catalog::manifest_json(&bytes)))
}

/// Store files: GET and HEAD for everyone, PUT with a push token.
async fn files(
    State(srv): State<Srv>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = StorePath::parse(uri.path())?;
    match method {
        Method::GET | Method::HEAD => {
            download::get_file(&srv, &path, &headers, method == Method::HEAD).await
        }
        Method::PUT => upload::put(&srv, &path, &headers, body).await,
        _ => Err(ApiError::MethodNotAllowed("GET, HEAD or PUT")),
    }
}
