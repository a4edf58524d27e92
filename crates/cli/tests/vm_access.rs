//! Interactive access to a job's host, end to end with the real binaries: a switchboard and a
//! supervisor with the `qemu` driver (real QEMU under TCG, the Debian-built test guest of
//! `crates/supervisor/tests/support/guest.rs`, here with dropbear), `paddock job enqueue
//! --ssh-key`, the endpoint in `paddock job status`, and `paddock job ssh ID -- CMD` running a
//! command in the guest; and `paddock job ssh`'s refusals for jobs without an endpoint (no
//! QEMU needed); `paddock job console ID --input` typing into the guest's serial port.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../../supervisor/tests/support/guest.rs"]
mod guest;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use paddock_imagestore::LocalStore;
use paddock_supervisor::driver::qemu::image::{ATTR_CMDLINE, ATTR_INITRD, ATTR_KERNEL};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Lab, LabOptions, PADDOCK};

/// `paddock ARGS` as the lab's admin, the client's files (known_hosts) in `home`.
fn paddock(lab: &Lab, home: &Path, args: &[&str]) -> Output {
    Command::new(PADDOCK)
        .args(args)
        .env("PADDOCK_URL", &lab.base)
        .env("PADDOCK_TOKEN", &lab.admin)
        .env("PADDOCK_CONFIG", home.join("paddock/config.toml"))
        .output()
        .unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// A manifest booting the test guest's kernel and initramfs with `cmdline`; its id.
fn vm_image(store: &LocalStore, g: &guest::Guest, cmdline: &str) -> String {
    let mut m = format!(
        "manifest_version = 0\nmanifest_extensions = [\"org.tockos.treadmill.manifest-ext.base\"]\n\
         \"org.tockos.treadmill.manifest-ext.base.label\" = \"vm\"\n\
         \"org.tockos.treadmill.manifest-ext.base.revision\" = 1\n\
         \"org.tockos.treadmill.manifest-ext.base.description\" = \"vm access test\"\n\n\
         [\"org.tockos.treadmill.manifest-ext.base.attrs\"]\n\
         {ATTR_KERNEL:?} = \"kernel\"\n{ATTR_INITRD:?} = \"initrd\"\n{ATTR_CMDLINE:?} = {cmdline:?}\n"
    );
    for (name, path) in [("kernel", &g.kernel), ("initrd", &g.initrd)] {
        let (d, size) = store.put_blob_file(path).unwrap();
        m.push_str(&format!(
            "\n[\"org.tockos.treadmill.manifest-ext.base.blobs\".{name}]\n\
             \"org.tockos.treadmill.manifest-ext.base.sha256-digest\" = \"{d}\"\n\
             \"org.tockos.treadmill.manifest-ext.base.size\" = {size}\n"
        ));
    }
    store.put_manifest(m.as_bytes()).unwrap().to_string()
}

/// A fresh ed25519 key pair: the private key's path and the public key's file.
fn ssh_key(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("id_job");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "job-key", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (key.clone(), key.with_extension("pub"))
}

/// QEMU processes of `job` (their command line names `paddock-job-<id>`).
fn qemus_of(job: &str) -> usize {
    let name = format!("paddock-job-{job}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|a| a == name.as_bytes()))
                .unwrap_or(false)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paddock_job_ssh_runs_a_command_in_a_vm_job() {
    let Some(g) = guest::guest("job_ssh") else {
        return;
    };
    if !guest::have("ssh") || !guest::have("ssh-keygen") {
        assert!(
            std::env::var_os("CI").is_none(),
            "ssh and ssh-keygen are needed in CI (openssh-client)"
        );
        eprintln!("SKIPPED job_ssh: openssh-client is not installed");
        return;
    }
    let options = LabOptions {
        driver_toml: "kind = \"qemu\"\naccel = \"tcg\"\nmemory_mib = 256\nboot_timeout_s = 150\n\
                      stop_grace_s = 2\nssh_user = \"root\"\n"
            .into(),
        ..LabOptions::default()
    };
    let mut lab = Lab::start_opts(&[], options).await;
    lab.add_supervisor("vm1", &["board:vm"]).await;
    let image = vm_image(
        &lab.store,
        &g,
        &format!("{} paddock.test=ssh", guest::CMDLINE),
    );
    let home = lab.path().join("home");
    let (key, public) = ssh_key(lab.path());

    let out = paddock(
        &lab,
        &home,
        &[
            "job",
            "enqueue",
            &image,
            "--tags",
            "board:vm",
            "--ssh-key",
            public.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let id = text(&out.stdout).trim().to_string();
    let job = lab.wait_state(&id, "ready", Duration::from_secs(180)).await;

    // The endpoint, in the API and in `job status`.
    let access = &job["access"];
    assert_eq!(access["host"], "127.0.0.1", "{job}");
    assert_eq!(access["user"], "root", "{job}");
    let port = access["port"].as_u64().expect("a port");
    let status = paddock(&lab, &home, &["job", "status", &id]);
    assert!(
        text(&status.stdout).contains(&format!("ssh:            ssh -p {port} root@127.0.0.1")),
        "{status:?}"
    );

    // `paddock job ssh ID -i KEY -- uname -r` prints the guest's kernel release (dropbear may
    // need a moment after ready under TCG).
    let console = lab.console(&id).await;
    let uname = console
        .lines()
        .find_map(|l| l.trim().strip_prefix(guest::UNAME_MARKER))
        .unwrap_or_else(|| panic!("no uname line; console: {console}"))
        .to_string();
    let key_arg = key.to_str().unwrap();
    let t0 = Instant::now();
    let out = loop {
        let out = paddock(
            &lab,
            &home,
            &["job", "ssh", &id, "-i", key_arg, "--", "uname", "-r"],
        );
        if out.status.success() || t0.elapsed() > Duration::from_secs(60) {
            break out;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(out.status.success(), "{out:?}\nconsole: {console}");
    assert_eq!(text(&out.stdout).trim(), uname);
    // The job's host key was kept under the job's alias, and is checked the next time.
    // (Debian's ssh_config hashes the names: `ssh-keygen -F` finds them either way.)
    let found = Command::new("ssh-keygen")
        .args(["-F", &format!("paddock-job-{id}"), "-f"])
        .arg(home.join("paddock/known_hosts"))
        .output()
        .unwrap();
    assert!(found.status.success(), "{found:?}");
    let again = paddock(
        &lab,
        &home,
        &["job", "ssh", &id, "-i", key_arg, "--", "echo", "again"],
    );
    assert!(again.status.success(), "{again:?}");
    assert_eq!(text(&again.stdout).trim(), "again");
    // ssh's exit status is the command's.
    let failed = paddock(
        &lab,
        &home,
        &["job", "ssh", &id, "-i", key_arg, "--", "exit", "7"],
    );
    assert_eq!(failed.status.code(), Some(7), "{failed:?}");

    // Cancelled: the VM is gone, the endpoint with it.
    lab.cancel(&id).await;
    let job = lab.terminated(&id).await;
    assert!(job.get("access").is_none(), "{job}");
    let out = paddock(&lab, &home, &["job", "ssh", &id, "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("no SSH endpoint: it has terminated (job_canceled)"),
        "{out:?}"
    );
    let t0 = Instant::now();
    while qemus_of(&id) > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "QEMU outlived the job"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paddock_job_ssh_refuses_jobs_without_an_endpoint() {
    let mut lab = Lab::start().await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image("sleeps", "#!/bin/sh\nsleep 30\n", false);
    let home = lab.path().join("home");
    let running = lab
        .enqueue(json!({"image": "sleeps", "tags": "board:demo"}))
        .await;
    lab.wait_state(&running, "ready", Duration::from_secs(20))
        .await;
    // The one supervisor is busy: this one waits in the queue.
    let queued = lab
        .enqueue(json!({"image": "sleeps", "tags": "board:demo"}))
        .await;

    // A local job has no SSH endpoint.
    let (_, job) = lab
        .call(Method::GET, &format!("/jobs/{running}"), Value::Null)
        .await;
    assert!(job.get("access").is_none(), "{job}");
    let status = paddock(&lab, &home, &["job", "status", &running]);
    assert!(status.status.success(), "{status:?}");
    assert!(!text(&status.stdout).contains("ssh:"), "{status:?}");
    let out = paddock(&lab, &home, &["job", "ssh", &running]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("offers no SSH access"),
        "{out:?}"
    );

    let out = paddock(&lab, &home, &["job", "ssh", &queued, "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("it is queued: its host is not started yet"),
        "{out:?}"
    );

    let out = paddock(
        &lab,
        &home,
        &["job", "ssh", "0190b6d8-7c2e-7000-8000-000000000001"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!home.join("paddock/known_hosts").exists());
    lab.cancel(&queued).await;
    lab.cancel(&running).await;
}

/// `paddock job console ID --input` (issue 17 item 5): the lines typed on its standard input
/// reach the guest's serial port, end to end (CLI → switchboard → supervisor → QEMU → guest):
/// the test guest (`paddock.test=console-echo`) reads a line from `/dev/ttyS0` and reports it
/// as its outcome's message. A user without the privilege `console_input` is refused with a
/// message naming it, and the endpoint refuses the job's owner without it (403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paddock_job_console_input_types_into_a_vm_job() {
    use std::io::Write;
    let Some(g) = guest::guest("console_input") else {
        return;
    };
    let options = LabOptions {
        driver_toml: "kind = \"qemu\"\naccel = \"tcg\"\nmemory_mib = 256\nboot_timeout_s = 150\n\
                      stop_grace_s = 2\nnetwork = \"none\"\n"
            .into(),
        ..LabOptions::default()
    };
    let mut lab = Lab::start_opts(&[], options).await;
    lab.add_supervisor("vm1", &["board:vm"]).await;
    let image = vm_image(
        &lab.store,
        &g,
        &format!("{} paddock.test=console-echo", guest::CMDLINE),
    );
    let home = lab.path().join("home");
    // The job's owner holds everything but console_input.
    let (s, v) = lab
        .call(
            Method::POST,
            "/users",
            json!({"name": "viewer", "privileges": ["submit_jobs", "list_jobs"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let viewer = v["token"]["token"].as_str().unwrap().to_string();
    let out = Command::new(PADDOCK)
        .args(["job", "enqueue", &image, "--tags", "board:vm"])
        .env("PADDOCK_URL", &lab.base)
        .env("PADDOCK_TOKEN", &viewer)
        .env("PADDOCK_CONFIG", home.join("paddock/config.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let id = text(&out.stdout).trim().to_string();
    lab.wait_state(&id, "ready", Duration::from_secs(180)).await;

    let console_input = |token: &str| {
        Command::new(PADDOCK)
            .args(["job", "console", &id, "--input"])
            .env("PADDOCK_URL", &lab.base)
            .env("PADDOCK_TOKEN", token)
            .env("PADDOCK_CONFIG", home.join("paddock/config.toml"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Refused for the owner without the privilege, before anything is read or sent.
    let mut refused = console_input(&viewer);
    refused
        .stdin
        .take()
        .unwrap()
        .write_all(b"not sent\n")
        .unwrap();
    let out = refused.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("needs the privilege console_input"),
        "{out:?}"
    );
    // The API says the same to a client that does not ask first.
    let r = lab
        .http
        .post(format!("{}/api/v1/jobs/{id}/console/input", lab.base))
        .bearer_auth(&viewer)
        .json(&json!({"data": "not sent\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("console_input"));

    // The admin (admin implies console_input) types a line; the command follows the console
    // until the job ends.
    let mut attached = console_input(&lab.admin);
    let mut stdin = attached.stdin.take().unwrap();
    stdin.write_all(b"hello from the console\n").unwrap();
    // The guest waits at most 60 s for its line: a line that never came ends it too, with
    // an empty one in its message.
    let job = lab
        .wait_state(&id, "terminated", Duration::from_secs(120))
        .await;
    drop(stdin);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = attached.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "paddock job console did not end with the job"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = attached.wait_with_output().unwrap();
    assert!(status.success(), "{out:?}");
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
    assert_eq!(
        job["status_message"],
        "got: hello from the console",
        "{job}\nconsole: {}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains(guest::MARKER),
        "{}",
        text(&out.stdout)
    );
    // The guest's own report holds what it read (`got: …`): the lines about that report are
    // the guest's word, not the input's path.
    let logs = lab.logs();
    let leaks: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("hello from the console") && !l.contains("got: hello"))
        .collect();
    assert!(
        leaks.is_empty(),
        "the console input reached a log: {leaks:#?}"
    );
    assert!(logs.contains("console input"), "the logs were not captured");
}
