//! paddock-puppet: the client side of the puppet protocol (`paddock_core::puppet`). A workload
//! runs `paddock-puppet ready`, `paddock-puppet exit success|error|unknown [--message M]` or
//! `paddock-puppet terminate`; each sends one request to the supervisor and waits for its reply.
//! Inside a VM, `paddock-puppet guest` ([`guest`]) is the long-running guest puppet: it fetches
//! the job's data over the VM's port, writes `/run/paddock/`, reports `ready` and relays the
//! one-shot commands of the guest to the port it holds.
//!
//! Where the request goes (`--socket` or `PADDOCK_PUPPET_SOCKET`, else the guest puppet's
//! relay socket [`GUEST_SOCKET`] when it exists, else the VM port [`VM_PORT`]) decides how it
//! travels:
//! - a Unix socket (the local driver's workloads, the guest puppet's relay): one connection
//!   per request;
//! - a character device: a virtio-serial port inside a VM of the QEMU driver,
//!   `/dev/virtio-ports/org.paddock.puppet.0` ([`Port`]). The port is opened read/write, input
//!   left over from an earlier request (a reply that came after its timeout) is discarded, the
//!   request line is written (waiting while the supervisor is not yet connected to the port's
//!   host side) and one reply line is read; the whole within the timeout.

pub mod cli;
pub mod guest;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use paddock_core::puppet::{MAX_REPLY_LINE, PuppetReply, PuppetRequest};

/// The puppet's virtio-serial port inside a VM of the QEMU driver.
pub const VM_PORT: &str = "/dev/virtio-ports/org.paddock.puppet.0";
/// The guest puppet's run directory: the job's data (`paddock_core::job_files`).
pub const GUEST_RUN_DIR: &str = "/run/paddock";
/// The guest puppet's relay socket: the one-shot commands inside a VM talk to it while the
/// guest puppet holds the port.
pub const GUEST_SOCKET: &str = "/run/paddock/puppet.sock";

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

/// Where a one-shot command sends its request: `explicit` (`--socket` or the environment),
/// else the guest puppet's relay socket when it exists, else the VM port when it exists.
pub fn default_target(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit.or_else(|| {
        [GUEST_SOCKET, VM_PORT]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    })
}

/// Sends one request and waits (up to `timeout`) for the reply `ok`: over a Unix socket, or
/// over a virtio-serial port when `socket` is a character device (see the crate
/// documentation).
pub fn send(socket: &Path, request: &PuppetRequest, timeout: Duration) -> Result<(), PuppetError> {
    match exchange(socket, request, timeout)? {
        PuppetReply::Ok => Ok(()),
        other => Err(PuppetError::Protocol(format!(
            "expected ok, got a {} reply",
            reply_kind(&other)
        ))),
    }
}

/// The name of a reply's type, for messages (never its contents).
fn reply_kind(r: &PuppetReply) -> &'static str {
    match r {
        PuppetReply::Ok => "ok",
        PuppetReply::Error { .. } => "error",
        PuppetReply::JobData(_) => "job_data",
    }
}

/// Sends one request and returns the reply (an `error` reply is [`PuppetError::Refused`]).
pub fn exchange(
    socket: &Path,
    request: &PuppetRequest,
    timeout: Duration,
) -> Result<PuppetReply, PuppetError> {
    if std::fs::metadata(socket).is_ok_and(|m| m.file_type().is_char_device()) {
        return Port::open(socket)?.exchange(request, timeout);
    }
    let stream = UnixStream::connect(socket).map_err(|source| PuppetError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let line = request_line(request)?;
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
    let mut reply = Vec::new();
    let mut bounded = BufReader::new(&stream).take(MAX_REPLY_LINE as u64 + 1);
    match bounded.read_until(b'\n', &mut reply) {
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
    if reply.last() == Some(&b'\n') {
        reply.pop();
    } else if reply.len() > MAX_REPLY_LINE {
        return Err(too_long());
    }
    parse_reply(&reply)
}

fn too_long() -> PuppetError {
    PuppetError::Protocol(format!("a reply longer than {MAX_REPLY_LINE} bytes"))
}

fn request_line(request: &PuppetRequest) -> Result<String, PuppetError> {
    let mut line =
        serde_json::to_string(request).map_err(|e| PuppetError::Protocol(e.to_string()))?;
    line.push('\n');
    Ok(line)
}

/// Reads a reply line. An unreadable one is quoted in the error only when short and not a
/// `job_data` reply (which may carry secrets).
fn parse_reply(reply: &[u8]) -> Result<PuppetReply, PuppetError> {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end();
    match serde_json::from_str::<PuppetReply>(text) {
        Ok(PuppetReply::Error { message }) => Err(PuppetError::Refused(message)),
        Ok(r) => Ok(r),
        Err(e) if text.len() <= 200 && !text.contains("job_data") => {
            Err(PuppetError::Protocol(format!("{e}: {text:?}")))
        }
        Err(e) => Err(PuppetError::Protocol(format!(
            "{e} (a reply of {} bytes)",
            text.len()
        ))),
    }
}

/// Waits (up to `deadline`) for `flags` on the port; the events seen, empty on time-out.
fn wait_for(
    port: &std::fs::File,
    flags: PollFlags,
    deadline: Instant,
) -> Result<PollFlags, PuppetError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Ok(PollFlags::empty());
    }
    let ms = u16::try_from(left.as_millis().clamp(1, 1000)).unwrap_or(1000);
    let mut fds = [PollFd::new(port.as_fd(), flags)];
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) => Ok(fds[0].revents().unwrap_or(PollFlags::empty())),
        Err(nix::errno::Errno::EINTR) => Ok(PollFlags::empty()),
        Err(e) => Err(PuppetError::Io(e.into())),
    }
}

fn would_block(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// A virtio-serial port (a character device), open read/write and non-blocking. The guest
/// puppet keeps one open for its whole life (the guest's kernel lets one process at a time
/// open a port); a one-shot command opens it for one exchange.
#[derive(Debug)]
pub struct Port {
    file: std::fs::File,
    path: PathBuf,
}

impl Port {
    pub fn open(path: &Path) -> Result<Port, PuppetError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(|source| PuppetError::Connect {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Port {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One request and its reply (an `error` reply is [`PuppetError::Refused`]), within
    /// `timeout`.
    pub fn exchange(
        &self,
        request: &PuppetRequest,
        timeout: Duration,
    ) -> Result<PuppetReply, PuppetError> {
        let deadline = Instant::now() + timeout;
        let file = &self.file;
        let path = || self.path.display().to_string();
        let no_answer = || PuppetError::NoAnswer {
            path: path(),
            timeout_s: timeout.as_secs(),
        };
        // A reply that came after an earlier request's time-out must not pass for this one's.
        let mut junk = [0u8; 4096];
        for _ in 0..1024 {
            match (&*file).read(&mut junk) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        let line = request_line(request)?;
        let mut out = line.as_bytes();
        while !out.is_empty() {
            let ev = wait_for(file, PollFlags::POLLOUT, deadline)?;
            if Instant::now() >= deadline && !ev.contains(PollFlags::POLLOUT) {
                return Err(no_answer());
            }
            if !ev.contains(PollFlags::POLLOUT) {
                // The supervisor is not connected to the port yet (POLLHUP): wait for it.
                if !ev.is_empty() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            match (&*file).write(out) {
                Ok(n) => out = &out[n..],
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let ev = wait_for(file, PollFlags::POLLIN, deadline)?;
            if ev.is_empty() {
                if Instant::now() >= deadline {
                    return Err(no_answer());
                }
                continue;
            }
            match (&*file).read(&mut buf) {
                // The supervisor let go of the port before answering.
                Ok(0) => return Err(PuppetError::Closed { path: path() }),
                Ok(n) => {
                    let chunk = &buf[..n];
                    if let Some(end) = chunk.iter().position(|b| *b == b'\n') {
                        reply.extend_from_slice(&chunk[..end]);
                        break;
                    }
                    reply.extend_from_slice(chunk);
                    if reply.len() > MAX_REPLY_LINE {
                        return Err(too_long());
                    }
                }
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        parse_reply(&reply)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
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

    /// `exchange` returns the reply itself (here the job's data); an unreadable `job_data`
    /// reply is reported without being quoted (it may carry secrets).
    #[test]
    fn exchange_returns_job_data_and_never_quotes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.sock");
        let line = "{\"type\":\"job_data\",\"job_id\":\"0190d6b8-3c1a-7f00-8000-000000000001\",\
                    \"parameters\":{\"token\":{\"value\":\"s3cret\",\"secret\":true}}}\n";
        let server = serve_once(&path, line);
        let reply = exchange(&path, &PuppetRequest::JobData, Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        let PuppetReply::JobData(d) = reply else {
            panic!("{reply:?}")
        };
        assert!(d.parameters["token"].secret);
        // `send` wants `ok`: it says what came instead, never the contents.
        let path2 = dir.path().join("data2.sock");
        let server = serve_once(&path2, line);
        let e = send(&path2, &PuppetRequest::JobData, Duration::from_secs(5)).unwrap_err();
        server.join().unwrap();
        assert!(e.to_string().contains("job_data reply"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");

        let path3 = dir.path().join("bad.sock");
        let server = serve_once(
            &path3,
            "{\"type\":\"job_data\",\"job_id\":\"nope\",\"parameters\":{\"t\":{\"value\":\"s3cret\"}}}\n",
        );
        let e = exchange(&path3, &PuppetRequest::JobData, Duration::from_secs(5)).unwrap_err();
        server.join().unwrap();
        assert!(matches!(e, PuppetError::Protocol(_)), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    /// Character devices take the port path (the VM tests of paddock-supervisor use a real
    /// virtio-serial port): /dev/null takes the request and ends at once, /dev/zero answers an
    /// endless line.
    #[test]
    fn a_character_device_is_a_port() {
        let e = send(
            Path::new("/dev/null"),
            &PuppetRequest::Ready,
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(matches!(e, PuppetError::Closed { .. }), "{e}");
        let e = send(
            Path::new("/dev/zero"),
            &PuppetRequest::Ready,
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
    }
}
