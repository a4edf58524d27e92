//! The progress line of `paddock image mirror` on a terminal: files done, bytes, rate and ETA,
//! redrawn every half second on standard error while the blobs download. The mirror reports
//! its progress through [`MirrorProgress`]; this draws it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paddock_imagestore::mirror::{FetchError, MirrorProgress};

/// How often the line is redrawn.
const REDRAW: Duration = Duration::from_millis(500);

/// Draws a mirror's progress on standard error (use it only when that is a terminal).
#[derive(Debug, Default)]
pub struct TerminalProgress {
    files: AtomicUsize,
    done: AtomicUsize,
    bytes: AtomicU64,
    total_bytes: AtomicU64,
    /// When the blobs began (the line is drawn from then), and whether drawing has stopped.
    line: Mutex<Line>,
}

#[derive(Debug, Default)]
struct Line {
    since: Option<Instant>,
    stopped: bool,
}

impl TerminalProgress {
    /// A progress line and the task that redraws it until the mirror says it is finished.
    pub fn start() -> Arc<TerminalProgress> {
        let p = Arc::new(TerminalProgress::default());
        let drawn = p.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REDRAW).await;
                if !drawn.draw() {
                    break;
                }
            }
        });
        p
    }

    /// Redraws the line (once the blobs began); false once the mirror is finished.
    fn draw(&self) -> bool {
        let line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        if line.stopped {
            return false;
        }
        if let Some(since) = line.since {
            eprint!(
                "\r\x1b[K{}",
                render(
                    self.done.load(Ordering::Relaxed),
                    self.files.load(Ordering::Relaxed),
                    self.bytes.load(Ordering::Relaxed),
                    self.total_bytes.load(Ordering::Relaxed),
                    since.elapsed(),
                )
            );
        }
        true
    }
}

impl MirrorProgress for TerminalProgress {
    fn started(&self, files: usize) {
        self.files.store(files, Ordering::Relaxed);
    }

    fn total_bytes(&self, bytes: u64) {
        self.total_bytes.store(bytes, Ordering::Relaxed);
        self.line.lock().unwrap_or_else(|e| e.into_inner()).since = Some(Instant::now());
    }

    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn file_done(&self, _path: &str, _outcome: Result<u64, &FetchError>) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    fn finished(&self) {
        let mut line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        if !line.stopped {
            line.stopped = true;
            // Ends the progress line: the report follows on lines of its own.
            eprintln!();
        }
    }
}

/// The progress line: `mirror: 3/10 files  1.5 MiB / 12.0 MiB  750.0 KiB/s  ETA 14 s`.
fn render(done: usize, files: usize, bytes: u64, total_bytes: u64, elapsed: Duration) -> String {
    let bytes = bytes as f64;
    let rate = bytes / elapsed.as_secs_f64().max(0.001);
    let eta = if total_bytes > 0 && rate > 0.0 {
        let left = (total_bytes as f64 - bytes).max(0.0) / rate;
        format!("ETA {left:.0} s")
    } else {
        "ETA ?".into()
    };
    format!(
        "mirror: {done}/{files} files  {} / {}  {}/s  {eta}",
        human_bytes(bytes),
        human_bytes(total_bytes as f64),
        human_bytes(rate),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line() {
        assert_eq!(
            render(3, 10, 3 << 20, 12 << 20, Duration::from_secs(2)),
            "mirror: 3/10 files  3.0 MiB / 12.0 MiB  1.5 MiB/s  ETA 6 s"
        );
        assert_eq!(
            render(0, 2, 0, 0, Duration::from_secs(1)),
            "mirror: 0/2 files  0.0 B / 0.0 B  0.0 B/s  ETA ?"
        );
    }
}
