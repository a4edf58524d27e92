//! Console storage (issue 11): everything up to the job's `console_limit_bytes` is kept; what
//! is dropped, past the limit or by a supervisor that could not deliver it, is counted exactly
//! and noted by a marker line in the console and an event of the job.

use std::time::Duration;

use paddock_core::protocol::{ConsoleStream, SupervisorMessage, SwitchboardMessage};
use paddock_core::{ExecutionState, ExitStatus, JobId};
use paddock_switchboard::sim::SimSupervisor;
use reqwest::Method;
use serde_json::json;

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

fn console(job_id: JobId, data: String) -> SupervisorMessage {
    SupervisorMessage::Console {
        job_id,
        stream: ConsoleStream::Stdout,
        data,
    }
}

async fn running_job(t: &TestApp) -> (SimSupervisor, String, JobId) {
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let id = t.enqueue("board:x", json!({})).await;
    let start = loop {
        if let SwitchboardMessage::StartJob(s) = sim.recv_timeout(T).await.unwrap() {
            break s;
        }
    };
    for s in [ExecutionState::Initializing, ExecutionState::Ready] {
        sim.send(&report(start.job_id, s)).await.unwrap();
    }
    t.wait_state(&id, "ready").await;
    (sim, id, start.job_id)
}

async fn console_text(t: &TestApp, id: &str) -> String {
    t.http
        .get(format!("{}/api/v1/jobs/{id}/console", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn event_messages(t: &TestApp, id: &str) -> Vec<String> {
    let (_, ev) = t
        .admin(Method::GET, &format!("/api/v1/jobs/{id}/events"), None)
        .await;
    ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

async fn output_past_the_limit_is_dropped_and_noted(backend: Backend) {
    let t = TestApp::start_with(backend, |c| c.console_limit_bytes = 100).await;
    let (mut sim, id, job) = running_job(&t).await;
    // 60 + 39 bytes fit; the two-byte 'é' would cross the limit: it and all after it are
    // dropped (22 + 30 bytes), never half a character.
    let chunks = [
        "a".repeat(60),
        format!("{}é{}", "b".repeat(39), "b".repeat(20)),
        "c".repeat(30),
    ];
    for c in chunks {
        sim.send(&console(job, c)).await.unwrap();
    }
    // A supervisor that lost output while disconnected says so; that note is kept whatever the
    // limit.
    sim.send(&SupervisorMessage::ConsoleDropped {
        job_id: job,
        bytes: 7,
        reason: "the switchboard was unreachable".into(),
    })
    .await
    .unwrap();
    // Another supervisor can add neither output nor notes to the job.
    let (_, token2) = t.add_supervisor("s2", &["board:y"]).await;
    let mut other = SimSupervisor::connect(&t.base, &token2, vec![])
        .await
        .unwrap();
    other.send(&console(job, "intruder".into())).await.unwrap();
    other
        .send(&SupervisorMessage::ConsoleDropped {
            job_id: job,
            bytes: 1,
            reason: "intruder".into(),
        })
        .await
        .unwrap();
    for _ in 0..2 {
        while !matches!(
            other.recv_timeout(T).await.unwrap(),
            SwitchboardMessage::Refused { .. }
        ) {}
    }
    sim.send(&report(job, ExecutionState::Terminated))
        .await
        .unwrap();
    t.wait_state(&id, "terminated").await;
    let from_supervisor =
        "[paddock: 7 bytes of console output dropped: the switchboard was unreachable]";
    let at_limit = "[paddock: 52 bytes of console output dropped: the job's console limit of 100 bytes was reached]";
    let deadline = tokio::time::Instant::now() + T;
    let text = loop {
        let text = console_text(&t, &id).await;
        if text.contains(at_limit) || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(
        text,
        format!(
            "{}{}\n{from_supervisor}\n\n{at_limit}\n",
            "a".repeat(60),
            "b".repeat(39)
        )
    );
    let messages = event_messages(&t, &id).await;
    for m in [from_supervisor, at_limit] {
        assert_eq!(
            messages.iter().filter(|x| *x == m).count(),
            1,
            "{messages:?}"
        );
    }
    // The job's state history is unchanged by the notes.
    let j = t.job(&id).await;
    assert_eq!(j["exit_status"], json!("workload_finished_success"));
    // A repeated terminated report notes nothing twice.
    sim.send(&report(job, ExecutionState::Terminated))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(console_text(&t, &id).await, text);
}
both_backends!(output_past_the_limit_is_dropped_and_noted);

async fn output_under_the_limit_is_kept_whole(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (mut sim, id, job) = running_job(&t).await;
    let mut expected = String::new();
    for i in 0..200 {
        let chunk = format!("{i:04} {}\n", "z".repeat(8000));
        expected.push_str(&chunk);
        sim.send(&console(job, chunk)).await.unwrap();
    }
    sim.send(&report(job, ExecutionState::Terminated))
        .await
        .unwrap();
    t.wait_state(&id, "terminated").await;
    let text = console_text(&t, &id).await;
    assert_eq!(text.len(), expected.len());
    assert!(text == expected, "the console differs");
    assert!(
        !event_messages(&t, &id)
            .await
            .iter()
            .any(|m| m.contains("[paddock:"))
    );
}
both_backends!(output_under_the_limit_is_kept_whole);
