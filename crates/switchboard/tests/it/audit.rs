//! `/api/v1/audit/reports`: reports kept with history; a check run with a hard failure keeps
//! the supervisor from new jobs until a passing run arrives.

use std::time::Duration;

use paddock_core::protocol::SwitchboardMessage;
use paddock_switchboard::sim::SimSupervisor;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, TestApp};

fn check_run(failures: u64, warnings: u64) -> Value {
    json!({
        "host": "root@10.0.0.7:22",
        "checks": [{"name": "kvm", "status": if failures > 0 { "FAIL" } else { "PASS" }, "detail": "…", "remediation": null}],
        "summary": {"checks": 1, "failures": failures, "warnings": warnings},
    })
}

async fn post(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.req(
        Method::POST,
        "/api/v1/audit/reports",
        Some(token),
        Some(body),
    )
    .await
}

async fn blocked(app: &TestApp, id: &str) -> bool {
    let (_, v) = app
        .admin(Method::GET, &format!("/api/v1/supervisors/{id}"), None)
        .await;
    v["audit_blocked"].as_bool().unwrap()
}

async fn a_failing_check_run_blocks_scheduling_until_one_passes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, token) = app.add_supervisor("gpu-01", &["board:h100"]).await;
    let mut sim = SimSupervisor::connect(&app.base, &token, vec![])
        .await
        .unwrap();
    let admin = app.admin.clone();

    // A check run with a hard failure: blocked.
    let (s, v) = post(
        &app,
        &admin,
        json!({"supervisor": "gpu-01", "kind": "check", "report": check_run(1, 0)}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["audit_blocked"], true);
    assert!(blocked(&app, &id).await);
    // A job for it waits: nothing is started while the host fails its baseline.
    let job = app.enqueue("board:h100", json!({})).await;
    let got = sim.recv_timeout(Duration::from_millis(700)).await;
    assert!(
        !matches!(got, Ok(SwitchboardMessage::StartJob(_))),
        "a blocked supervisor got a job: {got:?}"
    );
    assert_eq!(app.job(&job).await["execution_state"], "queued");
    // An inventory does not change the block.
    let inventory = json!({"format": "paddock-audit/1", "summary": {"verdict": "OK", "failures": 0, "warnings": 0, "findings": []}, "hardware": {}});
    let (s, v) = post(
        &app,
        &admin,
        json!({"supervisor": "gpu-01", "kind": "collect", "report": inventory}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["audit_blocked"], true);
    // A passing run (warnings only): unblocked, and the queued job starts.
    let (s, v) = post(
        &app,
        &admin,
        json!({"supervisor": "gpu-01", "kind": "check", "report": check_run(0, 2)}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["audit_blocked"], false);
    let start = loop {
        match sim.recv_timeout(Duration::from_secs(10)).await.unwrap() {
            SwitchboardMessage::StartJob(s) => break s,
            _ => continue,
        }
    };
    assert_eq!(start.job_id.to_string(), job);

    // History, newest first; one report whole.
    let (s, v) = app
        .admin(Method::GET, "/api/v1/audit/reports?supervisor=gpu-01", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = v["reports"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = list
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("check", "WARNING"), ("collect", "OK"), ("check", "FAILED")]
    );
    assert!(
        list[0].get("report").is_none(),
        "the list leaves the bodies out"
    );
    let (_, v) = app
        .admin(
            Method::GET,
            "/api/v1/audit/reports?supervisor=gpu-01&kind=check&limit=1",
            None,
        )
        .await;
    assert_eq!(v["reports"].as_array().unwrap().len(), 1);
    let first = list[2]["id"].as_i64().unwrap();
    let (s, v) = app
        .admin(Method::GET, &format!("/api/v1/audit/reports/{first}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["report"]["summary"]["failures"], 1);

    // The latest of each kind, whole.
    let (s, v) = app
        .admin(
            Method::GET,
            "/api/v1/audit/reports/latest?supervisor=gpu-01",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["check"]["verdict"], "WARNING");
    assert_eq!(v["check"]["report"]["summary"]["warnings"], 2);
    assert_eq!(v["collect"]["report"]["format"], "paddock-audit/1");

    // Refused: an unknown supervisor, a malformed report, a caller without the privilege.
    let (s, _) = post(
        &app,
        &admin,
        json!({"supervisor": "nope", "kind": "check", "report": check_run(0, 0)}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = post(
        &app,
        &admin,
        json!({"supervisor": "gpu-01", "kind": "check", "report": {"summary": {}}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = post(
        &app,
        &admin,
        json!({"supervisor": "gpu-01", "kind": "collect", "report": check_run(0, 0)}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let reader = app.user("reader", &["list_supervisors"]).await;
    let (s, _) = post(
        &app,
        &reader,
        json!({"supervisor": "gpu-01", "kind": "check", "report": check_run(0, 0)}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
both_backends!(a_failing_check_run_blocks_scheduling_until_one_passes);
