//! `paddock up --qemu` with the real binaries and real QEMU (TCG): the demo VM image is built
//! (from Debian's packages, cached under the target directory through `XDG_CACHE_HOME`) and
//! imported, `qemu-1` runs `hello-vm` end to end (ready, then success, the greeting on the
//! console, the secret parameter not shown), and Ctrl-C leaves no QEMU behind.
//!
//! Without QEMU the test prints SKIPPED and passes, unless `CI` is set.

#![allow(clippy::unwrap_used)]

mod shell;

use std::path::Path;

fn have(program: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(program).is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The QEMU processes whose command line names `dir`.
fn qemu_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains("qemu-system") && text.contains(&needle) {
            found.push(text);
        }
    }
    found
}

#[test]
fn paddock_up_qemu_runs_the_demo_vm_image_end_to_end() {
    if !have("qemu-system-x86_64") || !have("qemu-img") {
        assert!(
            !in_ci(),
            "qemu-system-x86_64 and qemu-img are needed in CI (apt-get install qemu-system-x86 qemu-utils)"
        );
        eprintln!("SKIPPED: qemu-system-x86_64 or qemu-img is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache");
    let port = shell::free_port();
    let script = format!(
        r#"
set -euo pipefail
export XDG_CACHE_HOME={cache}
paddock up --qemu --qemu-accel tcg --supervisors 1 --data-dir D --listen 127.0.0.1:{port} > up.out 2> up.err &
echo $! > up.pid
# The first run downloads Debian's cloud kernel for the demo VM.
for i in $(seq 1200); do grep -q '^PADDOCK_TOKEN=' up.out 2>/dev/null && break; sleep 0.25; done
export $(cat up.out)
paddock supervisor list --json > sups.json
ID=$(paddock job enqueue hello-vm --tags board:vm --param greeting=hi --secret-param key=s3cret)
timeout 300 paddock job watch $ID > watch.txt
paddock job status $ID --json > status.json
paddock job logs $ID > logs.txt
kill -INT $(cat up.pid)
for i in $(seq 300); do kill -0 $(cat up.pid) 2>/dev/null || break; sleep 0.1; done
if kill -0 $(cat up.pid) 2>/dev/null; then echo "paddock up did not stop" >&2; exit 1; fi
"#,
        cache = cache.display()
    );
    let out = shell::run(d, &script);
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    assert!(
        out.status.success(),
        "script failed ({}):\n--- stderr\n{}\n--- paddock up\n{}\n--- watch\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        read("up.err"),
        read("watch.txt")
    );
    let sups: serde_json::Value = serde_json::from_str(&read("sups.json")).unwrap();
    let vm = sups["supervisors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "qemu-1")
        .unwrap_or_else(|| panic!("no qemu-1 in {sups}"))
        .clone();
    assert_eq!(vm["tags"], serde_json::json!(["board:vm", "site:local"]));
    let status: serde_json::Value = serde_json::from_str(&read("status.json")).unwrap();
    assert_eq!(
        status["exit_status"],
        "workload_finished_success",
        "{status}\n{}",
        read("logs.txt")
    );
    let watch = read("watch.txt");
    assert!(watch.contains("ready"), "{watch}");
    let logs = read("logs.txt");
    assert!(logs.contains("hello from a Paddock VM"), "{logs}");
    assert!(logs.contains("parameter greeting = hi"), "{logs}");
    assert!(
        logs.contains("parameter key: (secret, not shown)"),
        "{logs}"
    );
    assert!(!logs.contains("s3cret"), "{logs}");
    assert!(
        qemu_naming(d).is_empty(),
        "QEMU left running: {:?}",
        qemu_naming(d)
    );
    assert!(read("up.err").contains("imported the demo VM image hello-vm"));
}

#[test]
fn paddock_up_qemu_without_qemu_names_the_packages_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_paddock"));
    // A PATH with only the built binaries: no QEMU on it.
    let out = std::process::Command::new(bin)
        .args(["up", "--qemu", "--data-dir"])
        .arg(dir.path().join("D"))
        .args(["--listen", "127.0.0.1:0"])
        .env("PATH", bin.parent().unwrap())
        .env_remove("PADDOCK_URL")
        .env_remove("PADDOCK_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("qemu-system-x86_64 and qemu-img")
            && err.contains("apt-get install qemu-system-x86 qemu-utils"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PADDOCK_TOKEN"));
}

/// Issue 17's acceptance walk-through, as README writes it: the demo VM held running with the
/// user's key, `paddock job ssh ID -- uname -a` printing the guest's kernel, `paddock job
/// cancel` ending it with no QEMU of the job left.
#[test]
fn paddock_up_qemu_job_ssh_into_a_held_demo_vm_then_cancel() {
    if !have("qemu-system-x86_64") || !have("qemu-img") || !have("ssh") || !have("ssh-keygen") {
        assert!(
            !in_ci(),
            "QEMU (qemu-system-x86 qemu-utils) and ssh (openssh-client) are needed in CI"
        );
        eprintln!("SKIPPED: QEMU or ssh is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache");
    let port = shell::free_port();
    let script = format!(
        r#"
set -euo pipefail
export XDG_CACHE_HOME={cache}
paddock up --qemu --qemu-accel tcg --supervisors 1 --data-dir D --listen 127.0.0.1:{port} > up.out 2> up.err &
echo $! > up.pid
for i in $(seq 1200); do grep -q '^PADDOCK_TOKEN=' up.out 2>/dev/null && break; sleep 0.25; done
export $(cat up.out)
ssh-keygen -q -t ed25519 -N '' -f key
ID=$(paddock job enqueue hello-vm --tags board:vm --param hold=1 --ssh-key key.pub)
for i in $(seq 600); do
  [ "$(paddock job status $ID --json | jq -r .execution_state)" = ready ] && break
  sleep 0.5
done
paddock job status $ID > status.txt
for i in $(seq 30); do
  paddock job ssh $ID -i key -- uname -a > uname.txt 2> ssh.err && break
  sleep 1
done
paddock job cancel $ID
for i in $(seq 300); do
  [ "$(paddock job status $ID --json | jq -r .execution_state)" = terminated ] && break
  sleep 0.2
done
paddock job logs $ID > logs.txt
kill -INT $(cat up.pid)
for i in $(seq 300); do kill -0 $(cat up.pid) 2>/dev/null || break; sleep 0.1; done
"#,
        cache = cache.display()
    );
    let out = shell::run(d, &script);
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    assert!(
        out.status.success(),
        "script failed ({}):\n--- stderr\n{}\n--- paddock up\n{}\n--- ssh\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        read("up.err"),
        read("ssh.err")
    );
    let logs = read("logs.txt");
    let uname = read("uname.txt");
    assert!(
        uname.starts_with("Linux "),
        "{uname}\n{}\n{logs}",
        read("ssh.err")
    );
    // The guest's kernel, as its console said it.
    let release = logs
        .lines()
        .find_map(|l| l.split(", kernel ").nth(1))
        .unwrap_or_else(|| panic!("no kernel on the console: {logs}"))
        .trim()
        .to_string();
    assert!(uname.contains(&release), "{uname} vs {release}");
    assert!(
        read("status.txt").contains("ssh -p "),
        "{}",
        read("status.txt")
    );
    assert!(logs.contains("holding (parameter hold)"), "{logs}");
    assert!(
        qemu_naming(d).is_empty(),
        "QEMU left running: {:?}",
        qemu_naming(d)
    );
}
