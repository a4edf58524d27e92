//! A real OpenSSH server on a loopback port for the tests: its own host key, the test's
//! client key authorized, SFTP built in. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

fn keygen(path: &Path, kind: &[&str]) {
    let out = Command::new("ssh-keygen")
        .args(kind)
        .args(["-N", "", "-q", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (openssh-client) is needed");
    assert!(out.status.success(), "{out:?}");
}

impl Sshd {
    pub fn start() -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "these tests need a real sshd: apt-get install openssh-server"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"), &["-t", "ecdsa", "-b", "256"]);
        keygen(&d.join("id"), &["-t", "ecdsa", "-b", "256", "-m", "PEM"]);
        keygen(
            &d.join("other_id"),
            &["-t", "ecdsa", "-b", "256", "-m", "PEM"],
        );
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
        // Privilege separation directory (as root; sshd refuses to start without it).
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n",
                d = d.display()
            ),
        )
        .unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        // known_hosts with the server's key.
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let mut words = host_pub.split_whitespace();
        let (kind, key) = (words.next().unwrap(), words.next().unwrap());
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .unwrap();
        Sshd { port, dir, child }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn user() -> String {
        std::env::var("USER").unwrap_or_else(|_| "root".into())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
