//! Stopping every process of a job: its process group, and at start-up anything a crashed
//! supervisor left running (found by the `PADDOCK_JOB_ID` in its environment).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

const POLL: Duration = Duration::from_millis(20);

/// Whether any process is left in the group.
fn group_alive(pgid: i32) -> bool {
    !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

/// Sends SIGTERM to the whole group, waits up to `grace` for it to empty, then sends SIGKILL
/// and waits up to a second more. Returns whether the group is gone.
pub async fn terminate_group(pgid: i32, grace: Duration) -> bool {
    if pgid <= 1 {
        return true;
    }
    let pg = Pid::from_raw(pgid);
    if matches!(killpg(pg, Signal::SIGTERM), Err(Errno::ESRCH)) {
        return true;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !group_alive(pgid) {
            return true;
        }
        tokio::time::sleep(POLL).await;
    }
    tracing::debug!(pgid, "process group outlived SIGTERM; sending SIGKILL");
    let _ = killpg(pg, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if !group_alive(pgid) {
            return true;
        }
        tokio::time::sleep(POLL).await;
    }
    // Zombies whose parent does not reap them keep a group "alive" without running anything.
    false
}

/// Kills (SIGKILL) every process of this user whose environment holds `PADDOCK_JOB_ID=<job>`:
/// the leftovers of a supervisor that died without stopping its job. Returns how many it hit.
/// Blocking (reads `/proc`).
pub fn kill_job_processes(job: &str) -> usize {
    let needle = format!("PADDOCK_JOB_ID={job}");
    kill_processes_where("environ", false, |env| {
        env.split(|b| *b == 0).any(|v| v == needle.as_bytes())
    })
}

/// Kills (SIGKILL; with `groups`, the whole process group of one that leads a group) every
/// other process whose `/proc/<pid>/<file>` (`environ`, `cmdline`) `matches`. Returns how many
/// it hit. Blocking.
pub fn kill_processes_where(file: &str, groups: bool, matches: impl Fn(&[u8]) -> bool) -> usize {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut hit = 0;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        let Ok(content) = std::fs::read(e.path().join(file)) else {
            continue;
        };
        if !matches(&content) {
            continue;
        }
        let p = Pid::from_raw(pid);
        let leads_group = groups && nix::unistd::getpgid(Some(p)).ok() == Some(p);
        let killed = if leads_group {
            killpg(p, Signal::SIGKILL).is_ok()
        } else {
            kill(p, Signal::SIGKILL).is_ok()
        };
        if killed {
            hit += 1;
        }
    }
    hit
}

/// Whether a process exists and is not a zombie.
pub fn process_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::process::CommandExt;

    #[tokio::test]
    async fn terminate_group_kills_forked_children() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("bg.pid");
        // The shell forks a background sleep that ignores SIGTERM, then waits.
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "(trap '' TERM; exec sleep 300) & echo $! > {}; wait",
                pidfile.display()
            ))
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let mut bg = None;
        for _ in 0..200 {
            if let Ok(s) = std::fs::read_to_string(&pidfile)
                && let Ok(p) = s.trim().parse::<i32>()
            {
                bg = Some(p);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let bg = bg.unwrap();
        assert!(process_running(bg));
        let reaper = std::thread::spawn(move || child.wait());
        terminate_group(pgid, Duration::from_millis(300)).await;
        reaper.join().unwrap().unwrap();
        for _ in 0..100 {
            if !process_running(bg) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("background process {bg} survived");
    }
}
