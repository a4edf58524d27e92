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

async fn wait_start(sim: &mut SimSupervisor) -> String {
    loop {
        match sim.recv_timeout(Duration::from_secs(10)).await.unwrap() {
            SwitchboardMessage::StartJob(s) => break s.job_id.to_string(),
            _ => continue,
        }
    }
}

/// No `start_job` for 700 ms (other messages, such as a configuration, are skipped).
async fn no_start(sim: &mut SimSupervisor, what: &str) {
    let until = tokio::time::Instant::now() + Duration::from_millis(700);
    while let Some(left) = until.checked_duration_since(tokio::time::Instant::now()) {
        match sim.recv_timeout(left).await {
            Ok(SwitchboardMessage::StartJob(s)) => panic!("{what}: {s:?}"),
            Ok(_) => continue,
            Err(_) => break,
        }
    }
}

fn inventory(verdict: &str) -> Value {
    json!({"format": "paddock-audit/1", "summary": {"verdict": verdict, "failures": 0, "warnings": 0, "findings": []}, "hardware": {}})
}

/// Issue 15 item 8: by default the gate is open (a host never checked gets jobs); with
/// `require_audit = "check_and_inventory"` a host needs a passing check run and no FAILED
/// inventory, and a match error names the gate.
async fn require_audit_closes_the_gate(backend: Backend) {
    // The default: fail-open, as documented.
    let app = TestApp::start(backend).await;
    let (_, token) = app.add_supervisor("never-checked", &["board:a"]).await;
    let mut sim = SimSupervisor::connect(&app.base, &token, vec![])
        .await
        .unwrap();
    let job = app.enqueue("board:a", json!({})).await;
    assert_eq!(wait_start(&mut sim).await, job);
    drop(sim);
    drop(app);

    let app = TestApp::start_with(backend, |c| {
        c.require_audit = paddock_core::deployments::RequireAudit::CheckAndInventory;
    })
    .await;
    let admin = app.admin.clone();
    let (_, token) = app.add_supervisor("gpu-01", &["board:a"]).await;
    let mut sim = SimSupervisor::connect(&app.base, &token, vec![])
        .await
        .unwrap();
    let job = app.enqueue("board:a", json!({})).await;
    no_start(&mut sim, "a host never checked got a job").await;
    assert_eq!(app.job(&job).await["execution_state"], "queued");
    let (s, v) = post(
        &app,
        &admin,
        json!({"supervisor": "gpu-01", "kind": "check", "report": check_run(0, 1)}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(wait_start(&mut sim).await, job);

    // A passing check run but a FAILED inventory: no job until an inventory is not FAILED.
    let (_, token) = app.add_supervisor("gpu-02", &["board:b"]).await;
    let mut sim2 = SimSupervisor::connect(&app.base, &token, vec![])
        .await
        .unwrap();
    for (kind, report) in [("check", check_run(0, 0)), ("collect", inventory("FAILED"))] {
        let (s, v) = post(
            &app,
            &admin,
            json!({"supervisor": "gpu-02", "kind": kind, "report": report}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let job = app.enqueue("board:b", json!({})).await;
    no_start(&mut sim2, "a host with a FAILED inventory got a job").await;
    let (s, v) = post(
        &app,
        &admin,
        json!({"supervisor": "gpu-02", "kind": "collect", "report": inventory("WARNING")}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(wait_start(&mut sim2).await, job);
    let (_, v) = app.admin(Method::GET, "/api/v1/supervisors", None).await;
    let gpu02 = v["supervisors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "gpu-02")
        .unwrap();
    assert_eq!(gpu02["audit_check_passed"], true, "{gpu02}");
    assert_eq!(gpu02["inventory_failed"], false, "{gpu02}");

    // The match error names the gate next to what refuses for good.
    let (id3, _) = app.add_supervisor("gpu-03", &["board:c"]).await;
    let (s, v) = app
        .admin(
            Method::PATCH,
            &format!("/api/v1/supervisors/{id3}"),
            Some(json!({"acl": {"deny": {"users": ["bob"]}}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let bob = app.user("bob", &["submit_jobs"]).await;
    let (_, v) = app.enqueue_as(&bob, "board:c", json!({})).await;
    let j = app.job(v["job_id"].as_str().unwrap()).await;
    assert_eq!(
        j["status_message"],
        "no supervisor matches board:c for user bob: gpu-03 (ACL denies: supervisor deny rule \
         matched user bob, no passing audit check run (require_audit: check_and_inventory)); \
         gpu-01 (tags do not match); gpu-02 (tags do not match)",
        "{j}"
    );
}
both_backends!(require_audit_closes_the_gate);

/// Issue 15 item 8: a site's `require_audit` in the deployments repo gates its supervisors,
/// and takes effect (and is lifted) at once with the apply.
async fn a_sites_require_audit_applies_with_the_deployment(backend: Backend) {
    let app = TestApp::start(backend).await;
    let files = vec![
        (
            "db/switchboard.yaml".to_string(),
            include_str!("../../../../examples/deployments/db/switchboard.yaml").to_string(),
        ),
        (
            "db/sites/lab1.yaml".to_string(),
            format!(
                "require_audit: check\n{}",
                include_str!("../../../../examples/deployments/db/sites/lab1.yaml")
            ),
        ),
    ];
    let loaded = paddock_core::deployments::load(&files).unwrap();
    assert_eq!(
        loaded.sites[0].require_audit,
        Some(paddock_core::deployments::RequireAudit::Check)
    );
    let mut state = serde_json::to_value(loaded).unwrap();
    let token = "pds_require-audit-test-token";
    state["sites"][0]["supervisors"][0]["token_sha256"] =
        json!(paddock_switchboard::auth::hash_token(token));
    let apply = async |commit: &str, generation: i64, state: &Value| {
        let body = json!({"commit": commit, "generation": generation, "state": state});
        let (s, v) = app
            .admin(Method::POST, "/api/v1/deployment", Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    };
    apply("c1", 1, &state).await;
    let mut sim = SimSupervisor::connect(&app.base, token, vec![])
        .await
        .unwrap();
    let job = app.enqueue("site:lab1 & os:linux", json!({})).await;
    no_start(&mut sim, "a host of a gated site got a job unchecked").await;
    state["sites"][0]
        .as_object_mut()
        .unwrap()
        .remove("require_audit");
    let v = apply("c2", 2, &state).await;
    assert!(
        v["summary"]
            .as_array()
            .unwrap()
            .contains(&json!("~ site lab1 require_audit")),
        "{v}"
    );
    assert_eq!(wait_start(&mut sim).await, job);
}
both_backends!(a_sites_require_audit_applies_with_the_deployment);
