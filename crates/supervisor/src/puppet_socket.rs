//! The supervisor's side of the puppet protocol (`paddock_core::puppet`): one request per line,
//! one reply per line. Each request is handed to the job as a [`HostEvent::Puppet`] and answered
//! `ok`; a malformed line is answered with an error, a line longer than 64 KiB with an error and
//! the end of the connection. [`PuppetSocket`] serves a Unix socket of its own (the local
//! driver); [`serve_stream`] serves any stream, such as the QEMU driver's connection to a VM's
//! virtio-serial port.

use std::path::{Path, PathBuf};

use paddock_core::puppet::{PuppetReply, PuppetRequest};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::UnixListener;
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
                let events = events.clone();
                tokio::spawn(async move { serve_stream(stream, &events, |_| {}).await });
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

/// Serves one connection until it ends (or sends a line that is too long): each request goes
/// to `events` (after `on_request` has seen it) and is answered.
pub async fn serve_stream<S>(
    stream: S,
    events: &EventSink,
    mut on_request: impl FnMut(&PuppetRequest),
) where
    S: AsyncRead + AsyncWrite,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    loop {
        let (reply, go_on) = match next_line(&mut read).await {
            Ok(Line::Eof) | Err(_) => break,
            Ok(Line::TooLong) => (
                PuppetReply::Error {
                    message: format!("request line longer than {MAX_LINE} bytes"),
                },
                false,
            ),
            Ok(Line::Text(line)) => match serde_json::from_str::<PuppetRequest>(&line) {
                Ok(req) => {
                    tracing::debug!(request = ?req, "puppet request");
                    on_request(&req);
                    if events.send(HostEvent::Puppet(req)).await.is_ok() {
                        (PuppetReply::Ok, true)
                    } else {
                        (
                            PuppetReply::Error {
                                message: "the job is no longer running".into(),
                            },
                            true,
                        )
                    }
                }
                Err(e) => (
                    PuppetReply::Error {
                        message: format!("malformed request: {e}"),
                    },
                    true,
                ),
            },
        };
        let mut out = serde_json::to_string(&reply).unwrap_or_default();
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() || write.flush().await.is_err() {
            break;
        }
        if !go_on {
            break;
        }
    }
}

enum Line {
    Text(String),
    TooLong,
    Eof,
}

/// One line, read with a bound: never more than `MAX_LINE` bytes are kept.
async fn next_line<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() > MAX_LINE {
        return Ok(Line::TooLong);
    }
    Ok(Line::Text(String::from_utf8_lossy(&buf).into_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paddock_core::puppet::WorkloadOutcome;
    use std::time::Duration;
    use tokio::net::UnixStream;

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
        // A line past the bound is refused and the connection closed.
        let mut s = UnixStream::connect(sock.path()).await.unwrap();
        s.write_all(&vec![b'x'; MAX_LINE + 10]).await.unwrap();
        let mut r = BufReader::new(&mut s);
        let mut reply = String::new();
        r.read_line(&mut reply).await.unwrap();
        assert!(reply.contains("longer than"), "{reply}");
        reply.clear();
        assert_eq!(r.read_line(&mut reply).await.unwrap(), 0, "{reply}");
        let p = sock.path().to_path_buf();
        drop(sock);
        assert!(!p.exists());
    }
}
