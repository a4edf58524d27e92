//! The supervisor's side of the puppet protocol (`paddock_core::puppet`): one request per line,
//! one reply per line. Each report (`ready`, `exit`, `terminate`) is handed to the job as a
//! [`HostEvent::Puppet`] and answered `ok`; `job_data` is answered with the job's data where
//! the stream serves one (a VM's port), else with an error, and changes nothing in the job; a
//! malformed line is answered with an error, a line longer than 64 KiB with an error and the
//! end of the connection. [`PuppetSocket`] serves a Unix socket of its own (the local driver);
//! [`serve_stream`] serves any stream, such as the QEMU driver's connection to a VM's
//! virtio-serial port. The job's data is never logged, only counted.

use std::path::{Path, PathBuf};

use paddock_core::puppet::{JobData, MAX_REPLY_LINE, MAX_REQUEST_LINE, PuppetReply, PuppetRequest};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use crate::driver::{EventSink, HostEvent};

/// Longest accepted request line.
const MAX_LINE: usize = MAX_REQUEST_LINE;

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
                tokio::spawn(async move { serve_stream(stream, &events, None, |_| {}).await });
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

/// Serves one connection until it ends (or sends a line that is too long): each report goes
/// to `events` (after `on_request` has seen it) and is answered; `job_data` is answered with
/// `job_data` when given (after `on_request` has seen it).
pub async fn serve_stream<S>(
    stream: S,
    events: &EventSink,
    job_data: Option<&JobData>,
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
                Ok(PuppetRequest::JobData) => {
                    on_request(&PuppetRequest::JobData);
                    (answer_job_data(job_data), true)
                }
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

/// The reply to `job_data`: the data when this stream serves it and it fits a reply line.
fn answer_job_data(job_data: Option<&JobData>) -> PuppetReply {
    let Some(data) = job_data else {
        return PuppetReply::Error {
            message: "job_data is served on a VM's puppet port only; a local job's data is in \
                      its run/paddock directory"
                .into(),
        };
    };
    let reply = PuppetReply::JobData(data.clone());
    let size = serde_json::to_string(&reply)
        .map(|l| l.len())
        .unwrap_or(usize::MAX);
    if size > MAX_REPLY_LINE {
        tracing::warn!(
            bytes = size,
            "the job's data does not fit a puppet reply; refused to the guest"
        );
        return PuppetReply::Error {
            message: format!("the job's data is larger than {MAX_REPLY_LINE} bytes"),
        };
    }
    tracing::info!(
        parameters = data.parameters.len(),
        secret = data.parameters.values().filter(|p| p.secret).count(),
        ssh_keys = data.ssh_keys.len(),
        "sent the job's data to the guest"
    );
    reply
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

    /// `job_data` is answered with the job's data on a stream that serves it, refused on the
    /// local socket, and never becomes an event.
    #[tokio::test]
    async fn job_data_is_answered_not_forwarded() {
        use paddock_core::protocol::JobParameter;
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let data = JobData {
            job_id: paddock_core::JobId::new(),
            parameters: [(
                "token".to_string(),
                JobParameter {
                    value: "s3cret".into(),
                    secret: true,
                },
            )]
            .into(),
            ssh_keys: vec!["ssh-ed25519 AAAA k".into()],
        };
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let served = data.clone();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            serve_stream(theirs, &tx, Some(&served), |r| seen.push(r.clone())).await;
            seen
        });
        let mut c = BufReader::new(ours);
        c.get_mut()
            .write_all(b"{\"type\":\"job_data\"}\n{\"type\":\"ready\"}\n")
            .await
            .unwrap();
        let mut line = String::new();
        c.read_line(&mut line).await.unwrap();
        assert_eq!(
            serde_json::from_str::<PuppetReply>(&line).unwrap(),
            PuppetReply::JobData(data)
        );
        line.clear();
        c.read_line(&mut line).await.unwrap();
        assert_eq!(line, "{\"type\":\"ok\"}\n");
        drop(c);
        let seen = server.await.unwrap();
        assert_eq!(seen, [PuppetRequest::JobData, PuppetRequest::Ready]);
        assert_eq!(
            rx.recv().await,
            Some(HostEvent::Puppet(PuppetRequest::Ready))
        );
        assert!(rx.try_recv().is_err(), "job_data is no event");

        // The local driver's socket does not serve it.
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let sock = PuppetSocket::bind(&dir.path().join("p.sock"), tx).unwrap();
        let path = sock.path().to_path_buf();
        let e = tokio::task::spawn_blocking(move || {
            paddock_puppet::exchange(&path, &PuppetRequest::JobData, Duration::from_secs(5))
        })
        .await
        .unwrap()
        .unwrap_err();
        assert!(e.to_string().contains("VM's puppet port only"), "{e}");
    }
}
