//! paddock-puppet: the client side of the puppet protocol (`paddock_core::puppet`). A workload
//! runs `paddock-puppet ready`, `paddock-puppet exit success|error|unknown [--message M]` or
//! `paddock-puppet terminate`; each sends one request over the supervisor's local socket and
//! waits for its reply.

pub mod cli;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use paddock_core::puppet::{PuppetReply, PuppetRequest};

#[derive(Debug, thiserror::Error)]
pub enum PuppetError {
    #[error("connecting to the supervisor at {path}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("talking to the supervisor")]
    Io(#[from] std::io::Error),
    #[error("the supervisor answered something unreadable: {0}")]
    Protocol(String),
    #[error("the supervisor refused: {0}")]
    Refused(String),
    #[error(
        "no answer from the supervisor at {path} within {timeout_s} s (a longer --timeout waits \
         longer)"
    )]
    NoAnswer { path: String, timeout_s: u64 },
    #[error("the supervisor at {path} closed the connection without answering")]
    Closed { path: String },
}

/// Sends one request and waits (up to `timeout`) for the reply.
pub fn send(socket: &Path, request: &PuppetRequest, timeout: Duration) -> Result<(), PuppetError> {
    let stream = UnixStream::connect(socket).map_err(|source| PuppetError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line =
        serde_json::to_string(request).map_err(|e| PuppetError::Protocol(e.to_string()))?;
    line.push('\n');
    // A supervisor that hangs up shows as a broken pipe or a reset, on writing or reading.
    let hung_up = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        )
    };
    let path = || socket.display().to_string();
    match (&stream).write_all(line.as_bytes()) {
        Err(e) if hung_up(&e) => return Err(PuppetError::Closed { path: path() }),
        r => r?,
    }
    let mut reply = String::new();
    match BufReader::new(&stream).read_line(&mut reply) {
        // A read timeout is WouldBlock on Unix, TimedOut elsewhere.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(PuppetError::NoAnswer {
                path: path(),
                timeout_s: timeout.as_secs(),
            });
        }
        Err(e) if hung_up(&e) => return Err(PuppetError::Closed { path: path() }),
        Err(e) => return Err(e.into()),
        Ok(0) => return Err(PuppetError::Closed { path: path() }),
        Ok(_) => {}
    }
    match serde_json::from_str::<PuppetReply>(reply.trim_end()) {
        Ok(PuppetReply::Ok) => Ok(()),
        Ok(PuppetReply::Error { message }) => Err(PuppetError::Refused(message)),
        Err(e) => Err(PuppetError::Protocol(format!(
            "{e}: {:?}",
            reply.trim_end()
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paddock_core::puppet::WorkloadOutcome;
    use std::os::unix::net::UnixListener;

    /// A one-shot server on a real socket: records the request, sends `reply`.
    fn serve_once(path: &Path, reply: &'static str) -> std::thread::JoinHandle<String> {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            (&stream).write_all(reply.as_bytes()).unwrap();
            line
        })
    }

    #[test]
    fn sends_requests_and_reads_replies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("puppet.sock");
        let server = serve_once(&path, "{\"type\":\"ok\"}\n");
        let req = PuppetRequest::Exit {
            outcome: WorkloadOutcome::Success,
            message: None,
        };
        send(&path, &req, Duration::from_secs(5)).unwrap();
        let got: PuppetRequest = serde_json::from_str(server.join().unwrap().trim_end()).unwrap();
        assert_eq!(got, req);

        let path2 = dir.path().join("refusing.sock");
        let server = serve_once(
            &path2,
            "{\"type\":\"error\",\"message\":\"job already terminated\"}\n",
        );
        let e = send(&path2, &PuppetRequest::Ready, Duration::from_secs(5)).unwrap_err();
        server.join().unwrap();
        assert!(e.to_string().contains("job already terminated"), "{e}");

        let e = send(
            &dir.path().join("absent.sock"),
            &PuppetRequest::Ready,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(e, PuppetError::Connect { .. }));
    }
}
