//! The mirror client: copies a store over HTTP (a Paddock store, or any Treadmill-format store
//! with an `all.txt`) into a local directory. What the book's `wget … -i all.txt` one-liner
//! does, but with parallel keep-alive connections, resumed partial downloads (`Range`), every
//! file verified against the digest in its name before it is renamed into place, progress, and
//! a list of what failed.
//!
//! Manifests come first: they give the sizes of the blobs, so progress can show bytes and ETA.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use paddock_core::manifest::ImageManifest;
use sha2::{Digest, Sha256};

use crate::paths::StorePath;
use crate::staged::{StagedFile, StagedWriter};

/// Files up to this size are received whole and written in one go.
const SMALL_FILE: u64 = 1024 * 1024;

/// How to mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Downloads at once.
    pub parallel: usize,
    /// Attempts per file (a retry resumes where the last one stopped).
    pub attempts: u32,
    /// Print progress to standard error (on a terminal).
    pub progress: bool,
    /// End with one `syncfs`: everything mirrored is on disk when `mirror` returns. Without
    /// it the data reaches the disk in the background and the next run settles it (see
    /// [`crate::unsynced`]).
    pub sync: bool,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            parallel: 8,
            attempts: 4,
            progress: false,
            sync: false,
        }
    }
}

/// What a mirror run did.
#[derive(Debug, Default)]
pub struct MirrorReport {
    /// Files named by the remote `all.txt`.
    pub listed: usize,
    /// Lines of `all.txt` that are not store paths (ignored).
    pub ignored_lines: usize,
    /// Files already present locally.
    pub present: usize,
    pub fetched: usize,
    pub fetched_bytes: u64,
    /// Downloads that continued a partial file.
    pub resumed: usize,
    pub seconds: f64,
    /// `(path, why)` of every file that could not be mirrored.
    pub failed: Vec<(String, String)>,
    /// What this run found of an earlier run's unsynced writes.
    pub recovery: crate::unsynced::Recovery,
}

/// When a downloaded file is made durable.
pub use crate::staged::Durability;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("fetching {url}: {message}")]
    Index { url: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Unsynced(#[from] crate::unsynced::UnsyncedError),
}

/// A client with keep-alive connections, shared by every download of a run.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_default()
}

/// Downloads one store file from `base` into the store at `dir`, resuming a partial download
/// in `dir/.partial/`, verifying the digest before the rename. Returns the bytes transferred
/// and whether it resumed. `counter` is advanced as bytes arrive.
pub async fn fetch_file(
    client: &reqwest::Client,
    base: &str,
    path: &StorePath,
    dir: &Path,
    counter: &AtomicU64,
    durability: Durability,
) -> Result<(u64, bool), String> {
    fetch(client, base, path, dir, counter, durability, true).await
}

/// `fetch_file`; `may_have_partial: false` says (from a listing of `.partial/` taken before)
/// that there is no partial file to resume, which saves a blocking hop per file.
///
/// Every file goes through a [`StagedFile`]: a write error (a full disk) fails the download
/// and removes its temporary file; an interrupted transfer keeps its partial file to resume.
async fn fetch(
    client: &reqwest::Client,
    base: &str,
    path: &StorePath,
    dir: &Path,
    counter: &AtomicU64,
    durability: Durability,
    may_have_partial: bool,
) -> Result<(u64, bool), String> {
    let digest = path.digest().ok_or("all.txt is not fetched as a file")?;
    let relative = path.relative();
    let dest = dir.join(&relative);
    let root = dir.to_path_buf();
    let partial_dir = dir.join(".partial");
    let part = partial_dir.join(format!("{digest}.part"));
    // Hash what an earlier attempt already has (one blocking hop for all the file work).
    let resumed_file = if !may_have_partial {
        None
    } else {
        let (partial_dir, part) = (partial_dir.clone(), part.clone());
        tokio::task::spawn_blocking(move || -> Result<Option<StagedFile>, String> {
            std::fs::create_dir_all(&partial_dir)
                .map_err(|e| format!("{}: {e}", partial_dir.display()))?;
            StagedFile::resume(part).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let have = resumed_file.as_ref().map_or(0, StagedFile::len);
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.relative().display()
    );
    let mut req = client.get(&url);
    if have > 0 {
        req = req.header("range", format!("bytes={have}-"));
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    if status == reqwest::StatusCode::OK && resp.content_length().is_some_and(|n| n <= SMALL_FILE) {
        // A small file: take it whole and hash it; only a matching one touches the disk, in
        // one blocking hop. Its temporary file sits next to its final name (a rename within
        // one directory; eight workers creating in one shared directory contend on its lock).
        let body = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        counter.fetch_add(body.len() as u64, Ordering::Relaxed);
        let actual = hex::encode(Sha256::digest(&body));
        let len = body.len() as u64;
        if actual != digest.as_str() {
            return Err(mismatch(&url, &actual, digest, len));
        }
        let digest = digest.clone();
        return tokio::task::spawn_blocking(move || -> Result<(u64, bool), String> {
            let parent = dest.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            // Not even a temporary file outside the store, through a directory link.
            crate::regular::check_dirs(&root, &relative).map_err(|e| e.to_string())?;
            let tmp = parent.join(format!(".{digest}.{}.tmp", crate::local::unique()));
            let mut f = StagedFile::create(tmp).map_err(|e| e.to_string())?;
            f.write(&body).map_err(|e| e.to_string())?;
            f.publish(&root, &relative, Some(&digest), durability)
                .map_err(|e| e.to_string())?;
            // An attempt that stopped half-way earlier leaves nothing to resume.
            if let Some(mut partial) = resumed_file {
                partial.set_keep(false);
            }
            Ok((len, false))
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    let resumed = have > 0 && status == reqwest::StatusCode::PARTIAL_CONTENT;
    let append = match status {
        reqwest::StatusCode::PARTIAL_CONTENT if have > 0 => true,
        // The partial file is already whole (or longer than the file): check it as it is.
        reqwest::StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => true,
        s if s.is_success() => false,
        s => return Err(format!("{url}: HTTP {s}")),
    };
    // Where this attempt starts in the file.
    let start = if append { have } else { 0 };
    // A blocking writer thread hashes and writes the chunks as they arrive (no thread hop
    // per chunk); the file is published in one more hop only if the transfer completed.
    let writer = StagedWriter::spawn(move || match resumed_file {
        Some(f) if append => Ok(f),
        _ => {
            std::fs::create_dir_all(&partial_dir).map_err(|source| crate::StoreError::Io {
                path: partial_dir.clone(),
                source,
            })?;
            // Replaces what an earlier attempt left: the server sent the whole file.
            let mut f = StagedFile::create(part)?;
            f.set_keep(true);
            Ok(f)
        }
    });
    let mut failed = None;
    if status != reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => {
                    counter.fetch_add(c.len() as u64, Ordering::Relaxed);
                    if !writer.send(c).await {
                        // A write error: `finish` returns it.
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(format!("{url}: {e}"));
                    break;
                }
            }
        }
    }
    // A write error (the disk is full) removes the partial file: its content is not known.
    let file = writer.finish().await.map_err(|e| format!("{url}: {e}"))?;
    let total = file.len();
    if let Some(e) = failed {
        // Interrupted: the partial file stays for the next attempt to resume.
        drop(file);
        return Err(format!("{e} (transfer interrupted after {total} bytes)"));
    }
    let digest = digest.clone();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut file = file;
        let actual = file.digest();
        if actual != digest {
            file.set_keep(false);
            return Err(mismatch(&url, actual.as_str(), &digest, file.len()));
        }
        file.publish(&root, &relative, Some(&digest), durability)
            .map(|_| ())
            .map_err(|e| format!("{url}: {e}"))
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok((total - start, resumed))
}

fn mismatch(url: &str, actual: &str, digest: &paddock_core::ImageId, len: u64) -> String {
    format!("{url}: content hashes to {actual}, not {digest} ({len} bytes); discarded")
}

fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Mirrors `base` (the URL `all.txt` is under) into the directory `dir`.
pub async fn mirror(
    base: &str,
    dir: &Path,
    opts: &MirrorOptions,
) -> Result<MirrorReport, MirrorError> {
    let t0 = Instant::now();
    let client = http_client();
    let index_url = format!("{}/all.txt", base.trim_end_matches('/'));
    let index_err = |message: String| MirrorError::Index {
        url: index_url.clone(),
        message,
    };
    let resp = client
        .get(&index_url)
        .send()
        .await
        .map_err(|e| index_err(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(index_err(format!("HTTP {}", resp.status())));
    }
    let text = resp.text().await.map_err(|e| index_err(e.to_string()))?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| MirrorError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    // A directory with no store in it yet: its all.txt will be exactly what this run fetches
    // (no walk of the tree at the end).
    let fresh = !dir.join("images").exists() && !dir.join("blobs").exists();
    // Settle what an earlier run left unsynced (before anything is counted as present).
    let root = dir.to_path_buf();
    let recovery = tokio::task::spawn_blocking(move || crate::unsynced::begin(&root))
        .await
        .map_err(|e| MirrorError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(e),
        })??;

    let mut report = MirrorReport {
        recovery,
        ..MirrorReport::default()
    };
    let mut images = Vec::new();
    let mut blobs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match StorePath::parse(line) {
            Ok(p @ StorePath::Image(_)) => images.push(p),
            Ok(p @ StorePath::Blob(_)) => blobs.push(p),
            _ => report.ignored_lines += 1,
        }
    }
    report.listed = images.len() + blobs.len();
    let missing = |v: Vec<StorePath>, report: &mut MirrorReport| -> Vec<StorePath> {
        v.into_iter()
            .filter(|p| {
                let present = crate::regular::exists(dir, &p.relative());
                if present {
                    report.present += 1;
                }
                !present
            })
            .collect()
    };
    let images = missing(images, &mut report);
    let blobs = missing(blobs, &mut report);

    // Partial downloads an earlier run left (`<digest>.part`), listed once.
    let partials: Arc<HashSet<String>> = Arc::new(
        std::fs::read_dir(dir.join(".partial"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        name.strip_suffix(".part").map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    );
    let counter = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let total_files = images.len() + blobs.len();
    // Phase 1: manifests (small); their blob sizes make the byte total for phase 2.
    let shared = Progress {
        partials,
        counter: counter.clone(),
        done: done.clone(),
    };
    let r1 = run_phase(&client, base, dir, images.clone(), opts, &shared).await;
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for p in &images {
        if let Ok(bytes) = std::fs::read(dir.join(p.relative()))
            && let Ok(m) = ImageManifest::parse(&bytes)
        {
            for b in m.blobs.values() {
                sizes.insert(b.sha256_digest.clone(), b.size);
            }
        }
    }
    // Blobs already present locally may be named by local manifests too; only sizes of the
    // missing ones count.
    let total_bytes: u64 = blobs
        .iter()
        .filter_map(|p| p.digest().and_then(|d| sizes.get(d.as_str())))
        .sum();
    let progress = opts.progress.then(|| {
        let (counter, done) = (counter.clone(), done.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let bytes = counter.load(Ordering::Relaxed) as f64;
                let secs = start.elapsed().as_secs_f64().max(0.001);
                let rate = bytes / secs;
                let eta = if total_bytes > 0 && rate > 0.0 {
                    let left = (total_bytes as f64 - bytes).max(0.0) / rate;
                    format!("ETA {:.0} s", left)
                } else {
                    "ETA ?".into()
                };
                eprint!(
                    "\r\x1b[Kmirror: {}/{} files  {} / {}  {}/s  {eta}",
                    done.load(Ordering::Relaxed),
                    total_files,
                    human_bytes(bytes),
                    human_bytes(total_bytes as f64),
                    human_bytes(rate),
                );
            }
        })
    });
    let r2 = run_phase(&client, base, dir, blobs, opts, &shared).await;
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let mut fetched_lines = Vec::new();
    for r in [r1, r2] {
        fetched_lines.extend(r.fetched_lines);
        report.fetched += r.fetched;
        report.fetched_bytes += r.fetched_bytes;
        report.resumed += r.resumed;
        report.failed.extend(r.failed);
    }
    report.failed.sort();
    // The mirror serves as a store itself: keep its own index.
    let root = dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        if fresh {
            crate::index::write_lines(&root, fetched_lines)
        } else {
            crate::index::write(&root)
        }
    })
    .await;
    let _ = std::fs::remove_dir(dir.join(".partial"));
    if opts.sync {
        let root = dir.to_path_buf();
        tokio::task::spawn_blocking(move || crate::unsynced::finish_synced(&root))
            .await
            .map_err(|e| MirrorError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::other(e),
            })??;
    }
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// What the workers of both phases share.
struct Progress {
    /// Digests with a partial download in `.partial/` when the run began.
    partials: Arc<HashSet<String>>,
    /// Bytes received.
    counter: Arc<AtomicU64>,
    /// Files finished (fetched or failed).
    done: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct PhaseResult {
    fetched: usize,
    /// `all.txt` lines of the files fetched.
    fetched_lines: Vec<String>,
    fetched_bytes: u64,
    resumed: usize,
    failed: Vec<(String, String)>,
}

async fn run_phase(
    client: &reqwest::Client,
    base: &str,
    dir: &Path,
    paths: Vec<StorePath>,
    opts: &MirrorOptions,
    progress: &Progress,
) -> PhaseResult {
    let Progress {
        partials,
        counter,
        done,
    } = progress;
    let queue = Arc::new(Mutex::new(paths.into_iter().collect::<VecDeque<_>>()));
    let result = Arc::new(Mutex::new(PhaseResult::default()));
    let mut workers = Vec::new();
    for _ in 0..opts.parallel.max(1) {
        let (queue, result, client, base, dir, counter, done, attempts) = (
            queue.clone(),
            result.clone(),
            client.clone(),
            base.to_string(),
            dir.to_path_buf(),
            counter.clone(),
            done.clone(),
            opts.attempts.max(1),
        );
        let partials = partials.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let Some(p) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                    break;
                };
                let mut last = String::new();
                let mut ok = None;
                for attempt in 0..attempts {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                    // A failed attempt may leave a partial file: later attempts look for it.
                    let may_have_partial =
                        attempt > 0 || p.digest().is_some_and(|d| partials.contains(d.as_str()));
                    match fetch(
                        &client,
                        &base,
                        &p,
                        &dir,
                        &counter,
                        Durability::Deferred,
                        may_have_partial,
                    )
                    .await
                    {
                        Ok(r) => {
                            ok = Some(r);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
                let mut r = result.lock().unwrap_or_else(|e| e.into_inner());
                match ok {
                    Some((bytes, resumed)) => {
                        r.fetched += 1;
                        r.fetched_lines.push(p.index_line());
                        r.fetched_bytes += bytes;
                        r.resumed += usize::from(resumed);
                    }
                    None => r.failed.push((p.index_line(), last)),
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    std::mem::take(&mut *result.lock().unwrap_or_else(|e| e.into_inner()))
}
