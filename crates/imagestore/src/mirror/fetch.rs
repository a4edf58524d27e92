//! Downloading one store file: resumed from a partial file when an earlier attempt left one,
//! verified against the digest in its name before it is renamed into place.
//!
//! Every file goes through a [`StagedFile`]: a write error (a full disk) fails the download
//! and removes its temporary file; an interrupted transfer keeps its partial file to resume.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use paddock_client::StoreClient;
use paddock_core::ImageId;
use sha2::{Digest, Sha256};

use super::Durability;
use crate::local::StoreError;
use crate::paths::StorePath;
use crate::regular::OpenError;
use crate::staged::{StagedFile, StagedWriter};

/// Files up to this size are received whole and written in one go.
const SMALL_FILE: u64 = 1024 * 1024;

/// Why one file could not be mirrored.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("all.txt is not fetched as a file")]
    NotAFile,
    #[error("{url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url}: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{url}: {source} (transfer interrupted after {received} bytes)")]
    Interrupted {
        url: String,
        source: reqwest::Error,
        received: u64,
    },
    #[error("{url}: content hashes to {actual}, not {expected} ({len} bytes); discarded")]
    Mismatch {
        url: String,
        actual: String,
        expected: ImageId,
        len: u64,
    },
    /// Writing or publishing the download failed (a full disk: the message says so).
    #[error("{url}: {source}")]
    Write { url: String, source: StoreError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A file fetched: the bytes this attempt transferred, and whether it continued a partial
/// download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: u64,
    pub resumed: bool,
}

/// Where one store file comes from and goes to.
struct Target {
    url: String,
    digest: ImageId,
    /// The store directory.
    root: PathBuf,
    /// The file's path under `root`.
    relative: PathBuf,
    /// `root/.partial`, and the partial file of this digest in it.
    partial_dir: PathBuf,
    part: PathBuf,
}

impl Target {
    fn new(store: &StoreClient, path: &StorePath, dir: &Path) -> Result<Target, FetchError> {
        let digest = path.digest().ok_or(FetchError::NotAFile)?.clone();
        let relative = path.relative();
        let partial_dir = dir.join(".partial");
        Ok(Target {
            url: store.url(&relative),
            part: partial_dir.join(format!("{digest}.part")),
            partial_dir,
            relative,
            root: dir.to_path_buf(),
            digest,
        })
    }
}

/// Downloads one store file from `store` into the store at `dir`. `may_have_partial: false`
/// says (from a listing of `.partial/` taken before) that there is no partial file to resume,
/// which saves a blocking hop per file. `on_bytes` is called as bytes arrive.
pub(super) async fn fetch(
    store: &StoreClient,
    path: &StorePath,
    dir: &Path,
    on_bytes: &(dyn Fn(u64) + Sync),
    durability: Durability,
    may_have_partial: bool,
) -> Result<Fetched, FetchError> {
    let target = Target::new(store, path, dir)?;
    let partial = if may_have_partial {
        resume_partial(&target).await?
    } else {
        None
    };
    let have = partial.as_ref().map_or(0, StagedFile::len);
    let mut req = store.file_request(&target.relative);
    if have > 0 {
        req = req.header("range", format!("bytes={have}-"));
    }
    let resp = req.send().await.map_err(|source| FetchError::Http {
        url: target.url.clone(),
        source,
    })?;
    if resp.status() == reqwest::StatusCode::OK
        && resp.content_length().is_some_and(|n| n <= SMALL_FILE)
    {
        return fetch_small(resp, target, partial, on_bytes, durability).await;
    }
    fetch_streamed(resp, target, partial, on_bytes, durability).await
}

/// Opens (and hashes) what an earlier attempt left in `.partial/`, in one blocking hop.
async fn resume_partial(target: &Target) -> Result<Option<StagedFile>, FetchError> {
    let (partial_dir, part) = (target.partial_dir.clone(), target.part.clone());
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&partial_dir).map_err(|source| FetchError::Io {
            path: partial_dir.clone(),
            source,
        })?;
        Ok(StagedFile::resume(part)?)
    })
    .await?
}

fn mismatch(target: &Target, actual: &str, len: u64) -> FetchError {
    FetchError::Mismatch {
        url: target.url.clone(),
        actual: actual.to_string(),
        expected: target.digest.clone(),
        len,
    }
}

/// A small file: taken whole and hashed; only a matching one touches the disk, in one
/// blocking hop. Its temporary file sits next to its final name (a rename within one
/// directory; eight workers creating in one shared directory contend on its lock).
async fn fetch_small(
    resp: reqwest::Response,
    target: Target,
    partial: Option<StagedFile>,
    on_bytes: &(dyn Fn(u64) + Sync),
    durability: Durability,
) -> Result<Fetched, FetchError> {
    let body = resp.bytes().await.map_err(|source| FetchError::Http {
        url: target.url.clone(),
        source,
    })?;
    on_bytes(body.len() as u64);
    let len = body.len() as u64;
    let actual = hex::encode(Sha256::digest(&body));
    if actual != target.digest.as_str() {
        return Err(mismatch(&target, &actual, len));
    }
    tokio::task::spawn_blocking(move || {
        let dest = target.root.join(&target.relative);
        let parent = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|source| FetchError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
        // Not even a temporary file outside the store, through a directory link.
        crate::regular::check_dirs(&target.root, &target.relative)?;
        let tmp = parent.join(format!(".{}.{}.tmp", target.digest, crate::local::unique()));
        let mut f = StagedFile::create(tmp)?;
        f.write(&body)?;
        f.publish(
            &target.root,
            &target.relative,
            Some(&target.digest),
            durability,
        )?;
        // An attempt that stopped half-way earlier leaves nothing to resume.
        if let Some(mut partial) = partial {
            partial.set_keep(false);
        }
        Ok(Fetched {
            bytes: len,
            resumed: false,
        })
    })
    .await?
}

/// A large file (or the rest of one): streamed into the partial file by a blocking writer
/// thread that hashes and writes the chunks as they arrive (no thread hop per chunk), then
/// verified and published in one more hop if the transfer completed.
async fn fetch_streamed(
    resp: reqwest::Response,
    target: Target,
    partial: Option<StagedFile>,
    on_bytes: &(dyn Fn(u64) + Sync),
    durability: Durability,
) -> Result<Fetched, FetchError> {
    let status = resp.status();
    let have = partial.as_ref().map_or(0, StagedFile::len);
    let append = match status {
        reqwest::StatusCode::PARTIAL_CONTENT if have > 0 => true,
        // The partial file is already whole (or longer than the file): check it as it is.
        reqwest::StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => true,
        s if s.is_success() => false,
        s => {
            return Err(FetchError::Status {
                url: target.url,
                status: s,
            });
        }
    };
    let resumed = have > 0 && status == reqwest::StatusCode::PARTIAL_CONTENT;
    // Where this attempt starts in the file.
    let start = if append { have } else { 0 };
    let writer = partial_writer(&target, partial, append);
    let interrupted = if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        None
    } else {
        receive(resp, &writer, on_bytes).await
    };
    // A write error (the disk is full) removes the partial file: its content is not known.
    let file = writer.finish().await.map_err(|source| FetchError::Write {
        url: target.url.clone(),
        source,
    })?;
    let total = file.len();
    if let Some(source) = interrupted {
        // Interrupted: the partial file stays for the next attempt to resume.
        drop(file);
        return Err(FetchError::Interrupted {
            url: target.url,
            source,
            received: total,
        });
    }
    tokio::task::spawn_blocking(move || publish_verified(file, &target, durability)).await??;
    Ok(Fetched {
        bytes: total - start,
        resumed,
    })
}

/// The writer of the partial file: appending to what an earlier attempt left, or a new one
/// (replacing it: the server sent the whole file).
fn partial_writer(target: &Target, partial: Option<StagedFile>, append: bool) -> StagedWriter {
    let (partial_dir, part) = (target.partial_dir.clone(), target.part.clone());
    StagedWriter::spawn(move || match partial {
        Some(f) if append => Ok(f),
        _ => {
            std::fs::create_dir_all(&partial_dir).map_err(|source| StoreError::Io {
                path: partial_dir.clone(),
                source,
            })?;
            let mut f = StagedFile::create(part)?;
            f.set_keep(true);
            Ok(f)
        }
    })
}

/// Sends the body's chunks to the writer until it ends (`None`), the writer stops on an error
/// (`None`: `finish` returns it), or the transfer fails (the error).
async fn receive(
    resp: reqwest::Response,
    writer: &StagedWriter,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Option<reqwest::Error> {
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                on_bytes(c.len() as u64);
                if !writer.send(c).await {
                    return None;
                }
            }
            Err(e) => return Some(e),
        }
    }
    None
}

/// Renames a whole download into place if it hashes to its digest; a mismatch discards it.
fn publish_verified(
    mut file: StagedFile,
    target: &Target,
    durability: Durability,
) -> Result<(), FetchError> {
    let actual = file.digest();
    if actual != target.digest {
        file.set_keep(false);
        return Err(mismatch(target, actual.as_str(), file.len()));
    }
    file.publish(
        &target.root,
        &target.relative,
        Some(&target.digest),
        durability,
    )
    .map(|_| ())
    .map_err(|source| FetchError::Write {
        url: target.url.clone(),
        source,
    })
}
