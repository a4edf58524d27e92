//! Secret job parameters on disk: once the job terminates, the value is in no file of the
//! SQLite database (issue 9: copies stayed in the `-wal` for about 20 minutes).

use std::time::Duration;

use paddock_core::ExecutionState;
use paddock_core::protocol::{SupervisorMessage, SwitchboardMessage};
use paddock_switchboard::sim::SimSupervisor;
use serde_json::json;

use crate::common::{Backend, TestApp};

const T: Duration = Duration::from_secs(10);

fn report(job_id: paddock_core::JobId, s: ExecutionState) -> SupervisorMessage {
    SupervisorMessage::JobState {
        job_id,
        execution_state: Some(s),
        exit_status: (s == ExecutionState::Terminated)
            .then_some(paddock_core::ExitStatus::WorkloadFinishedSuccess),
        message: None,
    }
}

/// The database files of the test that hold `needle` in their raw bytes.
fn files_holding(t: &TestApp, needle: &str) -> Vec<String> {
    ["test.db", "test.db-wal", "test.db-shm"]
        .into_iter()
        .filter(|f| {
            std::fs::read(t.dir().join(f))
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_secret_is_in_no_sqlite_file() {
    const SECRET: &str = "wipe-me-7Qk2Xv9Lp3Zr";
    const SECRET2: &str = "never-matched-4Hn8Tq1";
    let t = TestApp::start(Backend::Sqlite).await;
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    let mut sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let id = t
        .enqueue(
            "board:x",
            json!({"parameters": {"key": {"value": SECRET, "secret": true}, "plain": {"value": "p"}}}),
        )
        .await;
    let start = loop {
        match sim.recv_timeout(T).await.unwrap() {
            SwitchboardMessage::StartJob(s) => break s,
            _ => continue,
        }
    };
    assert_eq!(start.parameters["key"].value, SECRET);
    for s in [ExecutionState::Initializing, ExecutionState::Ready] {
        sim.send(&report(start.job_id, s)).await.unwrap();
    }
    t.wait_state(&id, "ready").await;
    // The scan sees the value while the job needs it (so it would see a leftover copy).
    assert!(
        !files_holding(&t, SECRET).is_empty(),
        "the secret is stored while the job runs"
    );
    sim.send(&report(start.job_id, ExecutionState::Terminated))
        .await
        .unwrap();
    t.wait_state(&id, "terminated").await;

    // A job that terminates at enqueue (no supervisor could run it) is wiped too.
    let id2 = t
        .enqueue(
            "board:nowhere",
            json!({"parameters": {"key": {"value": SECRET2, "secret": true}}}),
        )
        .await;
    t.wait_state(&id2, "terminated").await;

    // The wipe and its checkpoint follow the commit at once; allow a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let left: Vec<(&str, Vec<String>)> = [SECRET, SECRET2]
            .into_iter()
            .map(|s| (s, files_holding(&t, s)))
            .filter(|(_, f)| !f.is_empty())
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "wiped secrets still in the database files: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The rest of the job is still there.
    assert_eq!(t.job(&id).await["parameters"]["plain"]["value"], "p");
}
