//! `kill -9` of a real switchboard process in the middle of work, then a restart on the same
//! data directory: no job is lost or stuck, every job reaches `terminated` with a legal status.

#![allow(clippy::unwrap_used)]

mod shell;

const IMAGE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use paddock_core::protocol::{RunningJob, SupervisorMessage, SwitchboardMessage};
use paddock_core::{ExecutionState, ExitStatus, JobId};
use paddock_switchboard::sim::SimSupervisor;
use reqwest::Method;
use serde_json::json;
use tokio::sync::watch;

const BIN: &str = env!("CARGO_BIN_EXE_paddock-switchboard");

fn serve(dir: &std::path::Path, port: u16) -> Child {
    Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.join("switchboard.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("switchboard at {base} never became healthy");
}

/// A supervisor that reconnects forever, reports the job it holds in `hello`, marks jobs ready
/// at once and finishes them only once `release` is true.
async fn patient_supervisor(base: String, token: String, release: watch::Receiver<bool>) {
    let mut release = release;
    let mut running: Option<JobId> = None;
    loop {
        let hello: Vec<RunningJob> = running
            .iter()
            .map(|&job_id| RunningJob {
                job_id,
                execution_state: ExecutionState::Ready,
            })
            .collect();
        let Ok(mut sim) = SimSupervisor::connect(&base, &token, hello).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        loop {
            if *release.borrow()
                && let Some(job_id) = running.take()
            {
                let done = SupervisorMessage::JobState {
                    job_id,
                    execution_state: Some(ExecutionState::Terminated),
                    exit_status: Some(ExitStatus::WorkloadFinishedSuccess),
                    message: None,
                };
                if sim.send(&done).await.is_err() {
                    running = Some(job_id);
                    break;
                }
            }
            tokio::select! {
                msg = sim.recv() => match msg {
                    Ok(SwitchboardMessage::StartJob(s)) => {
                        let ready = SupervisorMessage::JobState { job_id: s.job_id, execution_state: Some(ExecutionState::Ready), exit_status: None, message: None };
                        if sim.send(&ready).await.is_ok() {
                            running = Some(s.job_id);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                },
                _ = release.changed() => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_job() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!(
            "data_dir = {:?}\nheartbeat_interval_s = 1\nsupervisor_grace_s = 3\nreaper_interval_ms = 100\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["user", "add", "admin", "--privilege", "admin", "--config"])
        .arg(dir.path().join("switchboard.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();

    let port = shell::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = serve(dir.path(), port);
    let http = reqwest::Client::new();
    wait_healthy(&http, &base).await;
    let call = |m: Method, path: String, body: serde_json::Value| {
        let http = http.clone();
        let (base, admin) = (base.clone(), admin.clone());
        async move {
            let r = http
                .request(m, format!("{base}{path}"))
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            let s = r.status();
            let v: serde_json::Value = r.json().await.unwrap();
            assert!(s.is_success(), "{path}: {s} {v}");
            v
        }
    };
    let add = |name: &'static str, tag: &'static str| {
        call(
            Method::POST,
            "/api/v1/supervisors".into(),
            json!({"name": name, "site": "lab", "tags": [tag]}),
        )
    };
    let a = add("a", "board:a").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let b = add("b", "board:b").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (release_tx, release_rx) = watch::channel(false);
    let sup_a = tokio::spawn(patient_supervisor(base.clone(), a, release_rx.clone()));
    let sup_b = tokio::spawn(patient_supervisor(base.clone(), b, release_rx));
    let enqueue = |tags: &'static str| {
        call(
            Method::POST,
            "/api/v1/jobs".into(),
            json!({"image": IMAGE, "tags": tags}),
        )
    };
    let job_a = enqueue("board:a").await["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let job_b = enqueue("board:b").await["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut queued = Vec::new();
    for _ in 0..5 {
        queued.push(
            enqueue("board:a").await["job_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let state = |id: String| async move {
        call(Method::GET, format!("/api/v1/jobs/{id}"), json!(null)).await
    };
    for id in [&job_a, &job_b] {
        for _ in 0..200 {
            if state(id.clone()).await["execution_state"] == "ready" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(state(id.clone()).await["execution_state"], "ready");
    }

    // kill -9 in the middle of work; supervisor b dies with it.
    child.kill().unwrap();
    child.wait().unwrap();
    sup_b.abort();
    let mut child = serve(dir.path(), port);
    wait_healthy(&http, &base).await;
    release_tx.send(true).unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let all: Vec<String> = [job_a.clone(), job_b.clone()]
        .into_iter()
        .chain(queued.iter().cloned())
        .collect();
    loop {
        let mut done = true;
        for id in &all {
            done &= state(id.clone()).await["execution_state"] == "terminated";
        }
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs stuck after restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state(job_a).await["exit_status"],
        "workload_finished_success"
    );
    assert_eq!(state(job_b).await["exit_status"], "supervisor_dropped_job");
    for id in queued {
        assert_eq!(state(id).await["exit_status"], "workload_finished_success");
    }
    sup_a.abort();
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A desired state of `n` supervisors named `{prefix}-{k}` on one site, ids unique to `batch`.
fn big_state(batch: usize, n: usize) -> serde_json::Value {
    let mut y = String::from("supervisors:\n");
    for k in 0..n {
        y.push_str(&format!(
            "  - id: 0192f3a0-{batch:04x}-7000-8000-{k:012x}\n    name: b{batch}-{k}\n    kind: local\n    tags: [site:big, n:{k}]\n"
        ));
    }
    let files = vec![
        (
            "db/switchboard.yaml".to_string(),
            "users:\n  - name: admin\n    privileges: [admin]\n".to_string(),
        ),
        ("db/sites/big.yaml".to_string(), y),
    ];
    serde_json::to_value(paddock_core::deployments::load(&files).unwrap()).unwrap()
}

/// `kill -9` of the switchboard while it applies a deployments state, at several points of
/// the apply: after the restart the state is either all there (the commit and every
/// supervisor) or not at all (the previous commit, none of its supervisors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_deployment_apply_leaves_all_or_nothing() {
    const N: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!("data_dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["user", "add", "admin", "--privilege", "admin", "--config"])
        .arg(dir.path().join("switchboard.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let admin = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let port = shell::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = serve(dir.path(), port);
    wait_healthy(&http, &base).await;
    let apply = |batch: usize, generation: i64| {
        let (http, base, admin) = (http.clone(), base.clone(), admin.clone());
        // Serialized before the clock starts: only the switchboard's work is timed.
        let body = serde_json::to_vec(&json!({
            "commit": format!("c{batch}"),
            "generation": generation,
            "state": big_state(batch, N),
        }))
        .unwrap();
        async move {
            http.post(format!("{base}/api/v1/deployment"))
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .ok()
                .map(|r| r.status())
        }
    };
    let live = async || -> (String, i64, Vec<String>) {
        let get = |path: &str| {
            http.get(format!("{base}/api/v1{path}"))
                .bearer_auth(&admin)
                .send()
        };
        let d: serde_json::Value = get("/deployment").await.unwrap().json().await.unwrap();
        let s: serde_json::Value = get("/supervisors").await.unwrap().json().await.unwrap();
        let names = s["supervisors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["retired"] == false)
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        (
            d["commit"].as_str().unwrap().to_string(),
            d["generation"].as_i64().unwrap(),
            names,
        )
    };

    assert_eq!(apply(0, 1).await, Some(reqwest::StatusCode::OK));
    // An apply like the ones killed below (N retired, N added), left alone, to know how long
    // one takes here.
    let request = apply(9, 2);
    let t0 = std::time::Instant::now();
    assert_eq!(request.await, Some(reqwest::StatusCode::OK));
    let full = t0.elapsed();
    let (commit, _, names) = live().await;
    assert_eq!((commit.as_str(), names.len()), ("c9", N));

    let mut interrupted = 0;
    for (batch, fraction) in [(1, 0.1), (2, 0.3), (3, 0.5), (4, 0.7), (5, 0.9), (6, 1.5)] {
        let (before, generation, _) = live().await;
        let request = apply(batch, generation + 1);
        let request = tokio::spawn(request);
        tokio::time::sleep(full.mul_f64(fraction)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        let answered = request.await.unwrap();
        child = serve(dir.path(), port);
        wait_healthy(&http, &base).await;
        let (commit, _, names) = live().await;
        let prefix = format!("b{batch}-");
        let new = names.iter().filter(|n| n.starts_with(&prefix)).count();
        if commit == format!("c{batch}") {
            assert_eq!((new, names.len()), (N, N), "applied, so wholly");
        } else {
            assert_eq!(commit, before, "neither the old nor the new commit");
            assert_eq!(new, 0, "{new} supervisors of an apply that did not commit");
            assert_eq!(names.len(), N, "the previous state is intact");
            interrupted += 1;
        }
        eprintln!("kill at {fraction} of {full:?}: answer {answered:?}, live commit {commit}");
    }
    // The kills are spread over one apply's duration: some land before the commit.
    assert!(interrupted > 0, "no kill landed before an apply committed");
    child.kill().unwrap();
    child.wait().unwrap();
}
