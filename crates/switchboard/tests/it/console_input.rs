//! Console input (`POST /api/v1/jobs/{id}/console/input`, issue 17 item 5): only with the
//! privilege `console_input`, only for a job the caller may see whose host runs on a connected
//! supervisor, bounded, and delivered to that supervisor as `console_input`.

use std::time::Duration;

use paddock_core::protocol::{CONSOLE_INPUT_MAX, SupervisorMessage, SwitchboardMessage};
use paddock_core::{ExecutionState, ExitStatus, JobId};
use paddock_switchboard::sim::{SimError, SimSupervisor};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, TestApp};

const T: Duration = Duration::from_secs(10);

fn report(job_id: JobId, s: ExecutionState) -> SupervisorMessage {
    SupervisorMessage::JobState {
        job_id,
        execution_state: Some(s),
        exit_status: (s == ExecutionState::Terminated)
            .then_some(ExitStatus::WorkloadFinishedSuccess),
        message: None,
    }
}

/// A supervisor `s1` (tags `board:x`), connected, and a job of `owner` it runs (`ready`).
async fn running_job(t: &TestApp, owner: &str) -> (SimSupervisor, String, JobId) {
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let (s, v) = t.enqueue_as(owner, "board:x", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["job_id"].as_str().unwrap().to_string();
    let job = loop {
        if let SwitchboardMessage::StartJob(s) = sim.recv_timeout(T).await.unwrap() {
            break s.job_id;
        }
    };
    for s in [ExecutionState::Initializing, ExecutionState::Ready] {
        sim.send(&report(job, s)).await.unwrap();
    }
    t.wait_state(&id, "ready").await;
    (sim, id, job)
}

async fn send_input(t: &TestApp, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    t.req(
        Method::POST,
        &format!("/api/v1/jobs/{id}/console/input"),
        Some(token),
        Some(body),
    )
    .await
}

/// The next `console_input` the supervisor receives (configs skipped).
async fn next_input(sim: &mut SimSupervisor, d: Duration) -> Result<(JobId, String), SimError> {
    loop {
        match sim.recv_timeout(d).await? {
            SwitchboardMessage::ConsoleInput { job_id, data } => return Ok((job_id, data.0)),
            SwitchboardMessage::Config { .. } => continue,
            other => panic!("expected console_input, got {other:?}"),
        }
    }
}

async fn input_reaches_the_job_s_supervisor(backend: Backend) {
    let t = TestApp::start(backend).await;
    let alice = t.user("alice", &["submit_jobs", "console_input"]).await;
    let (mut sim, id, job) = running_job(&t, &alice).await;

    let (s, v) = send_input(&t, &alice, &id, json!({"data": "root\n"})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v, json!({"bytes": 5}));
    assert_eq!(
        next_input(&mut sim, T).await.unwrap(),
        (job, "root\n".to_string())
    );
    // The admin holds every privilege, and sees every job.
    let (s, v) = send_input(&t, &t.admin, &id, json!({"data": "é ü\r"})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(
        next_input(&mut sim, T).await.unwrap(),
        (job, "é ü\r".to_string())
    );
    // The bound itself is accepted.
    let full = "x".repeat(CONSOLE_INPUT_MAX);
    let (s, v) = send_input(&t, &alice, &id, json!({"data": full})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(next_input(&mut sim, T).await.unwrap().1, full);

    // Someone else's job is not visible without list_jobs: 404, nothing sent.
    let carol = t.user("carol", &["submit_jobs", "console_input"]).await;
    let (s, v) = send_input(&t, &carol, &id, json!({"data": "x\n"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // With list_jobs it is.
    let dave = t.user("dave", &["list_jobs", "console_input"]).await;
    let (s, v) = send_input(&t, &dave, &id, json!({"data": "d\n"})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(next_input(&mut sim, T).await.unwrap().1, "d\n");

    // The input is not stored: neither in the console nor in the events.
    let (_, ev) = t
        .admin(Method::GET, &format!("/api/v1/jobs/{id}/events"), None)
        .await;
    assert!(!ev.to_string().contains("root"), "{ev}");
    let console = t
        .http
        .get(format!("{}/api/v1/jobs/{id}/console", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(console.is_empty(), "{console:?}");
}
both_backends!(input_reaches_the_job_s_supervisor);

async fn input_needs_the_privilege(backend: Backend) {
    let t = TestApp::start(backend).await;
    // The job's owner, without console_input.
    let bob = t
        .user("bob", &["submit_jobs", "list_jobs", "cancel_jobs"])
        .await;
    let (mut sim, id, _) = running_job(&t, &bob).await;
    let (s, v) = send_input(&t, &bob, &id, json!({"data": "ls\n"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"], "missing privilege console_input", "{v}");
    // Nothing reached the supervisor.
    assert!(matches!(
        next_input(&mut sim, Duration::from_millis(500)).await,
        Err(SimError::Timeout)
    ));
    // Granting it is all that was missing.
    let bob2 = t.user("bob2", &["list_jobs", "console_input"]).await;
    let (s, v) = send_input(&t, &bob2, &id, json!({"data": "ls\n"})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(next_input(&mut sim, T).await.unwrap().1, "ls\n");
}
both_backends!(input_needs_the_privilege);

async fn input_needs_a_running_host_on_a_connected_supervisor(backend: Backend) {
    let t = TestApp::start(backend).await;
    // Queued: no supervisor matches yet (none has the tag).
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    let queued = t.enqueue("board:x", json!({})).await;
    let (s, v) = send_input(&t, &t.admin, &queued, json!({"data": "a\n"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("is queued"), "{v}");

    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let job = loop {
        if let SwitchboardMessage::StartJob(s) = sim.recv_timeout(T).await.unwrap() {
            break s.job_id;
        }
    };
    // Scheduled: the host is not started yet.
    let (s, v) = send_input(&t, &t.admin, &queued, json!({"data": "a\n"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("scheduled"), "{v}");
    // Initializing: a VM booting takes input (a boot loader's prompt).
    sim.send(&report(job, ExecutionState::Initializing))
        .await
        .unwrap();
    t.wait_state(&queued, "initializing").await;
    let (s, v) = send_input(&t, &t.admin, &queued, json!({"data": "b\n"})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(next_input(&mut sim, T).await.unwrap(), (job, "b\n".into()));
    sim.send(&report(job, ExecutionState::Ready)).await.unwrap();
    t.wait_state(&queued, "ready").await;

    // Its supervisor gone: 409, not a silent drop.
    sim.close().await;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let (s, v) = send_input(&t, &t.admin, &queued, json!({"data": "c\n"})).await;
        if s == StatusCode::CONFLICT {
            assert!(
                v["error"].as_str().unwrap().contains("not connected"),
                "{v}"
            );
            break;
        }
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert!(tokio::time::Instant::now() < deadline, "still accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Terminated: 409.
    let mut sim = SimSupervisor::connect(
        &t.base,
        &token,
        vec![paddock_core::protocol::RunningJob {
            job_id: job,
            execution_state: ExecutionState::Ready,
        }],
    )
    .await
    .unwrap();
    sim.send(&report(job, ExecutionState::Terminated))
        .await
        .unwrap();
    t.wait_state(&queued, "terminated").await;
    let (s, v) = send_input(&t, &t.admin, &queued, json!({"data": "d\n"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("terminated"), "{v}");
    // An unknown job: 404.
    let (s, _) = send_input(
        &t,
        &t.admin,
        "00000000-0000-0000-0000-000000000001",
        json!({"data": "d\n"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
both_backends!(input_needs_a_running_host_on_a_connected_supervisor);

async fn input_is_bounded(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (mut sim, id, _) = running_job(&t, &t.admin.clone()).await;
    let over = "x".repeat(CONSOLE_INPUT_MAX + 1);
    let (s, v) = send_input(&t, &t.admin, &id, json!({"data": over})).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("at most 4096"), "{v}");
    // A body far past any valid one is refused before it is read whole.
    let huge = "x".repeat(1 << 20);
    let (s, _) = send_input(&t, &t.admin, &id, json!({"data": huge})).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, v) = send_input(&t, &t.admin, &id, json!({"data": ""})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = send_input(&t, &t.admin, &id, json!({"data": "a", "echo": true})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("echo"), "{v}");
    let (s, _) = send_input(&t, &t.admin, &id, json!({"text": "a"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // None of it reached the supervisor.
    assert!(matches!(
        next_input(&mut sim, Duration::from_millis(500)).await,
        Err(SimError::Timeout)
    ));
}
both_backends!(input_is_bounded);
