//! The supervisor's side of the puppet protocol (`paddock_core::puppet`) on a Unix socket: one
//! request per line, one reply per line. Each request is handed to the job as a
//! [`HostEvent::Puppet`] and answered `ok`; a malformed line is answered with an error.

use std::path::{Path, PathBuf};

use paddock_core::puppet::{PuppetReply, PuppetRequest};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::driver::{EventSink, HostEvent};

/// Longest accepted request line.
const MAX_LINE: usize = 64 * 1024;

/// A listening puppet socket; stops listening and removes the socket file when dropped.
#[derive(Debug)]
pub struct PuppetSocket {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl PuppetSocket {
    /// Binds `path` (replacing a stale socket file) and serves until dropped.
    pub fn bind(path: &Path, events: EventSink) -> std::io::Result<PuppetSocket> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                tokio::spawn(serve(stream, events.clone()));
            }
        });
        Ok(PuppetSocket {
            path: path.to_path_buf(),
            task,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PuppetSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve(stream: UnixStream, events: EventSink) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take_limit()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match serde_json::from_str::<PuppetRequest>(&line) {
            Ok(req) => {
                tracing::debug!(request = ?req, "puppet request");
                if events.send(HostEvent::Puppet(req)).await.is_ok() {
                    PuppetReply::Ok
                } else {
                    PuppetReply::Error {
                        message: "the job is no longer running".into(),
                    }
                }
            }
            Err(e) => PuppetReply::Error {
                message: format!("malformed request: {e}"),
            },
        };
        let mut out = serde_json::to_string(&reply).unwrap_or_default();
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() {
            break;
        }
    }
}

/// Caps how much one connection may send, so a runaway client cannot grow a line forever.
trait TakeLimit: Sized {
    fn take_limit(self) -> tokio::io::Take<Self>;
}

impl<R: tokio::io::AsyncRead> TakeLimit for R {
    fn take_limit(self) -> tokio::io::Take<Self> {
        tokio::io::AsyncReadExt::take(self, MAX_LINE as u64 * 64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paddock_core::puppet::WorkloadOutcome;
    use std::time::Duration;

    #[tokio::test]
    async fn requests_become_events() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let sock = PuppetSocket::bind(&dir.path().join("p.sock"), tx).unwrap();
        let path = sock.path().to_path_buf();
        let client = tokio::task::spawn_blocking(move || {
            paddock_puppet::send(
                &path,
                &PuppetRequest::Exit {
                    outcome: WorkloadOutcome::Error,
                    message: Some("2 failures".into()),
                },
                Duration::from_secs(5),
            )
        });
        let ev = rx.recv().await.unwrap();
        client.await.unwrap().unwrap();
        assert_eq!(
            ev,
            HostEvent::Puppet(PuppetRequest::Exit {
                outcome: WorkloadOutcome::Error,
                message: Some("2 failures".into())
            })
        );
        // A malformed line gets an error reply, not a dropped connection.
        let mut s = UnixStream::connect(sock.path()).await.unwrap();
        s.write_all(b"{\"type\":\"explode\"}\n").await.unwrap();
        let mut reply = String::new();
        BufReader::new(&mut s).read_line(&mut reply).await.unwrap();
        assert!(reply.contains("malformed"), "{reply}");
        let p = sock.path().to_path_buf();
        drop(sock);
        assert!(!p.exists());
    }
}
