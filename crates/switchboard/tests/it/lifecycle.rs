//! Jobs through the real supervisor WebSocket: scheduling, state reports, refused transitions,
//! console, secrets, cancel, timeouts, dropped jobs and reconcile.

use std::time::Duration;

use paddock_core::protocol::{ConsoleStream, RunningJob, SupervisorMessage, SwitchboardMessage};
use paddock_core::{ExecutionState, ExitStatus, JobId};
use paddock_switchboard::sim::SimSupervisor;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, TestApp};

const T: Duration = Duration::from_secs(10);

fn state(job_id: JobId, s: Option<ExecutionState>, x: Option<ExitStatus>) -> SupervisorMessage {
    SupervisorMessage::JobState {
        job_id,
        execution_state: s,
        exit_status: x,
        message: None,
    }
}

/// The supervisor reports the job finished successfully.
async fn finish(sim: &mut SimSupervisor, job_id: JobId) {
    let done = state(
        job_id,
        Some(ExecutionState::Terminated),
        Some(ExitStatus::WorkloadFinishedSuccess),
    );
    sim.send(&done).await.unwrap();
}

async fn expect_start(sim: &mut SimSupervisor) -> paddock_core::protocol::StartJob {
    loop {
        match sim.recv_timeout(T).await.unwrap() {
            SwitchboardMessage::StartJob(s) => return s,
            SwitchboardMessage::Config { .. } => continue,
            other => panic!("expected start_job, got {other:?}"),
        }
    }
}

async fn expect_stop(sim: &mut SimSupervisor, id: JobId) {
    loop {
        match sim.recv_timeout(T).await.unwrap() {
            SwitchboardMessage::StopJob { job_id, .. } if job_id == id => return,
            SwitchboardMessage::Refused { .. } => continue,
            other => panic!("expected stop_job, got {other:?}"),
        }
    }
}

async fn job_runs_end_to_end(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (_, token) = t
        .add_supervisor("s1", &["board:nrf52840dk", "site:lab"])
        .await;
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let id = t
        .enqueue(
            "board:nrf* & site:lab",
            json!({"parameters": {"visible": {"value": "v"}, "api_key": {"value": "hunter2", "secret": true}}}),
        )
        .await;
    let start = expect_start(&mut sim).await;
    assert_eq!(start.job_id.to_string(), id);
    assert_eq!(
        start.parameters["api_key"].value, "hunter2",
        "secrets reach the supervisor"
    );
    let j = t.job(&id).await;
    assert_eq!(j["execution_state"], "scheduled");
    assert!(
        !j.to_string().contains("hunter2"),
        "secret value must not be returned: {j}"
    );
    assert_eq!(j["parameters"]["visible"]["value"], "v");

    sim.send(&state(
        start.job_id,
        Some(ExecutionState::Initializing),
        None,
    ))
    .await
    .unwrap();
    sim.send(&state(start.job_id, Some(ExecutionState::Ready), None))
        .await
        .unwrap();
    sim.send(&SupervisorMessage::Console {
        job_id: start.job_id,
        stream: ConsoleStream::Stdout,
        data: "hello from the job\n".into(),
    })
    .await
    .unwrap();
    t.wait_state(&id, "ready").await;
    finish(&mut sim, start.job_id).await;
    let j = t.wait_state(&id, "terminated").await;
    assert_eq!(j["exit_status"], "workload_finished_success");

    let console = t
        .http
        .get(format!("{}/api/v1/jobs/{id}/console", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(console.text().await.unwrap(), "hello from the job\n");
    let (_, ev) = t
        .admin(Method::GET, &format!("/api/v1/jobs/{id}/events"), None)
        .await;
    let states: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["queued", "scheduled", "initializing", "ready", "terminated"]
    );
    assert!(!ev.to_string().contains("hunter2"));
    let metrics = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("paddock_scheduling_latency_seconds_count 1"),
        "{metrics}"
    );
    // The supervisor is free again: the next job goes to it.
    let id2 = t.enqueue("board:nrf52840dk", json!({})).await;
    assert_eq!(expect_start(&mut sim).await.job_id.to_string(), id2);
    // The secret is wiped from storage once the job is terminated.
    let stored = t.app.db.get_job(id.parse().unwrap()).await.unwrap();
    assert_eq!(stored.parameters["api_key"].value, "");
}
both_backends!(job_runs_end_to_end);

async fn illegal_reports_are_refused_and_supervisors_act_only_for_themselves(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (_, tok_a) = t.add_supervisor("a", &["board:a"]).await;
    let (_, tok_b) = t.add_supervisor("b", &["board:b"]).await;
    let mut a = SimSupervisor::connect(&t.base, &tok_a, vec![])
        .await
        .unwrap();
    let mut b = SimSupervisor::connect(&t.base, &tok_b, vec![])
        .await
        .unwrap();
    let id = t.enqueue("board:a", json!({})).await;
    let start = expect_start(&mut a).await;
    a.send(&state(
        start.job_id,
        Some(ExecutionState::Terminating),
        None,
    ))
    .await
    .unwrap();
    t.wait_state(&id, "terminating").await;
    // Terminating -> Ready is illegal.
    a.send(&state(start.job_id, Some(ExecutionState::Ready), None))
        .await
        .unwrap();
    match a.recv_timeout(T).await.unwrap() {
        SwitchboardMessage::Refused { job_id, reason } => {
            assert_eq!(job_id, Some(start.job_id));
            assert!(reason.contains("terminating -> ready"), "{reason}");
        }
        other => panic!("expected refused, got {other:?}"),
    }
    // Supervisor b cannot report for a's job.
    b.send(&state(
        start.job_id,
        Some(ExecutionState::Terminated),
        Some(ExitStatus::WorkloadFinishedError),
    ))
    .await
    .unwrap();
    assert!(matches!(
        b.recv_timeout(T).await.unwrap(),
        SwitchboardMessage::Refused { .. }
    ));
    b.send(&SupervisorMessage::Console {
        job_id: start.job_id,
        stream: ConsoleStream::Stdout,
        data: "x".into(),
    })
    .await
    .unwrap();
    assert!(matches!(
        b.recv_timeout(T).await.unwrap(),
        SwitchboardMessage::Refused { .. }
    ));
    let j = t.job(&id).await;
    assert_eq!(j["execution_state"], "terminating", "job unharmed: {j}");
    assert_eq!(j["exit_status"], serde_json::Value::Null);
    // A supervisor may not set a switchboard-only status.
    a.send(&state(start.job_id, None, Some(ExitStatus::JobCanceled)))
        .await
        .unwrap();
    assert!(matches!(
        a.recv_timeout(T).await.unwrap(),
        SwitchboardMessage::Refused { .. }
    ));
    let metrics = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("paddock_refused_transitions_total 3"),
        "{metrics}"
    );
}
both_backends!(illegal_reports_are_refused_and_supervisors_act_only_for_themselves);

async fn cancel_from_every_state(backend: Backend) {
    let t = TestApp::start(backend).await;
    // Queued (no supervisor connected, but one exists): straight to terminated.
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    let id = t.enqueue("board:x", json!({})).await;
    assert_eq!(t.job(&id).await["execution_state"], "queued");
    let (s, v) = t
        .admin(Method::POST, &format!("/api/v1/jobs/{id}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["execution_state"], "terminated");
    assert_eq!(v["exit_status"], "job_canceled");
    let (s, _) = t
        .admin(Method::POST, &format!("/api/v1/jobs/{id}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Running: the supervisor is told to stop; the workload's status does not override.
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    for reached in [
        None,
        Some(ExecutionState::Initializing),
        Some(ExecutionState::Ready),
        Some(ExecutionState::Terminating),
    ] {
        let id = t.enqueue("board:x", json!({})).await;
        let start = expect_start(&mut sim).await;
        if let Some(s) = reached {
            if s != ExecutionState::Initializing {
                sim.send(&state(
                    start.job_id,
                    Some(ExecutionState::Initializing),
                    None,
                ))
                .await
                .unwrap();
            }
            sim.send(&state(start.job_id, Some(s), None)).await.unwrap();
            t.wait_state(&id, s.as_str()).await;
        }
        let (s, v) = t
            .admin(Method::POST, &format!("/api/v1/jobs/{id}/cancel"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["exit_status"], "job_canceled");
        expect_stop(&mut sim, start.job_id).await;
        sim.send(&state(
            start.job_id,
            Some(ExecutionState::Terminated),
            Some(ExitStatus::WorkloadFinishedError),
        ))
        .await
        .unwrap();
        let j = t.wait_state(&id, "terminated").await;
        assert_eq!(j["exit_status"], "job_canceled", "{j}");
    }
}
both_backends!(cancel_from_every_state);

async fn timeouts(backend: Backend) {
    let t = TestApp::start_with(backend, |c| c.stop_grace_s = 1).await;
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    // Queue timeout: the only matching supervisor is not connected.
    let id = t.enqueue("board:x", json!({"queue_timeout_s": 1})).await;
    let j = t.wait_state(&id, "terminated").await;
    assert_eq!(j["exit_status"], "queue_timeout");

    // Job timeout: stop_job is sent; without an answer the job is terminated after the grace.
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let id = t.enqueue("board:x", json!({"timeout_s": 1})).await;
    let start = expect_start(&mut sim).await;
    sim.send(&state(start.job_id, Some(ExecutionState::Ready), None))
        .await
        .unwrap();
    expect_stop(&mut sim, start.job_id).await;
    assert_eq!(t.job(&id).await["exit_status"], "job_timeout");
    let j = t.wait_state(&id, "terminated").await;
    assert_eq!(j["exit_status"], "job_timeout");
}
both_backends!(timeouts);

async fn dropped_jobs_and_reconcile(backend: Backend) {
    let t = TestApp::start_with(backend, |c| {
        c.heartbeat_interval_s = 1;
        c.supervisor_grace_s = 3;
    })
    .await;
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;

    // Reconnect without a job that was ready: dropped at once.
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let id = t.enqueue("board:x", json!({})).await;
    let start = expect_start(&mut sim).await;
    sim.send(&state(start.job_id, Some(ExecutionState::Ready), None))
        .await
        .unwrap();
    t.wait_state(&id, "ready").await;
    sim.close().await;
    let unknown = JobId::new();
    let running = vec![RunningJob {
        job_id: unknown,
        execution_state: ExecutionState::Ready,
    }];
    let mut sim = SimSupervisor::connect(&t.base, &token, running)
        .await
        .unwrap();
    let j = t.wait_state(&id, "terminated").await;
    assert_eq!(j["exit_status"], "supervisor_dropped_job");
    // ...and a job the switchboard does not know is stopped.
    expect_stop(&mut sim, unknown).await;

    // Reconnect with the job still running: nothing is lost.
    let id = t.enqueue("board:x", json!({})).await;
    let start = expect_start(&mut sim).await;
    sim.send(&state(start.job_id, Some(ExecutionState::Ready), None))
        .await
        .unwrap();
    t.wait_state(&id, "ready").await;
    sim.close().await;
    let running = vec![RunningJob {
        job_id: start.job_id,
        execution_state: ExecutionState::Ready,
    }];
    let mut sim = SimSupervisor::connect(&t.base, &token, running)
        .await
        .unwrap();
    // Connected longer than the grace period: heartbeats keep the job alive.
    let _ = sim.recv_timeout(Duration::from_secs(4)).await;
    assert_eq!(t.job(&id).await["execution_state"], "ready");
    finish(&mut sim, start.job_id).await;
    assert_eq!(
        t.wait_state(&id, "terminated").await["exit_status"],
        "workload_finished_success"
    );

    // Gone longer than the grace period: dropped by the reaper.
    let id = t.enqueue("board:x", json!({})).await;
    let start = expect_start(&mut sim).await;
    sim.send(&state(start.job_id, Some(ExecutionState::Ready), None))
        .await
        .unwrap();
    t.wait_state(&id, "ready").await;
    sim.close().await;
    let j = t.wait_state(&id, "terminated").await;
    assert_eq!(j["exit_status"], "supervisor_dropped_job");
}
both_backends!(dropped_jobs_and_reconcile);

async fn scheduling_respects_tags_acl_priority_and_retirement(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (sup_id, token) = t.add_supervisor("s1", &["board:x"]).await;
    // An ACL that allows only alice on s1.
    let (s, _) = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/supervisors/{sup_id}"),
            Some(json!({"acl": {"allow": {"users": ["alice"]}}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let bob = t.user("bob", &["submit_jobs"]).await;
    let alice = t.user("alice", &["submit_jobs"]).await;
    let (_, v) = t.enqueue_as(&bob, "board:x", json!({})).await;
    let bob_job = v["job_id"].as_str().unwrap().to_string();
    assert_eq!(
        t.job(&bob_job).await["exit_status"],
        "supervisor_match_error"
    );

    // Priority, then age.
    let (_, v) = t.enqueue_as(&alice, "board:x", json!({})).await;
    let low = v["job_id"].as_str().unwrap().to_string();
    let (_, v) = t
        .enqueue_as(&alice, "board:x", json!({"priority": 5}))
        .await;
    let high = v["job_id"].as_str().unwrap().to_string();
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let first = expect_start(&mut sim).await;
    assert_eq!(first.job_id.to_string(), high);
    // Retire while running: the job finishes, nothing new is scheduled.
    let (s, _) = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/supervisors/{sup_id}"),
            Some(json!({"retired": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    finish(&mut sim, first.job_id).await;
    t.wait_state(&high, "terminated").await;
    let next = sim.recv_timeout(Duration::from_millis(1500)).await;
    assert!(
        matches!(next, Err(paddock_switchboard::sim::SimError::Timeout)),
        "{next:?} high={high} low={low}"
    );
    assert_eq!(t.job(&low).await["execution_state"], "queued");
    let (s, _) = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/supervisors/{sup_id}"),
            Some(json!({"retired": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(expect_start(&mut sim).await.job_id.to_string(), low);
}
both_backends!(scheduling_respects_tags_acl_priority_and_retirement);

async fn events_stream_as_sse(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let id = t.enqueue("board:x", json!({})).await;
    let start = expect_start(&mut sim).await;
    let resp = t
        .http
        .get(format!("{}/api/v1/jobs/{id}/events", t.base))
        .bearer_auth(&t.admin)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    sim.send(&state(start.job_id, Some(ExecutionState::Ready), None))
        .await
        .unwrap();
    finish(&mut sim, start.job_id).await;
    // The stream ends by itself after the terminating event.
    let body = tokio::time::timeout(T, resp.text())
        .await
        .expect("stream ends")
        .unwrap();
    let states: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| {
            if d.contains("\"to_state\":\"") {
                d.split("\"to_state\":\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
            } else {
                ""
            }
        })
        .collect();
    assert_eq!(
        states,
        ["queued", "scheduled", "ready", "terminated"],
        "{body}"
    );
}
both_backends!(events_stream_as_sse);

async fn a_job_is_started_once_when_its_supervisor_connects(backend: Backend) {
    // Regression: the scheduler used to see a new connection before reconcile ran, and
    // reconcile then re-sent the start_job the scheduler had just sent.
    let t = TestApp::start(backend).await;
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    for _ in 0..5 {
        let id = t.enqueue("board:x", json!({})).await;
        let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
            .await
            .unwrap();
        assert_eq!(expect_start(&mut sim).await.job_id.to_string(), id);
        let next = sim.recv_timeout(Duration::from_millis(1200)).await;
        assert!(
            matches!(next, Err(paddock_switchboard::sim::SimError::Timeout)),
            "{next:?}"
        );
        let job_id: JobId = id.parse().unwrap();
        finish(&mut sim, job_id).await;
        t.wait_state(&id, "terminated").await;
        sim.close().await;
    }
}
both_backends!(a_job_is_started_once_when_its_supervisor_connects);

async fn status_reports_are_reconciled(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let id = t.enqueue("board:x", json!({})).await;
    let start = expect_start(&mut sim).await;
    sim.send(&state(start.job_id, Some(ExecutionState::Ready), None))
        .await
        .unwrap();
    t.wait_state(&id, "ready").await;
    // A status listing the job changes nothing; one listing an unknown job stops that job.
    let unknown = JobId::new();
    let running = vec![
        RunningJob {
            job_id: start.job_id,
            execution_state: ExecutionState::Ready,
        },
        RunningJob {
            job_id: unknown,
            execution_state: ExecutionState::Ready,
        },
    ];
    sim.send(&SupervisorMessage::Status {
        running_jobs: running,
    })
    .await
    .unwrap();
    expect_stop(&mut sim, unknown).await;
    assert_eq!(t.job(&id).await["execution_state"], "ready");
    // A status without the ready job: the supervisor dropped it.
    sim.send(&SupervisorMessage::Status {
        running_jobs: vec![],
    })
    .await
    .unwrap();
    let j = t.wait_state(&id, "terminated").await;
    assert_eq!(j["exit_status"], "supervisor_dropped_job");
}
both_backends!(status_reports_are_reconciled);

async fn a_silent_supervisor_is_disconnected(backend: Backend) {
    let t = TestApp::start_with(backend, |c| {
        c.heartbeat_interval_s = 1;
        c.supervisor_grace_s = 3;
    })
    .await;
    let (sup_id, token) = t.add_supervisor("s1", &["board:x"]).await;
    // Connected, then silent: this client never reads, so it never answers a heartbeat.
    let _sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let path = format!("/api/v1/supervisors/{sup_id}");
    assert_eq!(t.admin(Method::GET, &path, None).await.1["connected"], true);
    assert_eq!(t.app.hub.len(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while t.app.hub.len() == 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "silent supervisor never disconnected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        t.admin(Method::GET, &path, None).await.1["connected"],
        false
    );
}
both_backends!(a_silent_supervisor_is_disconnected);
