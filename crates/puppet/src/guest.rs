//! `paddock-puppet guest`: the long-running guest puppet inside a VM of the QEMU driver.
//!
//! 1. It waits for the VM's puppet port ([`crate::VM_PORT`]) to appear and opens it; it keeps
//!    it open for its whole life (the guest's kernel lets one process at a time open a port).
//! 2. It asks the supervisor for the job's data (`{"type":"job_data"}`), retrying while the
//!    supervisor is not connected to the port, checks it ([`JobData::check`]) and writes the
//!    run directory (`/run/paddock/`, [`paddock_core::job_files`]): `parameters/<name>`
//!    (secret ones 0600), `authorized_keys` and `authorized_keys.d/<user>` for each
//!    `--ssh-user`, then `job-id`. Nothing of the data is printed; only counts.
//! 3. It listens on the relay socket (`/run/paddock/puppet.sock`, mode 0666: everything in
//!    the VM belongs to the job; bound before `job-id` is written) and tells systemd it is up
//!    (`READY=1` on `$NOTIFY_SOCKET`, for a `Type=notify` unit), so units ordered after it
//!    find the data.
//! 4. Readiness: with `--ready-command CMD`, it runs `/bin/sh -c CMD` every second until it
//!    succeeds (the NixOS module passes `systemctl is-active --quiet <readyTarget>`); then,
//!    unless `--no-ready`, it reports `ready`. Without `--ready-command` it reports `ready` as
//!    soon as the data is written.
//! 5. It relays: each request line on the relay socket goes to the port, one at a time, and
//!    the supervisor's reply comes back, so `paddock-puppet ready|exit|terminate` work inside
//!    the guest while the guest puppet holds the port (they use the relay socket when it
//!    exists). A `job_data` request is refused there: the data is in the run directory, the
//!    secret parts readable by root only.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paddock_core::error_text::with_causes;
use paddock_core::job_files::{GuestFiles, write_guest_files};
use paddock_core::puppet::{JobData, MAX_REQUEST_LINE, PuppetReply, PuppetRequest};

use crate::{Port, PuppetError};

/// What `paddock-puppet guest` does (its command-line options).
#[derive(Debug, Clone)]
pub struct GuestOptions {
    /// The VM's puppet port.
    pub port: PathBuf,
    /// Where the job's data is written.
    pub run_dir: PathBuf,
    /// The relay socket.
    pub listen: PathBuf,
    /// Job users whose `authorized_keys.d/<user>` is written.
    pub ssh_users: Vec<String>,
    /// Readiness: a shell command that succeeds once the guest is ready.
    pub ready_command: Option<String>,
    /// Never report `ready` (something else in the guest does, through the relay).
    pub no_ready: bool,
    /// How long one exchange with the supervisor may take.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("the supervisor does not serve the job's data: {0}")]
    Refused(String),
    #[error("the job's data: {0}")]
    BadData(String),
    #[error("writing the job's data: {0}")]
    Write(String),
    #[error("listening on {path}")]
    Listen {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Puppet(#[from] PuppetError),
}

/// How long to wait between tries while the supervisor is not there.
const RETRY: Duration = Duration::from_secs(1);

fn say(what: &str) {
    eprintln!("paddock-puppet guest: {what}");
}

/// Runs the guest puppet; returns only on an error (see the module documentation).
pub fn run(opts: &GuestOptions) -> Result<(), GuestError> {
    let port = open_port(&opts.port);
    let data = fetch(&port, opts.timeout)?;
    data.check().map_err(GuestError::BadData)?;
    // The relay listens before `job-id` is written: a script that waits for `job-id` and then
    // reports finds the relay, never a port the guest puppet holds.
    std::fs::create_dir_all(&opts.run_dir)
        .map_err(|e| GuestError::Write(format!("creating {}: {e}", opts.run_dir.display())))?;
    let listener = bind(&opts.listen)?;
    let files = GuestFiles {
        job_id: &data.job_id,
        parameters: &data.parameters,
        ssh_keys: &data.ssh_keys,
        ssh_users: &opts.ssh_users,
    };
    write_guest_files(&opts.run_dir, &files).map_err(GuestError::Write)?;
    say(&format!(
        "job {}: wrote {} parameter(s) ({} secret) and {} SSH key(s) to {}",
        data.job_id,
        data.parameters.len(),
        data.parameters.values().filter(|p| p.secret).count(),
        data.ssh_keys.len(),
        opts.run_dir.display()
    ));
    drop(data);
    let port = Arc::new(Mutex::new(port));
    let relay = {
        let port = port.clone();
        let timeout = opts.timeout;
        std::thread::spawn(move || serve_relay(listener, port, timeout))
    };
    notify_systemd();
    if let Some(cmd) = &opts.ready_command {
        wait_until(cmd);
    }
    if !opts.no_ready {
        report_ready(&port, opts.timeout);
    }
    // The relay serves until the VM stops.
    if relay.join().is_err() {
        say("the relay stopped");
    }
    Err(GuestError::Listen {
        path: opts.listen.display().to_string(),
        source: std::io::Error::other("the relay socket stopped accepting"),
    })
}

/// Waits for the port to appear and opens it, retrying (a one-shot command may hold it for a
/// moment).
fn open_port(path: &Path) -> Port {
    let mut tries = 0u64;
    loop {
        match Port::open(path) {
            Ok(p) => return p,
            Err(e) => {
                if tries.is_multiple_of(30) {
                    say(&format!(
                        "waiting for {}: {}",
                        path.display(),
                        with_causes(&e)
                    ));
                }
            }
        }
        tries += 1;
        std::thread::sleep(RETRY);
    }
}

/// Asks for the job's data until the supervisor answers it; an `error` reply (a supervisor
/// that does not serve it) ends the guest puppet.
fn fetch(port: &Port, timeout: Duration) -> Result<JobData, GuestError> {
    let mut tries = 0u64;
    loop {
        match port.exchange(&PuppetRequest::JobData, timeout) {
            Ok(PuppetReply::JobData(d)) => return Ok(d),
            Ok(_) => {
                return Err(GuestError::BadData(
                    "the supervisor answered job_data with something else".into(),
                ));
            }
            Err(PuppetError::Refused(m)) => return Err(GuestError::Refused(m)),
            Err(PuppetError::Protocol(m)) => return Err(GuestError::BadData(m)),
            Err(e) => {
                if tries.is_multiple_of(30) {
                    say(&format!(
                        "asking for the job's data (will retry): {}",
                        with_causes(&e)
                    ));
                }
            }
        }
        tries += 1;
        std::thread::sleep(RETRY);
    }
}

/// Binds the relay socket (replacing a stale one), mode 0666.
fn bind(path: &Path) -> Result<UnixListener, GuestError> {
    let err = |source| GuestError::Listen {
        path: path.display().to_string(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(err)?;
    Ok(listener)
}

/// `READY=1` to systemd when started as a `Type=notify` unit.
fn notify_systemd() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|s| {
        let p = path.as_encoded_bytes();
        if let Some(abs) = p.strip_prefix(b"@") {
            // An abstract socket address.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(abs)?;
            s.send_to_addr(b"READY=1", &addr)
        } else {
            s.send_to(b"READY=1", &path)
        }
    });
    if let Err(e) = sent {
        say(&format!("telling systemd: {e}"));
    }
}

/// Runs `sh -c cmd` every second until it succeeds.
fn wait_until(cmd: &str) {
    let mut tries = 0u64;
    loop {
        let ok = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
        if tries.is_multiple_of(60) {
            say(&format!("not ready yet: `{cmd}` did not succeed"));
        }
        tries += 1;
        std::thread::sleep(RETRY);
    }
}

/// Reports `ready`, retrying while the supervisor is not there; a refusal (the job has
/// ended) is printed and not retried.
fn report_ready(port: &Mutex<Port>, timeout: Duration) {
    loop {
        let r = port
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .exchange(&PuppetRequest::Ready, timeout);
        match r {
            Ok(_) => {
                say("reported ready");
                return;
            }
            Err(e @ (PuppetError::Refused(_) | PuppetError::Protocol(_))) => {
                say(&format!("reporting ready: {}", with_causes(&e)));
                return;
            }
            Err(e) => say(&format!(
                "reporting ready (will retry): {}",
                with_causes(&e)
            )),
        }
        std::thread::sleep(RETRY);
    }
}

fn serve_relay(listener: UnixListener, port: Arc<Mutex<Port>>, timeout: Duration) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let port = port.clone();
                std::thread::spawn(move || relay_connection(stream, &port, timeout));
            }
            Err(e) => {
                say(&format!("accepting on the relay socket: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// One relay connection: request lines in, the supervisor's replies out, until it ends.
fn relay_connection(stream: UnixStream, port: &Mutex<Port>, timeout: Duration) {
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let n = match (&mut reader)
            .take(MAX_REQUEST_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let complete = line.last() == Some(&b'\n');
        let (reply, go_on) = if !complete && line.len() > MAX_REQUEST_LINE {
            (
                error(format!("request line longer than {MAX_REQUEST_LINE} bytes")),
                false,
            )
        } else {
            (relay_one(&line, port, timeout), true)
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_default();
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() || !go_on {
            return;
        }
    }
}

fn error(message: String) -> PuppetReply {
    PuppetReply::Error { message }
}

fn relay_one(line: &[u8], port: &Mutex<Port>, timeout: Duration) -> PuppetReply {
    let text = String::from_utf8_lossy(line);
    let req = match serde_json::from_str::<PuppetRequest>(text.trim_end()) {
        Ok(r) => r,
        Err(e) => return error(format!("malformed request: {e}")),
    };
    if !req.is_report() {
        return error(
            "the job's data is not relayed: it is in the guest puppet's run directory \
             (/run/paddock by default)"
                .into(),
        );
    }
    let r = port
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .exchange(&req, timeout);
    match r {
        Ok(PuppetReply::JobData(_)) => error("the supervisor answered with job data".into()),
        Ok(reply) => reply,
        Err(PuppetError::Refused(message)) => PuppetReply::Error { message },
        Err(e) => error(with_causes(&e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paddock_core::puppet::WorkloadOutcome;

    /// The relay's own rules, over /dev/null as the port (the VM tests of paddock-supervisor
    /// use a real one): `job_data` is refused without touching the port, malformed lines are
    /// answered, a port that ends is reported.
    #[test]
    fn the_relay_refuses_job_data_and_malformed_lines() {
        let port = Mutex::new(Port::open(Path::new("/dev/null")).unwrap());
        let t = Duration::from_secs(1);
        let r = relay_one(br#"{"type":"job_data"}"#, &port, t);
        assert!(
            matches!(&r, PuppetReply::Error { message } if message.contains("not relayed")),
            "{r:?}"
        );
        let r = relay_one(b"{\"type\":\"ready\",\"x\":1}\n", &port, t);
        assert!(
            matches!(&r, PuppetReply::Error { message } if message.contains("malformed")),
            "{r:?}"
        );
        // /dev/null takes the request and ends at once: the relay says so.
        let req = serde_json::to_vec(&PuppetRequest::Exit {
            outcome: WorkloadOutcome::Success,
            message: None,
        })
        .unwrap();
        let r = relay_one(&req, &port, t);
        assert!(
            matches!(&r, PuppetReply::Error { message } if message.contains("closed")),
            "{r:?}"
        );
    }

    /// A relay socket end to end: a client's request is answered by the relay.
    #[test]
    fn the_relay_socket_answers_one_shot_commands() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("puppet.sock");
        let listener = bind(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o666
        );
        let port = Arc::new(Mutex::new(Port::open(Path::new("/dev/null")).unwrap()));
        std::thread::spawn(move || serve_relay(listener, port, Duration::from_secs(1)));
        let e = crate::send(&path, &PuppetRequest::JobData, Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(&e, PuppetError::Refused(m) if m.contains("not relayed")),
            "{e}"
        );
        let e = crate::send(&path, &PuppetRequest::Terminate, Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(&e, PuppetError::Refused(m) if m.contains("closed")),
            "{e}"
        );
    }
}
