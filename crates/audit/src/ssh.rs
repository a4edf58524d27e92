//! A remote host over SSH (ssh2/libssh2): commands run there through its shell with their
//! arguments quoted, files are read and directories listed over SFTP. The host key is checked
//! against a known_hosts file (a mismatch is always refused; an unknown host is refused unless
//! host key checking is switched off explicitly). Key authentication: an identity file, or
//! the SSH agent.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ssh2::{CheckResult, KnownHostFileKind, Session, Sftp};

use crate::host::{CmdOutput, Host, HostError};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// A private key file; the SSH agent when absent.
    pub identity: Option<PathBuf>,
    /// `~/.ssh/known_hosts` when absent.
    pub known_hosts: Option<PathBuf>,
    /// Accept any host key (never the default).
    pub no_host_key_check: bool,
    pub connect_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("connecting to {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error(
        "{addr}: host key {why} (known hosts: {known_hosts}); check the host, then add its key with ssh-keyscan, or pass --no-host-key-check"
    )]
    HostKey {
        addr: String,
        why: String,
        known_hosts: String,
    },
    #[error("{addr}: authentication as {user} failed: {message}")]
    Auth {
        addr: String,
        user: String,
        message: String,
    },
    #[error("{addr}: {message}")]
    Session { addr: String, message: String },
}

struct Inner {
    session: Session,
    sftp: Sftp,
}

/// A connected remote host.
pub struct Ssh {
    inner: Mutex<Inner>,
    name: String,
}

/// `'…'` quoting for a POSIX shell.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

impl Ssh {
    pub fn connect(t: &Target) -> Result<Ssh, SshError> {
        let addr = format!("{}:{}", t.host, t.port);
        let connect_err = |message: String| SshError::Connect {
            addr: addr.clone(),
            message,
        };
        let sock = (t.host.as_str(), t.port)
            .to_socket_addrs()
            .map_err(|e| connect_err(e.to_string()))?
            .next()
            .ok_or_else(|| connect_err("no address".into()))?;
        let tcp = TcpStream::connect_timeout(&sock, t.connect_timeout)
            .map_err(|e| connect_err(e.to_string()))?;
        let session_err = |e: ssh2::Error| SshError::Session {
            addr: addr.clone(),
            message: e.to_string(),
        };
        let mut session = Session::new().map_err(session_err)?;
        session.set_tcp_stream(tcp);
        session.set_timeout(t.connect_timeout.as_millis() as u32);
        session.handshake().map_err(session_err)?;
        if !t.no_host_key_check {
            check_host_key(&session, t, &addr)?;
        }
        let auth = match &t.identity {
            Some(key) => session.userauth_pubkey_file(&t.user, None, key, None),
            None => session.userauth_agent(&t.user),
        };
        auth.map_err(|e| SshError::Auth {
            addr: addr.clone(),
            user: t.user.clone(),
            message: e.to_string(),
        })?;
        if !session.authenticated() {
            return Err(SshError::Auth {
                addr,
                user: t.user.clone(),
                message: "not authenticated".into(),
            });
        }
        let sftp = session.sftp().map_err(session_err)?;
        Ok(Ssh {
            inner: Mutex::new(Inner { session, sftp }),
            name: format!("{}@{}:{}", t.user, t.host, t.port),
        })
    }
}

fn check_host_key(session: &Session, t: &Target, addr: &str) -> Result<(), SshError> {
    let file = t.known_hosts.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".ssh/known_hosts")
    });
    let refuse = |why: &str| SshError::HostKey {
        addr: addr.to_string(),
        why: why.to_string(),
        known_hosts: file.display().to_string(),
    };
    let mut known = session.known_hosts().map_err(|e| refuse(&e.to_string()))?;
    if Path::new(&file).exists() {
        known
            .read_file(&file, KnownHostFileKind::OpenSSH)
            .map_err(|e| refuse(&format!("unreadable known_hosts: {e}")))?;
    }
    let (key, _) = session
        .host_key()
        .ok_or_else(|| refuse("not offered by the server"))?;
    match known.check_port(&t.host, t.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(refuse(
            "DOES NOT MATCH the known one (changed, or an attack)",
        )),
        CheckResult::NotFound => Err(refuse("is not known")),
        CheckResult::Failure => Err(refuse("could not be checked")),
    }
}

fn sftp_err(path: &str, e: ssh2::Error) -> HostError {
    // SFTP status 2: no such file.
    if matches!(e.code(), ssh2::ErrorCode::SFTP(2)) {
        HostError::NotFound(path.to_string())
    } else {
        HostError::Io {
            what: path.to_string(),
            message: e.to_string(),
        }
    }
}

impl Host for Ssh {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<CmdOutput, HostError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let line = std::iter::once(program)
            .chain(args.iter().copied())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ");
        let io = |e: &dyn std::fmt::Display| HostError::Io {
            what: program.to_string(),
            message: e.to_string(),
        };
        inner
            .session
            .set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);
        let mut channel = inner.session.channel_session().map_err(|e| io(&e))?;
        channel
            .exec(&format!("LC_ALL=C exec {line}"))
            .map_err(|e| io(&e))?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let read = channel
            .read_to_end(&mut stdout)
            .and_then(|_| channel.stderr().read_to_end(&mut stderr));
        if let Err(e) = read {
            let _ = channel.close();
            return Err(if e.kind() == std::io::ErrorKind::TimedOut {
                HostError::Timeout {
                    program: program.to_string(),
                    secs: timeout.as_secs(),
                }
            } else {
                io(&e)
            });
        }
        let _ = channel.wait_close();
        let status = channel.exit_status().ok();
        if status == Some(127) {
            return Err(HostError::NotFound(program.to_string()));
        }
        Ok(CmdOutput {
            status,
            stdout,
            stderr,
        })
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, HostError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.session.set_timeout(30_000);
        let mut f = inner
            .sftp
            .open(Path::new(path))
            .map_err(|e| sftp_err(path, e))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(|e| HostError::Io {
            what: path.to_string(),
            message: e.to_string(),
        })?;
        Ok(buf)
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, HostError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.session.set_timeout(30_000);
        let mut names: Vec<String> = inner
            .sftp
            .readdir(Path::new(dir))
            .map_err(|e| sftp_err(dir, e))?
            .into_iter()
            .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        Ok(names)
    }

    fn link(&self, path: &str) -> Result<String, HostError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.session.set_timeout(30_000);
        inner
            .sftp
            .readlink(Path::new(path))
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| sftp_err(path, e))
    }

    fn exists(&self, path: &str) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.session.set_timeout(30_000);
        inner.sftp.stat(Path::new(path)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::quote("lsblk"), "lsblk");
        assert_eq!(super::quote("-J"), "-J");
        assert_eq!(super::quote("a b"), "'a b'");
        assert_eq!(super::quote("it's"), "'it'\\''s'");
        assert_eq!(super::quote(""), "''");
        assert_eq!(super::quote("$(reboot)"), "'$(reboot)'");
    }
}
