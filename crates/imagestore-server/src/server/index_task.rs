//! The task that keeps `all.txt` current while the server runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How often the index task walks the store when nothing asked it to: files published behind
/// the server's back (the book's `rsync -r -L result/ STORE/`, an operator's `rm`) reach
/// `all.txt` within this period plus one walk.
pub const RESCAN: Duration = Duration::from_secs(1);

/// How long a manifest PUT waits for the `all.txt` rewrite that includes it.
pub(crate) const INDEX_WAIT: Duration = Duration::from_secs(10);

/// The handle of the task that keeps `all.txt` current.
///
/// The task's rules: it walks the store (directories only, no file is read) when asked, or
/// every [`RESCAN`] when not, and rewrites `all.txt` atomically whenever the walk's lines
/// differ from what it last wrote. A request is numbered; the task reads the newest number
/// *before* it walks, so once [`IndexHandle::sync`]'s number is done, every file published
/// before the request is in `all.txt` (read-your-writes for uploads). A failed walk or
/// write is logged and retried at the next period; it completes no request.
#[derive(Debug, Clone)]
pub(crate) struct IndexHandle {
    inner: Arc<IndexInner>,
}

#[derive(Debug)]
struct IndexInner {
    requested: std::sync::atomic::AtomicU64,
    wake: Notify,
    done: tokio::sync::watch::Sender<u64>,
}

impl IndexHandle {
    pub(crate) fn new() -> IndexHandle {
        IndexHandle {
            inner: Arc::new(IndexInner {
                requested: std::sync::atomic::AtomicU64::new(0),
                wake: Notify::new(),
                done: tokio::sync::watch::channel(0).0,
            }),
        }
    }

    /// Asks for a rewrite that sees every file published so far; returns its number.
    pub(crate) fn request(&self) -> u64 {
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
    pub(crate) async fn sync(&self, limit: Duration) -> bool {
        let mut rx = self.inner.done.subscribe();
        let n = self.request();
        matches!(
            tokio::time::timeout(limit, rx.wait_for(|done| *done >= n)).await,
            Ok(Ok(_))
        )
    }
}

pub(crate) async fn index_task(root: Arc<PathBuf>, index: IndexHandle) {
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
            let lines = paddock_imagestore::index::list(&r)?;
            if last.as_ref() != Some(&lines) {
                paddock_imagestore::index::write_lines(&r, lines.clone())?;
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
