//! A job's access endpoint (`job_access` from its supervisor): stored with the job, shown in
//! `GET /jobs/{id}`, refused from another supervisor or when malformed, gone once the job
//! terminates; no event of its own.

use std::time::Duration;

use paddock_core::protocol::{AccessEndpoint, SupervisorMessage, SwitchboardMessage};
use paddock_core::{ExecutionState, ExitStatus, JobId};
use paddock_switchboard::sim::SimSupervisor;
use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, TestApp};

const T: Duration = Duration::from_secs(10);

fn access(job_id: JobId, host: &str, port: u16) -> SupervisorMessage {
    SupervisorMessage::JobAccess {
        job_id,
        access: AccessEndpoint {
            host: host.into(),
            port,
            user: "paddock".into(),
        },
    }
}

async fn start(sim: &mut SimSupervisor) -> JobId {
    loop {
        match sim.recv_timeout(T).await.unwrap() {
            SwitchboardMessage::StartJob(s) => return s.job_id,
            SwitchboardMessage::Config { .. } => continue,
            other => panic!("expected start_job, got {other:?}"),
        }
    }
}

async fn refused(sim: &mut SimSupervisor) -> String {
    loop {
        match sim.recv_timeout(T).await.unwrap() {
            SwitchboardMessage::Refused { reason, .. } => return reason,
            SwitchboardMessage::Config { .. } | SwitchboardMessage::Heartbeat => continue,
            other => panic!("expected refused, got {other:?}"),
        }
    }
}

async fn the_endpoint_lives_as_long_as_the_job(backend: Backend) {
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
    let job = start(&mut a).await;
    assert!(t.job(&id).await.get("access").is_none());
    let state = |s, x| SupervisorMessage::JobState {
        job_id: job,
        execution_state: Some(s),
        exit_status: x,
        message: None,
    };
    a.send(&state(ExecutionState::Initializing, None))
        .await
        .unwrap();
    a.send(&access(job, "rack1.lab", 42001)).await.unwrap();
    a.send(&state(ExecutionState::Ready, None)).await.unwrap();
    let j = t.wait_state(&id, "ready").await;
    assert_eq!(
        j["access"],
        json!({"host": "rack1.lab", "port": 42001, "user": "paddock"}),
        "{j}"
    );

    // Another supervisor cannot set it; a malformed one is refused; neither changes it.
    b.send(&access(job, "evil.example", 22)).await.unwrap();
    assert!(
        refused(&mut b)
            .await
            .contains("not running on this supervisor")
    );
    a.send(&access(job, "-oProxyCommand=touch /tmp/x", 22))
        .await
        .unwrap();
    assert!(refused(&mut a).await.contains("is not a host name"));
    assert_eq!(t.job(&id).await["access"]["host"], "rack1.lab");
    // Not an event: the log holds the states only.
    let (_, ev) = t
        .admin(Method::GET, &format!("/api/v1/jobs/{id}/events"), None)
        .await;
    assert_eq!(ev["events"].as_array().unwrap().len(), 4, "{ev}");

    a.send(&state(
        ExecutionState::Terminated,
        Some(ExitStatus::WorkloadFinishedSuccess),
    ))
    .await
    .unwrap();
    let j = t.wait_state(&id, "terminated").await;
    assert!(j.get("access").is_none(), "{j}");
    // Too late now.
    a.send(&access(job, "rack1.lab", 42002)).await.unwrap();
    let _ = refused(&mut a).await;
    assert!(t.job(&id).await.get("access").is_none());
    // The list shows the same.
    let (_, list) = t.admin(Method::GET, "/api/v1/jobs", None).await;
    assert!(!list.to_string().contains("rack1.lab"), "{list}");
}
both_backends!(the_endpoint_lives_as_long_as_the_job);
