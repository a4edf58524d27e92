//! Where the collectors and checks look: this machine, or another one over SSH. Commands
//! run there and files are read there through this one interface, so every collector works
//! the same way locally and remotely. A local command runs in a process group of its own,
//! killed whole at its time limit.

use std::io::Read;
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdOutput {
    /// The exit code; `None` when killed by a signal.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The first lines of stderr (or stdout when stderr is empty), for an error message.
    pub fn complaint(&self) -> String {
        let text = if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            String::from_utf8_lossy(&self.stderr).into_owned()
        } else {
            String::from_utf8_lossy(&self.stdout).into_owned()
        };
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(5)
            .collect();
        let status = match self.status {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".to_string(),
        };
        if lines.is_empty() {
            status
        } else {
            format!("{status}: {}", lines.join(" / "))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The program or file does not exist there.
    #[error("{0}: not found")]
    NotFound(String),
    #[error("`{program}` did not finish within {secs} s")]
    Timeout { program: String, secs: u64 },
    #[error("{what}: {message}")]
    Io { what: String, message: String },
}

/// A machine to inspect.
pub trait Host: Send + Sync {
    /// `user@host:port`, or `local`.
    fn describe(&self) -> String;
    /// Runs `program` with `args` (no shell); a program that is not installed is
    /// [`HostError::NotFound`].
    fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<CmdOutput, HostError>;
    /// Reads a whole file (small ones: /proc, /sys, /etc).
    fn read(&self, path: &str) -> Result<Vec<u8>, HostError>;
    /// The names in a directory, sorted.
    fn list(&self, dir: &str) -> Result<Vec<String>, HostError>;
    /// The target of a symbolic link.
    fn link(&self, path: &str) -> Result<String, HostError>;
    /// Whether a path exists (a dangling link does not).
    fn exists(&self, path: &str) -> bool;

    /// A file's text, trimmed; `None` when it cannot be read.
    fn read_text(&self, path: &str) -> Option<String> {
        self.read(path)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
    }
}

/// This machine.
#[derive(Debug, Default, Clone)]
pub struct Local;

/// The process groups of the local commands running now, with the thread that waits for
/// each; and the threads given up on ([`kill_local_commands_of`]), whose commands are
/// killed as soon as they start.
struct Running {
    groups: Vec<(ThreadId, rustix::process::Pid)>,
    abandoned: Vec<ThreadId>,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    groups: Vec::new(),
    abandoned: Vec::new(),
});

fn running() -> std::sync::MutexGuard<'static, Running> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// A command's entry in [`RUNNING`], removed when the command's run ends.
struct Registered(rustix::process::Pid);

impl Registered {
    /// Registers a command just started; `None` (and the command killed) when its thread
    /// has been given up on.
    fn new(program: &str, group: rustix::process::Pid) -> Option<Registered> {
        let mut r = running();
        let me = std::thread::current().id();
        if r.abandoned.contains(&me) {
            kill_group(program, group);
            return None;
        }
        r.groups.push((me, group));
        Some(Registered(group))
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        running().groups.retain(|(_, g)| *g != self.0);
    }
}

fn kill_group(program: &str, group: rustix::process::Pid) {
    if let Err(e) = rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
        && e != rustix::io::Errno::SRCH
    {
        tracing::warn!(
            program,
            pgid = group.as_raw_nonzero().get(),
            "cannot kill the process group: {e}"
        );
    }
}

/// Kills the local commands that `thread` is running, with every process they started: for
/// a caller that gave up waiting for that thread (a collector past its time limit), so that
/// they do not run on after it, re-parented to PID 1. The thread's [`Host::run`] then returns
/// (the command killed by a signal), and a command it starts afterwards is killed at once.
pub fn kill_local_commands_of(thread: ThreadId) {
    let mut r = running();
    // Thread ids are never reused: the list grows by one per collector given up on.
    if !r.abandoned.contains(&thread) {
        r.abandoned.push(thread);
    }
    for (_, g) in r.groups.iter().filter(|(t, _)| *t == thread) {
        kill_group("a command past its collector's limit", *g);
    }
}

fn io_err(what: &str, e: std::io::Error) -> HostError {
    if e.kind() == std::io::ErrorKind::NotFound {
        HostError::NotFound(what.to_string())
    } else {
        HostError::Io {
            what: what.to_string(),
            message: e.to_string(),
        }
    }
}

impl Host for Local {
    fn describe(&self) -> String {
        "local".to_string()
    }

    /// Each command runs in a process group of its own. At the time limit the whole group is
    /// killed, so nothing it started lives on re-parented to PID 1; a command that exits in
    /// time but leaves a process holding its output open gets that process killed at the
    /// limit too, and its own output and status are returned.
    fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<CmdOutput, HostError> {
        use std::os::unix::process::CommandExt;
        let start = Instant::now();
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .env("LC_ALL", "C")
            .process_group(0)
            .spawn()
            .map_err(|e| io_err(program, e))?;
        // The group's id is the child's pid (`process_group(0)`); it stays the group's while
        // any member lives, even after the child itself is reaped.
        let group = rustix::process::Pid::from_child(&child);
        let Some(_registered) = Registered::new(program, group) else {
            let _ = child.wait();
            return Err(HostError::Timeout {
                program: program.to_string(),
                secs: 0,
            });
        };
        let kill_group = || kill_group(program, group);
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let timed_out = || HostError::Timeout {
            program: program.to_string(),
            secs: timeout.as_secs(),
        };
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if start.elapsed() >= timeout => {
                    kill_group();
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(timed_out());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    kill_group();
                    let _ = child.wait();
                    return Err(io_err(program, e));
                }
            }
        };
        // The output is complete when every process holding the pipes has closed them.
        while !(out.is_finished() && err.is_finished()) {
            if start.elapsed() >= timeout {
                kill_group();
                // Killed, they close the pipes at once; one that left the group (`setsid`)
                // keeps them open: give up on the output rather than wait for it.
                let grace = Instant::now();
                while !(out.is_finished() && err.is_finished()) {
                    if grace.elapsed() >= Duration::from_secs(1) {
                        return Err(timed_out());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(CmdOutput {
            status: status.code(),
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, HostError> {
        std::fs::read(path).map_err(|e| io_err(path, e))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, HostError> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| io_err(dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn link(&self, path: &str) -> Result<String, HostError> {
        std::fs::read_link(path)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| io_err(path, e))
    }

    fn exists(&self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn local_commands_files_and_timeouts() {
        let h = Local;
        let out = h
            .run(
                "sh",
                &["-c", "echo out; echo err >&2; exit 3"],
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(out.status, Some(3));
        assert_eq!(out.stdout_text(), "out\n");
        assert_eq!(out.complaint(), "exit 3: err");
        assert_eq!(
            h.run("paddock-no-such-tool", &[], Duration::from_secs(5)),
            Err(HostError::NotFound("paddock-no-such-tool".into()))
        );
        let t0 = Instant::now();
        assert!(matches!(
            h.run("sleep", &["10"], Duration::from_millis(200)),
            Err(HostError::Timeout { .. })
        ));
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            h.read("/nonexistent/x"),
            Err(HostError::NotFound(_))
        ));
        assert!(
            h.list("/proc/self")
                .unwrap()
                .contains(&"status".to_string())
        );
        assert!(h.exists("/proc/self/status") && !h.exists("/nonexistent"));
    }

    /// A sleep duration no other process uses: the marker by which a test finds the
    /// processes it started.
    pub(crate) fn marker(secs: u64) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{secs}.{}{nanos:09}", std::process::id())
    }

    /// The live processes (not zombies: their command line is empty) with `marker` as an
    /// argument.
    fn with_marker(marker: &str) -> Vec<String> {
        let mut pids = Vec::new();
        for pid in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
            let name = pid.file_name().to_string_lossy().into_owned();
            if !name.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let Ok(cmdline) = std::fs::read(pid.path().join("cmdline")) else {
                continue;
            };
            if cmdline.split(|b| *b == 0).any(|a| a == marker.as_bytes()) {
                pids.push(name);
            }
        }
        pids
    }

    /// Waits up to 3 s for the marked processes to be gone; kills any left (they are this
    /// test's) and returns them.
    pub(crate) fn left_behind(marker: &str) -> Vec<String> {
        let t0 = Instant::now();
        loop {
            let pids = with_marker(marker);
            if pids.is_empty() || t0.elapsed() > Duration::from_secs(3) {
                for p in &pids {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", p.as_str()])
                        .status();
                }
                return pids;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Issue 15 (7): a command that times out is killed with its whole process group, so its
    /// children do not live on re-parented to PID 1.
    #[test]
    fn a_timed_out_command_leaves_no_process_behind() {
        let m = marker(1000);
        let t0 = Instant::now();
        let r = Local.run(
            "sh",
            &["-c", &format!("sleep {m} & sleep {m}; echo never")],
            Duration::from_millis(300),
        );
        assert!(matches!(r, Err(HostError::Timeout { .. })), "{r:?}");
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert_eq!(left_behind(&m), Vec::<String>::new(), "still running");
    }

    /// A command that exits but leaves a child holding its output open: the output is read
    /// until the time limit, then the child is killed; the command's own output and status
    /// are kept.
    #[test]
    fn a_child_holding_the_output_open_is_killed_at_the_limit() {
        let m = marker(8);
        let t0 = Instant::now();
        let out = Local
            .run(
                "sh",
                &["-c", &format!("echo started; sleep {m} &")],
                Duration::from_millis(500),
            )
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
        assert_eq!(out.status, Some(0));
        assert_eq!(out.stdout_text(), "started\n");
        assert_eq!(left_behind(&m), Vec::<String>::new(), "still running");
    }
}
