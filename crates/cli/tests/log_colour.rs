//! Issue 15 item 21: the service binaries' logs carry no ANSI colour codes when standard error
//! is a file (a redirect, the journal). Each binary is run with its standard error written to a
//! file until it has logged a warning.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with standard error to `dir/name.err` until that file holds `WARN` (or 20 s
/// pass, or the command ends); its contents.
fn stderr_in_a_file(dir: &Path, name: &str, mut cmd: Command) -> String {
    let path = dir.join(format!("{name}.err"));
    let file = std::fs::File::create(&path).unwrap();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(file)
        .env_remove("NO_COLOR")
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("WARN") || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("WARN"), "{name} logged no warning:\n{text}");
    text
}

fn assert_plain(name: &str, text: &str) {
    assert!(
        !text.contains("\x1b["),
        "{name}'s log to a file carries ANSI codes:\n{}",
        text.escape_debug()
    );
}

#[test]
fn deploy_logs_to_a_file_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("repo")).unwrap();
    std::fs::write(d.join("token"), "t\n").unwrap();
    std::fs::write(
        d.join("deploy.toml"),
        "switchboard_url = \"http://127.0.0.1:1\"\ntoken_file = \"token\"\nrepo = \"repo\"\n\
         state_dir = \"state\"\npoll_interval_s = 3600\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock-deploy"));
    cmd.arg("serve").arg("--config").arg(d.join("deploy.toml"));
    let text = stderr_in_a_file(d, "deploy", cmd);
    assert_plain("paddock-deploy", &text);
}

#[test]
fn audit_logs_to_a_file_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An `lscpu` that outlives the collector's time limit: the collector fails, logged as a
    // warning.
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("lscpu"), "#!/bin/sh\nsleep 5\n").unwrap();
    let mut perms = std::fs::metadata(bin.join("lscpu")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(bin.join("lscpu"), perms).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock-audit"));
    cmd.args(["collect", "--collectors", "cpu", "--timeout-s", "1"])
        .env("PATH", path);
    let text = stderr_in_a_file(d, "audit", cmd);
    assert_plain("paddock-audit", &text);
}
