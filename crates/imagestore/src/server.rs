//! The store's HTTP server: serves `images/…`, `blobs/…` and `all.txt` (GET, HEAD, byte
//! ranges, `ETag` = the digest, immutable caching, streamed bodies), takes authenticated
//! uploads with `PUT` on the same paths (verified before they become visible), lists images
//! under `/api/v1/images`, and keeps `all.txt` current ([`IndexHandle`]: within
//! [`RESCAN`] + the time of a walk of files published behind its back, before a manifest
//! PUT returns for uploads).
//!
//! Only regular files reached without a link are served ([`crate::regular`]): a link at a store
//! path is answered 404 like a missing file. An upload is written through
//! [`crate::staged`]: every write error is seen and the file on disk checked before it is
//! renamed into place; a full disk is answered 507 (Insufficient Storage), nothing stored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{
    ACCEPT_RANGES, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, RANGE, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use paddock_core::manifest::{ImageManifest, blob_path, sha256_id};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::catalog;
use crate::local::{LocalStore, StoreError};
use crate::paths::{PathError, StorePath};
use crate::regular::OpenError;
use crate::staged::{Durability, StagedFile, StagedWriter};
use crate::tokens::TokenCache;

/// Largest manifest accepted.
const MAX_MANIFEST: usize = 1024 * 1024;
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

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

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], m).into_response()
}

/// The answer to an upload that could not be stored: 507 when the disk is full (the client may
/// retry once space is freed), 500 otherwise (the cause is logged, not sent). Nothing was
/// stored either way.
fn store_failed(e: &StoreError) -> Response {
    if e.is_disk_full() {
        tracing::error!(error = %e, "upload refused: no space left on the store's disk");
        return text(
            StatusCode::INSUFFICIENT_STORAGE,
            "no space left on the store's disk; nothing was stored",
        );
    }
    tracing::error!(error = %e, "upload failed");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (logged); nothing was stored",
    )
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
    std::fs::create_dir_all(settings.root.join("tmp"))?;
    crate::index::write(&settings.root)?;
    // Header read and idle timeouts, a connection limit, and TCP_NODELAY (headers and body go
    // out in separate writes; with Nagle's algorithm and the client's delayed ACK every small
    // response would wait ~40 ms).
    paddock_http::serve(
        listener,
        app(&settings.root, settings.max_upload_bytes),
        paddock_http::Limits::default(),
        shutdown,
    )
    .await
}

/// How often the index task walks the store when nothing asked it to: files published behind
/// the server's back (the book's `rsync -r -L result/ STORE/`, an operator's `rm`) reach
/// `all.txt` within this period plus one walk.
pub const RESCAN: Duration = Duration::from_secs(1);

/// How long a manifest PUT waits for the `all.txt` rewrite that includes it.
const INDEX_WAIT: Duration = Duration::from_secs(10);

/// The handle of the task that keeps `all.txt` current.
///
/// The task's rules: it walks the store (directories only, no file is read) when asked, or
/// every [`RESCAN`] when not, and rewrites `all.txt` atomically whenever the walk's lines
/// differ from what it last wrote. A request is numbered; the task reads the newest number
/// *before* it walks, so once [`IndexHandle::sync`]'s number is done, every file published
/// before the request is in `all.txt` (read-your-writes for uploads). A failed walk or
/// write is logged and retried at the next period; it completes no request.
#[derive(Debug, Clone)]
struct IndexHandle {
    inner: Arc<IndexInner>,
}

#[derive(Debug)]
struct IndexInner {
    requested: std::sync::atomic::AtomicU64,
    wake: Notify,
    done: tokio::sync::watch::Sender<u64>,
}

impl IndexHandle {
    fn new() -> IndexHandle {
        IndexHandle {
            inner: Arc::new(IndexInner {
                requested: std::sync::atomic::AtomicU64::new(0),
                wake: Notify::new(),
                done: tokio::sync::watch::channel(0).0,
            }),
        }
    }

    /// Asks for a rewrite that sees every file published so far; returns its number.
    fn request(&self) -> u64 {
        let n = self
            .inner
            .requested
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        self.inner.wake.notify_one();
        n
    }

    /// Asks for a rewrite and waits until `all.txt` lists every file published before this
    /// call, at most `limit`. Returns whether it does.
    async fn sync(&self, limit: Duration) -> bool {
        let mut rx = self.inner.done.subscribe();
        let n = self.request();
        matches!(
            tokio::time::timeout(limit, rx.wait_for(|done| *done >= n)).await,
            Ok(Ok(_))
        )
    }
}

async fn index_task(root: Arc<PathBuf>, index: IndexHandle) {
    let mut written: Option<Vec<String>> = None;
    loop {
        tokio::select! {
            _ = index.inner.wake.notified() => {}
            _ = tokio::time::sleep(RESCAN) => {}
        }
        let n = index
            .inner
            .requested
            .load(std::sync::atomic::Ordering::SeqCst);
        let r = root.clone();
        let last = written.take();
        let result = tokio::task::spawn_blocking(move || {
            let lines = crate::index::list(&r)?;
            if last.as_ref() != Some(&lines) {
                crate::index::write_lines(&r, lines.clone())?;
                tracing::debug!(files = lines.len(), "all.txt rewritten");
            }
            Ok::<_, std::io::Error>(lines)
        })
        .await;
        match result {
            Ok(Ok(lines)) => {
                written = Some(lines);
                index.inner.done.send_modify(|d| *d = (*d).max(n));
            }
            Ok(Err(e)) => tracing::error!(error = %e, "rewriting all.txt"),
            Err(e) => tracing::error!(error = %e, "rewriting all.txt"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    label: Option<String>,
}

async fn list_images(State(srv): State<Srv>, Query(q): Query<ListQuery>) -> Response {
    let store = srv.store.clone();
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok(Ok(list)) => {
            let images: Vec<_> = list
                .iter()
                .filter(|i| q.label.as_ref().is_none_or(|l| &i.label == l))
                .map(catalog::summary_json)
                .collect();
            axum::Json(serde_json::json!({ "images": images })).into_response()
        }
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// One image by id, label (newest revision) or `label@revision`, with its manifest as stored
/// (its TOML as JSON: no key dropped, none added); an image with a problem is shown with it.
async fn show_image(
    State(srv): State<Srv>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let store = srv.store.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let list = store.list().map_err(|e| e.to_string())?;
        let Some(s) = catalog::resolve(&list, &name).cloned() else {
            return Ok(None);
        };
        if let Some(problem) = &s.problem {
            tracing::warn!(image.id = %s.id, %problem, "asked for a stored image that cannot be used");
        }
        let bytes = crate::regular::read(store.root(), &paddock_core::manifest::image_path(&s.id))
            .map_err(|e| e.to_string())?;
        Ok(Some((s, catalog::manifest_json(&bytes))))
    })
    .await;
    match found {
        Ok(Ok(Some((s, m)))) => {
            let mut v = catalog::summary_json(&s);
            if let Some(m) = m {
                v["manifest"] = m;
            }
            axum::Json(v).into_response()
        }
        Ok(Ok(None)) => text(StatusCode::NOT_FOUND, "no such image"),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn files(
    State(srv): State<Srv>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = match StorePath::parse(uri.path()) {
        Ok(p) => p,
        Err(PathError::NotFound) => return text(StatusCode::NOT_FOUND, "not found"),
        Err(PathError::Malformed(m)) => return text(StatusCode::BAD_REQUEST, m),
    };
    match method {
        Method::GET | Method::HEAD => get_file(&srv, &path, &headers, method == Method::HEAD).await,
        Method::PUT => {
            let token = headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let Some(who) = token.and_then(|t| srv.tokens.check(t.trim())) else {
                let mut r = text(StatusCode::UNAUTHORIZED, "a push token is required");
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, "Bearer".parse().expect("static header"));
                return r;
            };
            let span = tracing::info_span!("put", path = %path.index_line(), token = %who);
            let _g = span.enter();
            match &path {
                StorePath::AllTxt => text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "all.txt is maintained by the server",
                ),
                StorePath::Blob(d) => put_blob(&srv, d, body).await,
                StorePath::Image(id) => put_manifest(&srv, id, body).await,
            }
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD or PUT"),
    }
}

/// Parses a single `bytes=` range against a length: `Ok(None)` means the whole file
/// (no header, or one this server does not serve partially, like several ranges).
fn parse_range(h: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (s, "") => (s.parse().map_err(|_| ())?, len.saturating_sub(1)),
        (s, e) => {
            let s: u64 = s.parse().map_err(|_| ())?;
            let e: u64 = e.parse().map_err(|_| ())?;
            if e < s {
                return Err(());
            }
            (s, e.min(len.saturating_sub(1)))
        }
    };
    if len == 0 || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Files up to this size are read whole in the same blocking hop that opens them.
const SMALL_BODY: u64 = 64 * 1024;

/// An opened store file: small ones already read.
enum Opened {
    Small(bytes::Bytes),
    Large(std::fs::File),
}

/// Opens (a regular file only, never through a link), stats and (when small) reads a file in
/// one blocking hop.
async fn open_file(
    root: PathBuf,
    relative: PathBuf,
) -> Result<(Opened, std::fs::Metadata), OpenError> {
    tokio::task::spawn_blocking(move || {
        let (mut file, meta) = crate::regular::open(&root, &relative)?;
        let read_err = |source| OpenError::Io {
            path: root.join(&relative),
            source,
        };
        if meta.len() <= SMALL_BODY {
            let mut buf = Vec::with_capacity(meta.len() as usize);
            std::io::Read::read_to_end(&mut file, &mut buf).map_err(read_err)?;
            return Ok((Opened::Small(buf.into()), meta));
        }
        Ok((Opened::Large(file), meta))
    })
    .await
    .map_err(|e| OpenError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other(e),
    })?
}

async fn get_file(srv: &Srv, path: &StorePath, headers: &HeaderMap, head: bool) -> Response {
    let (opened, meta) = match open_file(srv.root.to_path_buf(), path.relative()).await {
        Ok(f) => f,
        Err(OpenError::NotFound(_)) => return text(StatusCode::NOT_FOUND, "not found"),
        Err(OpenError::NotRegular(p)) => {
            // Not part of the store (all.txt never lists it): as if it were not there.
            tracing::warn!(path = %p.display(), "refused to serve a link or non-regular file");
            return text(StatusCode::NOT_FOUND, "not found");
        }
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let len = meta.len();
    let (etag, cache, ctype) = match path {
        StorePath::Image(d) => (format!("\"{d}\""), IMMUTABLE, "application/toml"),
        StorePath::Blob(d) => (format!("\"{d}\""), IMMUTABLE, "application/octet-stream"),
        StorePath::AllTxt => {
            let m = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            (
                format!("W/\"{len:x}-{m:x}\""),
                "no-cache",
                "text/plain; charset=utf-8",
            )
        }
    };
    let mut h = HeaderMap::new();
    let put = |h: &mut HeaderMap, k, v: &str| {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    };
    put(&mut h, ETAG, &etag);
    put(&mut h, CACHE_CONTROL, cache);
    put(&mut h, CONTENT_TYPE, ctype);
    put(&mut h, ACCEPT_RANGES, "bytes");
    if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    let range = parse_range(headers.get(RANGE).and_then(|v| v.to_str().ok()), len);
    let (status, start, count) = match range {
        Ok(None) => (StatusCode::OK, 0, len),
        Ok(Some((s, e))) => {
            put(&mut h, CONTENT_RANGE, &format!("bytes {s}-{e}/{len}"));
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
        Err(()) => {
            put(&mut h, CONTENT_RANGE, &format!("bytes */{len}"));
            return (StatusCode::RANGE_NOT_SATISFIABLE, h).into_response();
        }
    };
    put(&mut h, CONTENT_LENGTH, &count.to_string());
    if head {
        return (status, h).into_response();
    }
    let file = match opened {
        Opened::Small(bytes) => {
            // The file may have been read after a concurrent change of length: never send
            // more or less than Content-Length says.
            let end = start.saturating_add(count);
            if end > bytes.len() as u64 {
                return text(StatusCode::INTERNAL_SERVER_ERROR, "file changed while read");
            }
            return (
                status,
                h,
                Body::from(bytes.slice(start as usize..end as usize)),
            )
                .into_response();
        }
        Opened::Large(f) => f,
    };
    (status, h, Body::from_stream(read_range(file, start, count))).into_response()
}

/// Streams `count` bytes of `file` from `start`: one blocking thread reads 1 MiB at a time
/// ahead of the socket (a few chunks in flight), instead of a thread hop per read.
fn read_range(
    mut file: std::fs::File,
    start: u64,
    count: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    const CHUNK: usize = 1024 * 1024;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek};
        if start > 0
            && let Err(e) = file.seek(std::io::SeekFrom::Start(start))
        {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = count;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let mut buf = bytes::BytesMut::zeroed(want);
            let n = match file.read(&mut buf) {
                Ok(0) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file shorter than its length",
                    );
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            buf.truncate(n);
            left -= n as u64;
            // The client went away: stop reading.
            if tx.blocking_send(Ok(buf.freeze())).is_err() {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

async fn put_blob(srv: &Srv, digest: &paddock_core::ImageId, body: Body) -> Response {
    let store = srv.store.clone();
    let writer = StagedWriter::spawn(move || store.staged("upload"));
    let mut len: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                drop(writer.finish().await);
                return text(StatusCode::BAD_REQUEST, format!("reading the upload: {e}"));
            }
        };
        len += chunk.len() as u64;
        if len > srv.max_upload {
            drop(writer.finish().await);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("blobs are limited to {} bytes", srv.max_upload),
            );
        }
        if !writer.send(chunk).await {
            // The writer stopped on an error: `finish` says which.
            break;
        }
    }
    let file = match writer.finish().await {
        Ok(f) => f,
        Err(e) => return store_failed(&e),
    };
    let actual = file.digest();
    if &actual != digest {
        tracing::warn!(%actual, "blob upload refused: digest mismatch");
        return text(
            StatusCode::BAD_REQUEST,
            format!("the content hashes to {actual}, not {digest}; nothing was stored"),
        );
    }
    let (root, rel, d) = (srv.root.clone(), blob_path(digest), digest.clone());
    let published = tokio::task::spawn_blocking(move || publish_blob(file, &root, &rel, &d)).await;
    match published {
        Ok(Ok(true)) => {
            tracing::info!(bytes = len, "blob stored");
            srv.index.request();
            text(StatusCode::CREATED, "stored")
        }
        Ok(Ok(false)) => text(StatusCode::OK, "already stored"),
        Ok(Err(e)) => store_failed(&e),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Renames a whole, verified upload into place, unless the blob is already stored (a regular
/// file: a link there is replaced). Returns whether it was stored now.
fn publish_blob(
    file: StagedFile,
    root: &Path,
    rel: &Path,
    digest: &paddock_core::ImageId,
) -> Result<bool, StoreError> {
    if let Ok((f, _)) = crate::regular::open(root, rel) {
        // Already there: refresh its time so a garbage collection about to remove it as
        // unreferenced waits another grace period (a manifest naming it may follow).
        let _ = f.set_modified(std::time::SystemTime::now());
        return Ok(false);
    }
    file.publish(root, rel, Some(digest), Durability::Fsync)?;
    Ok(true)
}

async fn put_manifest(srv: &Srv, id: &paddock_core::ImageId, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_MANIFEST).await {
        Ok(b) => b,
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("manifests are limited to {MAX_MANIFEST} bytes"),
            );
        }
    };
    let actual = sha256_id(&bytes);
    if &actual != id {
        return text(
            StatusCode::BAD_REQUEST,
            format!("the manifest hashes to {actual}, not {id}; nothing was stored"),
        );
    }
    let manifest = match ImageManifest::parse(&bytes) {
        Ok(m) => m,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("manifest refused: {e}")),
    };
    let mut missing = Vec::new();
    for (name, spec) in &manifest.blobs {
        let ok = spec
            .sha256_digest
            .parse::<paddock_core::ImageId>()
            .ok()
            .and_then(|d| crate::regular::open(&srv.root, &blob_path(&d)).ok())
            .is_some_and(|(_, m)| m.len() == spec.size);
        if !ok {
            missing.push(format!("{name} ({})", spec.sha256_digest));
        }
    }
    if !missing.is_empty() {
        return text(
            StatusCode::CONFLICT,
            format!(
                "upload these blobs first (missing, or of another size): {}",
                missing.join(", ")
            ),
        );
    }
    let store = srv.store.clone();
    match tokio::task::spawn_blocking(move || store.put_manifest(&bytes)).await {
        Ok(Ok(_)) => {
            tracing::info!(label = %manifest.label, revision = manifest.revision, "image stored");
            // Read-your-writes: a mirror started once the push returns sees the image.
            if !srv.index.sync(INDEX_WAIT).await {
                tracing::error!(
                    wait_ms = INDEX_WAIT.as_millis() as u64,
                    "image stored, but all.txt does not list it yet (rewriting it failed or is slow)"
                );
                return text(
                    StatusCode::CREATED,
                    "stored; all.txt does not list it yet (the server logged why)",
                );
            }
            text(StatusCode::CREATED, "stored")
        }
        Ok(Err(e @ StoreError::Missing { .. })) => text(StatusCode::CONFLICT, e.to_string()),
        Ok(Err(e)) => store_failed(&e),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(parse_range(Some("bytes=4-"), 10), Ok(Some((4, 9))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=x-2"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Err(()));
    }
}
