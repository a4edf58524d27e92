//! End to end with real processes: `paddock-switchboard serve`, `paddock-supervisor run` with
//! the local driver, real workloads, over loopback.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Lab, LabOptions, alive, gone, read_pid};

const SECRET: &str = "s3cret-Vq9Zr";

/// Checks it was given the secret, prints the rest, exits 0.
const CHECKS_SECRET: &str = r#"#!/bin/sh
echo "job=$PADDOCK_JOB_ID"
echo "greeting=$(cat "$PADDOCK_PARAMETERS_DIR/greeting")"
[ "$(cat "$PADDOCK_PARAMETERS_DIR/key")" = "s3cret-Vq9Zr" ] || { echo "secret missing" >&2; exit 1; }
[ -n "$(find "$PADDOCK_PARAMETERS_DIR/key" -perm 600)" ] || { echo "secret not 0600" >&2; exit 1; }
echo "secret-ok" >&2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_end_to_end_and_its_secret_stays_secret() {
    let mut lab = Lab::start().await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    let image = lab.image("check", CHECKS_SECRET, false);
    let id = lab
        .enqueue(json!({
            "image": "check",
            "tags": "board:demo",
            "parameters": {
                "greeting": {"value": "hi"},
                "key": {"value": SECRET, "secret": true},
            },
        }))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
    assert_eq!(
        job["image_id"],
        json!(image),
        "the label resolved to the image"
    );
    let console = lab.console(&id).await;
    assert!(console.contains(&format!("job={id}")), "{console}");
    assert!(console.contains("greeting=hi"), "{console}");
    assert!(console.contains("secret-ok"), "{console}");
    // States in order, by the supervisor.
    let (_, events) = lab
        .call(Method::GET, &format!("/jobs/{id}/events"), Value::Null)
        .await;
    let states: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "queued",
            "scheduled",
            "initializing",
            "ready",
            "terminating",
            "terminated"
        ]
    );
    // The secret is in no API response and no log line (switchboard and supervisor at debug).
    for path in [
        format!("/jobs/{id}"),
        "/jobs".to_string(),
        format!("/jobs/{id}/events"),
        format!("/jobs/{id}/console"),
    ] {
        let (_, v) = lab.call(Method::GET, &path, Value::Null).await;
        assert!(!v.to_string().contains(SECRET), "{path} leaks the secret");
    }
    let logs = lab.logs();
    assert!(logs.contains("start_job"), "debug logs were captured");
    assert!(!logs.contains(SECRET), "a log line holds the secret");
    // The job directory is gone.
    let jobs_dir = lab.sups[0].work.join("jobs");
    assert_eq!(std::fs::read_dir(&jobs_dir).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_puppet_reports_decide_the_exit_status() {
    let mut lab = Lab::start().await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image("fails", "#!/bin/sh\necho about to fail\nexit 3\n", false);
    lab.image(
        "reports",
        "#!/bin/sh\npaddock-puppet exit error --message '2 of 9 tests failed' || exit 0\nsleep 30\n",
        false,
    );
    lab.image(
        "quits",
        "#!/bin/sh\npaddock-puppet terminate || exit 0\nsleep 30\n",
        false,
    );
    let id = lab
        .enqueue(json!({"image": "fails", "tags": "board:demo"}))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "workload_finished_error", "{job}");
    assert!(lab.console(&id).await.contains("about to fail"));
    let (_, events) = lab
        .call(Method::GET, &format!("/jobs/{id}/events"), Value::Null)
        .await;
    assert!(
        events.to_string().contains("exited with code 3"),
        "{events}"
    );

    // The workload's own report wins, and ends the job at once (no 30 s sleep).
    let t0 = std::time::Instant::now();
    let id = lab
        .enqueue(json!({"image": "reports", "tags": "board:demo"}))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "workload_finished_error", "{job}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    let (_, events) = lab
        .call(Method::GET, &format!("/jobs/{id}/events"), Value::Null)
        .await;
    assert!(
        events.to_string().contains("2 of 9 tests failed"),
        "{events}"
    );

    let id = lab
        .enqueue(json!({"image": "quits", "tags": "board:demo"}))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "workload_finished_unknown", "{job}");
}

/// Forks a background process that ignores SIGTERM, records its pid, then waits.
const FORKS: &str = r#"#!/bin/sh
(trap '' TERM; exec sleep 300) &
echo $! > "$(cat "$PADDOCK_PARAMETERS_DIR/pidfile")"
echo forked
wait
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_queued_starting_and_running_jobs_leaves_no_process() {
    let mut lab = Lab::start().await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image("forks", FORKS, false);
    // Never says ready: stays `initializing`, as a host that is still booting.
    lab.image(
        "boots",
        "#!/bin/sh\necho $$ > \"$(cat \"$PADDOCK_PARAMETERS_DIR/pidfile\")\"\nexec sleep 300\n",
        true,
    );

    // Running: cancel kills the whole process group, the forked child included.
    let pidfile = lab.path().join("bg.pid");
    let running = lab
        .enqueue(json!({"image": "forks", "tags": "board:demo",
            "parameters": {"pidfile": {"value": pidfile.display().to_string()}}}))
        .await;
    lab.wait_state(&running, "ready", Duration::from_secs(20))
        .await;
    let bg = read_pid(&pidfile).await;
    assert!(alive(bg));
    // Queued behind it on the only supervisor.
    let queued = lab
        .enqueue(json!({"image": "forks", "tags": "board:demo"}))
        .await;
    assert_eq!(lab.job(&queued).await["execution_state"], "queued");
    lab.cancel(&queued).await;
    let job = lab.terminated(&queued).await;
    assert_eq!(job["exit_status"], "job_canceled");

    lab.cancel(&running).await;
    let job = lab.terminated(&running).await;
    assert_eq!(job["exit_status"], "job_canceled", "{job}");
    assert!(
        gone(bg).await,
        "the forked process {bg} survived the cancel"
    );
    assert!(lab.console(&running).await.contains("forked"));

    // Starting: the host is up but not ready.
    let pidfile = lab.path().join("boot.pid");
    let starting = lab
        .enqueue(json!({"image": "boots", "tags": "board:demo",
            "parameters": {"pidfile": {"value": pidfile.display().to_string()}}}))
        .await;
    let pid = read_pid(&pidfile).await;
    assert_eq!(lab.job(&starting).await["execution_state"], "initializing");
    lab.cancel(&starting).await;
    let job = lab.terminated(&starting).await;
    assert_eq!(job["exit_status"], "job_canceled", "{job}");
    assert!(gone(pid).await, "the booting workload {pid} survived");
    let jobs_dir = lab.sups[0].work.join("jobs");
    assert_eq!(std::fs::read_dir(&jobs_dir).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_unmatched_tags_and_tampered_blob() {
    let mut lab = Lab::start().await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image(
        "sleeps",
        "#!/bin/sh\necho $$ > \"$(cat \"$PADDOCK_PARAMETERS_DIR/pidfile\")\"\nexec sleep 300\n",
        false,
    );

    let pidfile = lab.path().join("sleep.pid");
    let id = lab
        .enqueue(
            json!({"image": "sleeps", "tags": "board:demo", "timeout_s": 2,
            "parameters": {"pidfile": {"value": pidfile.display().to_string()}}}),
        )
        .await;
    let pid = read_pid(&pidfile).await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "job_timeout", "{job}");
    assert!(gone(pid).await, "the timed-out workload survived");

    let id = lab
        .enqueue(json!({"image": "sleeps", "tags": "board:nowhere"}))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "supervisor_match_error", "{job}");

    // One byte of the blob changed after import: refused before anything runs.
    let image = lab.image("tampered", "#!/bin/sh\necho should never run\n", false);
    let manifest = lab.store.verified_image(&image.parse().unwrap()).unwrap();
    let blob = &manifest.blobs[0].1;
    let mut bytes = std::fs::read(blob).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(blob, bytes).unwrap();
    let id = lab
        .enqueue(json!({"image": image, "tags": "board:demo"}))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "supervisor_host_start_error", "{job}");
    assert!(
        job["status_message"]
            .as_str()
            .unwrap_or("")
            .contains("corrupt"),
        "{job}"
    );
    assert!(!lab.console(&id).await.contains("should never run"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_killed_mid_job_drops_it_and_gets_new_work_after_restart() {
    let mut lab = Lab::start().await;
    let s = lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image("forks", FORKS, false);
    lab.image("hello", "#!/bin/sh\necho hello again\n", false);
    let pidfile = lab.path().join("bg.pid");
    let id = lab
        .enqueue(json!({"image": "forks", "tags": "board:demo",
            "parameters": {"pidfile": {"value": pidfile.display().to_string()}}}))
        .await;
    lab.wait_state(&id, "ready", Duration::from_secs(20)).await;
    let bg = read_pid(&pidfile).await;
    lab.kill_supervisor(s);
    // The switchboard waits out the grace period (3 s here), then gives the job up.
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "supervisor_dropped_job", "{job}");
    assert!(
        alive(bg),
        "kill -9 leaves the workload behind for the restart to clean"
    );

    lab.start_supervisor(s).await;
    assert!(
        gone(bg).await,
        "the restarted supervisor did not clean up {bg}"
    );
    let id = lab
        .enqueue(json!({"image": "hello", "tags": "board:demo"}))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
    assert!(lab.console(&id).await.contains("hello again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_reconnects_and_reconciles_with_a_restarted_switchboard() {
    let mut lab = Lab::start().await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image(
        "waits",
        "#!/bin/sh\necho started\nwhile [ ! -e \"$(cat \"$PADDOCK_PARAMETERS_DIR/go\")\" ]; do sleep 0.1; done\necho finishing\n",
        false,
    );
    // 1. A switchboard restart: the job keeps running, the supervisor reconnects with it in `hello`,
    //    and its result lands.
    let go = lab.path().join("go");
    let id = lab
        .enqueue(json!({"image": "waits", "tags": "board:demo",
            "parameters": {"go": {"value": go.display().to_string()}}}))
        .await;
    lab.wait_state(&id, "ready", Duration::from_secs(20)).await;
    lab.kill_switchboard();
    std::fs::write(&go, "").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    lab.restart_switchboard().await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
    assert!(lab.console(&id).await.contains("finishing"));

    // 2. The supervisor frozen (SIGSTOP) past the grace period: the switchboard gives the job
    //    up; when the supervisor comes back with the job in its `hello`, it is told to stop
    //    it, and the workload is killed.
    let pidfile = lab.path().join("p2");
    lab.image(
        "waits2",
        "#!/bin/sh\necho $$ > \"$(cat \"$PADDOCK_PARAMETERS_DIR/pidfile\")\"\nexec sleep 300\n",
        false,
    );
    let id = lab
        .enqueue(json!({"image": "waits2", "tags": "board:demo",
            "parameters": {"pidfile": {"value": pidfile.display().to_string()}}}))
        .await;
    lab.wait_state(&id, "ready", Duration::from_secs(20)).await;
    let pid = read_pid(&pidfile).await;
    let sup_pid = lab.sups[0].child.as_ref().unwrap().id().to_string();
    let signal = |sig: &str| {
        let st = std::process::Command::new("kill")
            .args([sig, &sup_pid])
            .status()
            .unwrap();
        assert!(st.success());
    };
    signal("-STOP");
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "supervisor_dropped_job", "{job}");
    assert!(alive(pid));
    signal("-CONT");
    assert!(gone(pid).await, "the unwanted job's workload still runs");
    // The supervisor is still usable.
    let id = lab
        .enqueue(json!({"image": "waits", "tags": "board:demo",
            "parameters": {"go": {"value": go.display().to_string()}}}))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
}

#[test]
fn check_config_names_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("supervisor.toml");
    let run = |text: &str| {
        std::fs::write(&conf, text).unwrap();
        std::process::Command::new(support::SUPERVISOR)
            .args(["check-config", "--config"])
            .arg(&conf)
            .output()
            .unwrap()
    };
    std::fs::write(dir.path().join("token"), "pds_x\n").unwrap();
    let good = "switchboard_url = \"http://127.0.0.1:8080\"\ntoken_file = \"token\"\nwork_dir = \"work\"\n";
    let out = run(good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("driver = local"));

    let out = run(&good.replace("http://", "ftp://"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("supervisor.toml") && err.contains("switchboard_url"),
        "{err}"
    );

    let out = run(&good.replace("\"token\"", "\"missing-token\""));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing-token"), "{err}");

    let out = run(&format!(
        "{good}[driver]\nkind = \"local\"\nstop_grace = 3\n"
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("supervisor.toml:6: unknown field `stop_grace`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_from_a_store_server_are_resolved_cached_and_run() {
    // A real `paddock-imagestore serve`, an image pushed with `paddock image push`.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("S");
    let token = paddock_imagestore_server::tokens::add(&root, "ci").unwrap();
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let bin = std::path::Path::new(support::PADDOCK).parent().unwrap();
    let mut server = std::process::Command::new(bin.join("paddock-imagestore"))
        .args(["serve", "--root"])
        .arg(&root)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{url}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let script = dir.path().join("remote.sh");
    std::fs::write(&script, "#!/bin/sh\necho from the store server\n").unwrap();
    let out = std::process::Command::new(support::PADDOCK)
        .args(["image", "push"])
        .arg(&script)
        .args(["--label", "remote", "--url", &url, "--token", &token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let mut lab = Lab::start_with(std::slice::from_ref(&url)).await;
    let s = lab.add_supervisor("s1", &["board:demo"]).await;
    // The label resolves at the store server; the supervisor fetches and caches the image.
    let job = lab
        .enqueue(json!({"image": "remote", "tags": "board:demo"}))
        .await;
    let j = lab.terminated(&job).await;
    assert_eq!(j["exit_status"], "workload_finished_success", "{j}");
    assert_eq!(j["image_id"], json!(id));
    assert!(lab.console(&job).await.contains("from the store server"));
    let cache_images = lab.sups[s].work.join("cache").join("images");
    assert!(cache_images.is_dir(), "the image was cached");
    // An image no store has: 404 at enqueue.
    let (status, v) = lab
        .call(
            Method::POST,
            "/jobs",
            json!({"image": "no-such-image", "tags": "board:demo"}),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    let _ = server.kill();
    let _ = server.wait();
}

/// At `RUST_LOG=trace` the WebSocket library logs every frame it reads or writes, `start_job`
/// with its secret parameters included, and the handshake with the supervisor's token
/// (issue 17). Neither process may log a secret at any level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_at_trace_level() {
    let options = LabOptions {
        rust_log: "trace".into(),
        ..LabOptions::default()
    };
    let mut lab = Lab::start_opts(&[], options).await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image("check", CHECKS_SECRET, false);
    let id = lab
        .enqueue(json!({
            "image": "check",
            "tags": "board:demo",
            "parameters": {
                "greeting": {"value": "hi"},
                "key": {"value": SECRET, "secret": true},
            },
        }))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
    assert!(lab.console(&id).await.contains("secret-ok"));
    let logs = lab.logs();
    assert!(
        logs.lines().filter(|l| l.contains(" TRACE ")).count() > 10,
        "trace lines were captured"
    );
    let sup_token = std::fs::read_to_string(lab.path().join("sups/s1/token")).unwrap();
    for (what, secret) in [
        ("the secret parameter", SECRET),
        ("the supervisor token", sup_token.trim()),
        ("the admin token", lab.admin.as_str()),
    ] {
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{what} is logged: {leaks:#?}");
    }
}

/// Console output a connected supervisor forwards is kept whole, even well past the
/// supervisor's in-flight budget (issue 11: 100 MB ended as 17.4 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_output_is_kept_whole_while_connected() {
    const TOTAL: usize = 24_000_000;
    let mut lab = Lab::start().await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image(
        "flood",
        &format!("#!/bin/sh\nhead -c {TOTAL} /dev/zero | tr '\\0' x\necho\necho end-of-flood\n"),
        false,
    );
    let id = lab
        .enqueue(json!({"image": "flood", "tags": "board:demo", "timeout_s": 300}))
        .await;
    let job = lab
        .wait_state(&id, "terminated", Duration::from_secs(120))
        .await;
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
    let console = lab.console(&id).await;
    assert!(!console.contains("[paddock:"), "output was dropped");
    assert_eq!(console.len(), TOTAL + "\nend-of-flood\n".len());
    assert!(console.ends_with("x\nend-of-flood\n"));
}

/// Past the switchboard's per-job `console_limit_bytes` output is dropped, and the console and
/// the job's events say exactly how much (issue 11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_past_the_job_limit_is_dropped_with_a_marker() {
    let options = LabOptions {
        switchboard_toml: "console_limit_bytes = 1000000\n".into(),
        supervisor_toml: "console_budget_bytes = 65536\n".into(),
        ..LabOptions::default()
    };
    let mut lab = Lab::start_opts(&[], options).await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image(
        "flood",
        "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' x\n",
        false,
    );
    let id = lab
        .enqueue(json!({"image": "flood", "tags": "board:demo"}))
        .await;
    let job = lab
        .wait_state(&id, "terminated", Duration::from_secs(60))
        .await;
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
    let marker = "[paddock: 2000000 bytes of console output dropped: the job's console limit of 1000000 bytes was reached]";
    let console = lab.console(&id).await;
    assert_eq!(
        console.len(),
        1_000_000 + 1 + marker.len() + 1,
        "{}",
        &console[1_000_000..]
    );
    assert!(console[..1_000_000].bytes().all(|b| b == b'x'));
    assert_eq!(&console[1_000_000..], format!("\n{marker}\n"));
    let (_, events) = lab
        .call(Method::GET, &format!("/jobs/{id}/events"), Value::Null)
        .await;
    let notes: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["message"] == json!(marker))
        .collect();
    assert_eq!(notes.len(), 1, "{events}");
}

/// Issue 15, item 1: `work_dir = "work"` is relative to the configuration file even when the
/// supervisor is started from another directory with a relative `--config`: the job runs, and
/// `check-config` prints the absolute directory the jobs will use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_work_dir_from_another_cwd_runs_jobs() {
    let mut lab = Lab::start().await;
    let cwd = lab.path().to_path_buf();
    lab.add_supervisor_in("rel", &["board:demo"], Some(&cwd))
        .await;
    lab.image("hello", "#!/bin/sh\necho hello-from-relative\n", false);
    let id = lab
        .enqueue(json!({"image": "hello", "tags": "board:demo"}))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
    let console = lab.console(&id).await;
    assert!(console.contains("hello-from-relative"), "{console}");

    let out = std::process::Command::new(support::SUPERVISOR)
        .current_dir(&cwd)
        .args(["check-config", "--config", "sups/rel/supervisor.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let work = cwd.join("sups/rel/work");
    assert!(
        stdout.contains(&format!("work_dir = {}\n", work.display())),
        "{stdout}"
    );
}

/// Issue 15, item 17: `paddock job watch` streams the console while the job runs (not after
/// it ends), each byte once, with the states, and exits 0 for a successful job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_watch_streams_the_console_live() {
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    let mut lab = Lab::start().await;
    lab.add_supervisor("s1", &["board:demo"]).await;
    lab.image(
        "slow",
        "#!/bin/sh\necho first-line\nsleep 4\nprintf 'second-line no newline'\n",
        false,
    );
    let id = lab
        .enqueue(json!({"image": "slow", "tags": "board:demo"}))
        .await;
    let mut watch = std::process::Command::new(support::PADDOCK)
        .args(["job", "watch", &id])
        .env("PADDOCK_URL", &lab.base)
        .env("PADDOCK_TOKEN", &lab.admin)
        .env("PADDOCK_CONFIG", lab.path().join("no-client.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let out = out.clone();
        let mut stdout = watch.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let t0 = std::time::Instant::now();
    loop {
        let seen = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
        if seen.contains("first-line") {
            let job = lab.job(&id).await;
            assert_ne!(
                job["execution_state"], "terminated",
                "the first line came only after the end: {seen}"
            );
            break;
        }
        let job = lab.job(&id).await;
        assert_ne!(
            job["execution_state"], "terminated",
            "the job ended before watch printed its first line: {seen}"
        );
        assert!(t0.elapsed() < Duration::from_secs(20), "{seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = tokio::task::spawn_blocking(move || watch.wait_with_output().unwrap())
        .await
        .unwrap();
    reader.join().unwrap();
    let seen = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    assert!(
        status.status.success(),
        "{seen}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(seen.matches("first-line").count(), 1, "{seen}");
    assert_eq!(seen.matches("second-line no newline").count(), 1, "{seen}");
    for state in ["ready", "terminating", "terminated"] {
        assert!(seen.contains(state), "{state}: {seen}");
    }
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("workload_finished_success"),
        "{status:?}"
    );
}

/// Issue 15, items 15 and 19: `paddock supervisor set` changes tags, ACL (YAML or JSON file),
/// retirement, readiness and the comment through the API, printing the API's refusal;
/// `paddock supervisor list` shows KIND and AUDIT in aligned columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_set_changes_a_supervisor_and_list_shows_kind_and_audit() {
    let lab = Lab::start().await;
    let (s, v) = lab
        .call(
            Method::POST,
            "/supervisors",
            json!({"name": "a-long-supervisor-name", "site": "lab", "tags": ["board:demo"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = lab
        .call(
            Method::POST,
            "/users",
            json!({"name": "mgr", "privileges": ["manage_supervisors"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mgr = v["token"]["token"].as_str().unwrap().to_string();
    let run = |token: &str, args: &[&str]| {
        std::process::Command::new(support::PADDOCK)
            .args(args)
            .env("PADDOCK_URL", &lab.base)
            .env("PADDOCK_TOKEN", token)
            .env("PADDOCK_CONFIG", lab.path().join("no-client.toml"))
            .output()
            .unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let record = async || {
        let (s, v) = lab
            .call(Method::GET, &format!("/supervisors/{id}"), Value::Null)
            .await;
        assert_eq!(s, 200, "{v}");
        v
    };

    let yaml = lab.path().join("acl.yaml");
    std::fs::write(
        &yaml,
        "deny:\n  users: [bob]\nallow:\n  privileges: [submit_jobs]\n",
    )
    .unwrap();
    let out = run(
        &lab.admin,
        &[
            "supervisor",
            "set",
            "a-long-supervisor-name",
            "--tags",
            "board:x,site:y",
            "--acl-file",
            yaml.to_str().unwrap(),
            "--comment",
            "on loan to team b",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("comment:        on loan to team b"),
        "{}",
        text(&out.stdout)
    );
    let v = record().await;
    assert_eq!(v["tags"], json!(["board:x", "site:y"]), "{v}");
    assert_eq!(
        v["acl"],
        json!({"deny": {"users": ["bob"]}, "allow": {"privileges": ["submit_jobs"]}}),
        "{v}"
    );
    assert_eq!(v["comment"], "on loan to team b", "{v}");

    // JSON too; by id; the other fields stay.
    let json_acl = lab.path().join("acl.json");
    std::fs::write(&json_acl, r#"{"allow": {"users": ["ann"]}}"#).unwrap();
    let out = run(
        &lab.admin,
        &[
            "supervisor",
            "set",
            &id,
            "--acl-file",
            json_acl.to_str().unwrap(),
            "--retired",
            "true",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["acl"], json!({"allow": {"users": ["ann"]}}), "{v}");
    assert_eq!(v["retired"], true, "{v}");
    assert_eq!(v["tags"], json!(["board:x", "site:y"]), "{v}");

    // A bad ACL file is refused before any request, naming the file.
    std::fs::write(&json_acl, r#"{"allow": {"userz": ["ann"]}}"#).unwrap();
    let out = run(
        &lab.admin,
        &[
            "supervisor",
            "set",
            &id,
            "--acl-file",
            json_acl.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("acl.json"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(record().await["acl"], json!({"allow": {"users": ["ann"]}}));

    // Only an admin puts a supervisor in service: the API's 403 is printed.
    let out = run(
        &lab.admin,
        &["supervisor", "set", &id, "--ready-for-service", "false"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        &mgr,
        &["supervisor", "set", &id, "--ready-for-service", "true"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("403") && err.contains("only an admin may put a supervisor in service"),
        "{err}"
    );
    assert_eq!(record().await["ready_for_service"], false);
    let out = run(
        &mgr,
        &[
            "supervisor",
            "set",
            &id,
            "--retired",
            "false",
            "--comment",
            "",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = record().await;
    assert_eq!(v["retired"], false, "{v}");
    assert_eq!(v["comment"], Value::Null, "{v}");
    let out = run(&lab.admin, &["supervisor", "set", &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nothing to change"),
        "{}",
        text(&out.stderr)
    );

    // The list: KIND and AUDIT columns, each column starting at the same place on every line.
    let out = run(&lab.admin, &["supervisor", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines.len() >= 2, "{list}");
    for header in ["KIND", "READY", "AUDIT", "TAGS"] {
        let col = lines[0]
            .find(header)
            .unwrap_or_else(|| panic!("{header}: {list}"));
        for l in &lines[1..] {
            assert!(
                col == 0 || l.as_bytes().get(col - 1) == Some(&b' '),
                "{header} misaligned:\n{list}"
            );
        }
    }
    let row = lines
        .iter()
        .find(|l| l.contains("a-long-supervisor-name"))
        .unwrap();
    let audit = lines[0].find("AUDIT").unwrap();
    assert!(row[audit..].starts_with("ok "), "{list}");
    let kind = lines[0].find("KIND").unwrap();
    assert!(row[kind..].starts_with("- "), "{list}");
}
