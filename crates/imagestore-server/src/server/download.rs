//! Serving store files: GET and HEAD of `images/…`, `blobs/…` and `all.txt`.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    RANGE,
};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Srv;
use super::error::{ApiError, Internal};
use paddock_imagestore::paths::StorePath;
use paddock_imagestore::regular::OpenError;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Parses a single `bytes=` range against a length: `Ok(None)` means the whole file
/// (no header, or one this server does not serve partially, like several ranges).
pub(crate) fn parse_range(h: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
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
        let (mut file, meta) = paddock_imagestore::regular::open(&root, &relative)?;
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

/// Answers a GET or HEAD of a store file: conditional (`If-None-Match` against the `ETag`),
/// one byte range at most, small files from memory and large ones streamed.
pub(crate) async fn get_file(
    srv: &Srv,
    path: &StorePath,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let (opened, meta) = open_file(srv.root.to_path_buf(), path.relative()).await?;
    let len = meta.len();
    let (etag, mut h) = file_headers(path, &meta);
    if not_modified(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    let range = parse_range(headers.get(RANGE).and_then(|v| v.to_str().ok()), len);
    let (status, start, count) = match range {
        Ok(None) => (StatusCode::OK, 0, len),
        Ok(Some((s, e))) => {
            put_header(&mut h, CONTENT_RANGE, &format!("bytes {s}-{e}/{len}"));
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
        Err(()) => {
            put_header(&mut h, CONTENT_RANGE, &format!("bytes */{len}"));
            return Err(ApiError::RangeNotSatisfiable(h));
        }
    };
    put_header(&mut h, CONTENT_LENGTH, &count.to_string());
    if head {
        return Ok((status, h).into_response());
    }
    let body = match opened {
        Opened::Small(bytes) => {
            // The file may have been read after a concurrent change of length: never send
            // more or less than Content-Length says.
            let end = start.saturating_add(count);
            if end > bytes.len() as u64 {
                return Err(ApiError::internal(Internal::Other(
                    "file changed while read",
                )));
            }
            Body::from(bytes.slice(start as usize..end as usize))
        }
        Opened::Large(f) => Body::from_stream(read_range(f, start, count)),
    };
    Ok((status, h, body).into_response())
}

fn put_header(h: &mut HeaderMap, k: HeaderName, v: &str) {
    if let Ok(v) = v.parse() {
        h.insert(k, v);
    }
}

/// The `ETag` of a store file and the headers of every answer about it: images and blobs are
/// named by their digest (immutable), `all.txt` by its length and time.
fn file_headers(path: &StorePath, meta: &std::fs::Metadata) -> (String, HeaderMap) {
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
    put_header(&mut h, ETAG, &etag);
    put_header(&mut h, CACHE_CONTROL, cache);
    put_header(&mut h, CONTENT_TYPE, ctype);
    put_header(&mut h, ACCEPT_RANGES, "bytes");
    (etag, h)
}

/// Whether the request's `If-None-Match` names `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
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
