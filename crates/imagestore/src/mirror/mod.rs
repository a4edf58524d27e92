//! The mirror client: copies a store over HTTP (a Paddock store, or any Treadmill-format store
//! with an `all.txt`) into a local directory. What the book's `wget … -i all.txt` one-liner
//! does, but with parallel keep-alive connections, resumed partial downloads (`Range`), every
//! file verified against the digest in its name before it is renamed into place
//! ([`fetch`](self::fetch)), progress reported through [`MirrorProgress`] (the caller draws
//! it), and a list of what failed.
//!
//! Manifests come first: they give the sizes of the blobs, so progress can show bytes and ETA.

mod fetch;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paddock_client::{StoreApiError, StoreClient};
use paddock_core::manifest::ImageManifest;

pub use self::fetch::{FetchError, Fetched};
use crate::paths::StorePath;

/// How to mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Downloads at once.
    pub parallel: usize,
    /// Attempts per file (a retry resumes where the last one stopped).
    pub attempts: u32,
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

/// Progress of a mirror run, as it happens. Every method has a default that does nothing;
/// the methods are called from several download tasks at once.
pub trait MirrorProgress: Send + Sync {
    /// Before the first download: the number of files to fetch (those listed and not present).
    fn started(&self, _files: usize) {}
    /// Once the manifests are in (before the blobs): the bytes of the blobs to fetch, as the
    /// manifests give their sizes.
    fn total_bytes(&self, _bytes: u64) {}
    /// Bytes received (retries and restarted transfers count again).
    fn bytes(&self, _n: u64) {}
    /// One file is finished: fetched (with the bytes this run transferred for it), or failed
    /// after every attempt. `path` is its `all.txt` line.
    fn file_done(&self, _path: &str, _outcome: Result<u64, &FetchError>) {}
    /// Every download is over (the index is written, and synced when asked, next).
    fn finished(&self) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl MirrorProgress for NoProgress {}

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

/// When a downloaded file is made durable.
pub use crate::staged::Durability;

/// Downloads one store file from `store` into the store at `dir`, resuming a partial download
/// in `dir/.partial/`, verifying the digest before the rename. `counter` is advanced as bytes
/// arrive.
pub async fn try_fetch_file(
    store: &StoreClient,
    path: &StorePath,
    dir: &Path,
    counter: &AtomicU64,
    durability: Durability,
) -> Result<Fetched, FetchError> {
    let on_bytes = |n| {
        counter.fetch_add(n, Ordering::Relaxed);
    };
    fetch::fetch(store, path, dir, &on_bytes, durability, true).await
}

/// Mirrors `base` (the URL `all.txt` is under) into the directory `dir`.
pub async fn mirror(
    base: &str,
    dir: &Path,
    opts: &MirrorOptions,
) -> Result<MirrorReport, MirrorError> {
    mirror_with_progress(base, dir, opts, Arc::new(NoProgress)).await
}

/// [`mirror`], telling `progress` what happens.
pub async fn mirror_with_progress(
    base: &str,
    dir: &Path,
    opts: &MirrorOptions,
    progress: Arc<dyn MirrorProgress>,
) -> Result<MirrorReport, MirrorError> {
    let t0 = Instant::now();
    let store = StoreClient::new(base, None);
    let index = fetch_index(&store).await?;
    let (fresh, recovery) = prepare_dir(dir).await?;
    let mut report = MirrorReport {
        recovery,
        ..MirrorReport::default()
    };
    let (images, blobs) = plan(&index, dir, &mut report);
    progress.started(images.len() + blobs.len());
    let run = Run {
        store,
        dir: dir.to_path_buf(),
        partials: list_partials(dir),
        attempts: opts.attempts.max(1),
        progress: progress.clone(),
    };
    let run = Arc::new(run);
    // Phase 1: manifests (small); their blob sizes make the byte total for phase 2.
    let r1 = run_phase(&run, images.clone(), opts.parallel).await;
    progress.total_bytes(blob_bytes(dir, &images, &blobs));
    let r2 = run_phase(&run, blobs, opts.parallel).await;
    progress.finished();
    let mut fetched_lines = Vec::new();
    for r in [r1, r2] {
        fetched_lines.extend(r.fetched_lines);
        report.fetched += r.fetched;
        report.fetched_bytes += r.fetched_bytes;
        report.resumed += r.resumed;
        report.failed.extend(r.failed);
    }
    report.failed.sort();
    finish(dir, fresh, fetched_lines, opts.sync).await?;
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// The remote `all.txt`.
async fn fetch_index(store: &StoreClient) -> Result<String, MirrorError> {
    store.index().await.map_err(|e| {
        let message = match &e {
            StoreApiError::NotFound { .. } => "HTTP 404 Not Found".to_string(),
            StoreApiError::Status { status, .. } => format!("HTTP {status}"),
            StoreApiError::Http { message, .. } | StoreApiError::Read { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        };
        MirrorError::Index {
            url: store.url(Path::new("all.txt")),
            message,
        }
    })
}

fn task_failed(dir: &Path, e: tokio::task::JoinError) -> MirrorError {
    MirrorError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

/// Creates `dir` and settles what an earlier run left unsynced (before anything is counted
/// as present). Returns whether `dir` holds no store yet (its `all.txt` will then be exactly
/// what this run fetches: no walk of the tree at the end), and what was settled.
async fn prepare_dir(dir: &Path) -> Result<(bool, crate::unsynced::Recovery), MirrorError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| MirrorError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    let fresh = !dir.join("images").exists() && !dir.join("blobs").exists();
    let root = dir.to_path_buf();
    let recovery = tokio::task::spawn_blocking(move || crate::unsynced::begin(&root))
        .await
        .map_err(|e| task_failed(dir, e))??;
    Ok((fresh, recovery))
}

/// The images and blobs of `index` missing from `dir`; counts the lines, the ignored ones and
/// the files present in `report`.
fn plan(index: &str, dir: &Path, report: &mut MirrorReport) -> (Vec<StorePath>, Vec<StorePath>) {
    let mut images = Vec::new();
    let mut blobs = Vec::new();
    for line in index.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match StorePath::parse(line) {
            Ok(p @ StorePath::Image(_)) => images.push(p),
            Ok(p @ StorePath::Blob(_)) => blobs.push(p),
            _ => report.ignored_lines += 1,
        }
    }
    report.listed = images.len() + blobs.len();
    let mut missing = |v: Vec<StorePath>| -> Vec<StorePath> {
        v.into_iter()
            .filter(|p| {
                let present = crate::regular::exists(dir, &p.relative());
                report.present += usize::from(present);
                !present
            })
            .collect()
    };
    let images = missing(images);
    let blobs = missing(blobs);
    (images, blobs)
}

/// Digests with a partial download an earlier run left (`.partial/<digest>.part`), listed once.
fn list_partials(dir: &Path) -> HashSet<String> {
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
        .unwrap_or_default()
}

/// The bytes of the missing `blobs`, as the (now local) manifests `images` give their sizes.
/// Blobs already present locally may be named by local manifests too; only sizes of the
/// missing ones count.
fn blob_bytes(dir: &Path, images: &[StorePath], blobs: &[StorePath]) -> u64 {
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for p in images {
        if let Ok(bytes) = std::fs::read(dir.join(p.relative()))
            && let Ok(m) = ImageManifest::parse(&bytes)
        {
            for b in m.blobs.values() {
                sizes.insert(b.sha256_digest.clone(), b.size);
            }
        }
    }
    blobs
        .iter()
        .filter_map(|p| p.digest().and_then(|d| sizes.get(d.as_str())))
        .sum()
}

/// Writes the mirror's own `all.txt` (it serves as a store itself), removes `.partial/` when
/// empty, and syncs when asked.
async fn finish(
    dir: &Path,
    fresh: bool,
    fetched_lines: Vec<String>,
    sync: bool,
) -> Result<(), MirrorError> {
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
    if sync {
        let root = dir.to_path_buf();
        tokio::task::spawn_blocking(move || crate::unsynced::finish_synced(&root))
            .await
            .map_err(|e| task_failed(dir, e))??;
    }
    Ok(())
}

/// What the workers of both phases share.
struct Run {
    store: StoreClient,
    dir: PathBuf,
    /// Digests with a partial download in `.partial/` when the run began.
    partials: HashSet<String>,
    /// Attempts per file (at least 1).
    attempts: u32,
    progress: Arc<dyn MirrorProgress>,
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

impl PhaseResult {
    fn record(&mut self, line: String, outcome: Result<Fetched, FetchError>) {
        match outcome {
            Ok(f) => {
                self.fetched += 1;
                self.fetched_lines.push(line);
                self.fetched_bytes += f.bytes;
                self.resumed += usize::from(f.resumed);
            }
            Err(e) => self.failed.push((line, e.to_string())),
        }
    }
}

/// Fetches `paths` with `parallel` workers taking them from one queue.
async fn run_phase(run: &Arc<Run>, paths: Vec<StorePath>, parallel: usize) -> PhaseResult {
    let queue = Arc::new(Mutex::new(paths.into_iter().collect::<VecDeque<_>>()));
    let result = Arc::new(Mutex::new(PhaseResult::default()));
    let workers: Vec<_> = (0..parallel.max(1))
        .map(|_| tokio::spawn(worker(run.clone(), queue.clone(), result.clone())))
        .collect();
    for w in workers {
        let _ = w.await;
    }
    std::mem::take(&mut *result.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Takes paths from `queue` until it is empty; records each outcome in `result`.
async fn worker(
    run: Arc<Run>,
    queue: Arc<Mutex<VecDeque<StorePath>>>,
    result: Arc<Mutex<PhaseResult>>,
) {
    loop {
        let Some(p) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
            break;
        };
        let outcome = fetch_with_retries(&run, &p).await;
        let line = p.index_line();
        run.progress
            .file_done(&line, outcome.as_ref().map(|f| f.bytes));
        result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(line, outcome);
    }
}

/// Fetches one file, up to `run.attempts` times, backing off between attempts; the last
/// attempt's error when all fail.
async fn fetch_with_retries(run: &Run, p: &StorePath) -> Result<Fetched, FetchError> {
    let on_bytes = |n| run.progress.bytes(n);
    let mut attempt = 0;
    loop {
        // A failed attempt may leave a partial file: later attempts look for it.
        let may_have_partial = attempt > 0
            || p.digest()
                .is_some_and(|d| run.partials.contains(d.as_str()));
        let r = fetch::fetch(
            &run.store,
            p,
            &run.dir,
            &on_bytes,
            Durability::Deferred,
            may_have_partial,
        )
        .await;
        attempt += 1;
        if r.is_ok() || attempt >= run.attempts {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
    }
}
