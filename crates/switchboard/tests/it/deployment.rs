//! `POST /api/v1/deployment`: a validated desired state applied in one transaction, idempotent,
//! never rolled back by an older generation, never half-applied.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, TestApp};

fn example_state() -> Value {
    let files = vec![
        (
            "db/switchboard.yaml".to_string(),
            include_str!("../../../../examples/deployments/db/switchboard.yaml").to_string(),
        ),
        (
            "db/sites/lab1.yaml".to_string(),
            include_str!("../../../../examples/deployments/db/sites/lab1.yaml").to_string(),
        ),
    ];
    serde_json::to_value(paddock_core::deployments::load(&files).unwrap()).unwrap()
}

async fn apply(app: &TestApp, commit: &str, generation: i64, state: &Value) -> (StatusCode, Value) {
    app.admin(
        Method::POST,
        "/api/v1/deployment",
        Some(json!({"commit": commit, "generation": generation, "state": state})),
    )
    .await
}

async fn supervisors(app: &TestApp) -> Vec<(String, bool)> {
    let (s, v) = app.admin(Method::GET, "/api/v1/supervisors", None).await;
    assert_eq!(s, StatusCode::OK);
    v["supervisors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["retired"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn apply_is_whole_idempotent_and_ordered(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut state = example_state();
    // One supervisor's credential declared by a hash of the test's own token; another's minted
    // again by an admin (a reset replaces a declared hash too).
    let declared = "pds_declared-token-for-the-test";
    state["sites"][0]["supervisors"][0]["token_sha256"] =
        json!(paddock_switchboard::auth::hash_token(declared));
    let (s, v) = apply(&app, "c1", 1, &state).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let summary: Vec<&str> = v["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(summary.contains(&"+ user alice"), "{summary:?}");
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("+ supervisor lab1/lab1-nrf52 ")),
        "{summary:?}"
    );
    assert_eq!(
        supervisors(&app).await,
        vec![
            ("lab1-local-1".into(), false),
            ("lab1-local-2".into(), false),
            ("lab1-nrf52".into(), false)
        ]
    );
    // Credentials: the declared hash works as it is; an admin can mint a new one
    // (`paddock supervisor token reset`, for a lost token or a supervisor declared without one).
    let db = &app.app.db;
    let hash = paddock_switchboard::auth::hash_token;
    let found = db
        .supervisor_by_token(&hash(declared))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.name.as_str(), "lab1-local-1");
    let id = "0192f3a0-0000-7000-8000-000000000002";
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/api/v1/supervisors/{id}/token"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let minted = v["token"].as_str().unwrap();
    let found = db
        .supervisor_by_token(&hash(minted))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.name.as_str(), "lab1-local-2");
    // The deployed user exists with its privileges.
    let (_, users) = app.admin(Method::GET, "/api/v1/users", None).await;
    assert!(users.to_string().contains("alice"), "{users}");

    // The same commit again: nothing changes.
    let (s, v) = apply(&app, "c1", 1, &state).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["summary"], json!([]));

    // A commit that drops a supervisor and changes another's tags.
    let mut next = state.clone();
    let sups = next["sites"][0]["supervisors"].as_array_mut().unwrap();
    sups.remove(1);
    sups[0]["tags"] = json!(["arch:x86_64", "os:linux", "site:lab1", "gpu:none"]);
    let (s, v) = apply(&app, "c2", 2, &next).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["summary"],
        json!([
            "~ supervisor lab1/lab1-local-1 (tags)",
            "- supervisor lab1-local-2 (0192f3a0-0000-7000-8000-000000000002) retired: no longer in the repo"
        ])
    );
    assert!(
        supervisors(&app)
            .await
            .contains(&("lab1-local-2".into(), true))
    );
    let (_, st) = app.admin(Method::GET, "/api/v1/deployment", None).await;
    assert_eq!(
        (st["commit"].as_str(), st["generation"].as_i64()),
        (Some("c2"), Some(2))
    );

    // An older generation never rolls the newer state back.
    let (s, v) = apply(&app, "c1", 1, &state).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        supervisors(&app)
            .await
            .contains(&("lab1-local-2".into(), true))
    );

    // Reverting (a new commit with the old content) brings the supervisor back.
    let (s, v) = apply(&app, "c3", 3, &state).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        supervisors(&app)
            .await
            .contains(&("lab1-local-2".into(), false))
    );

    // A state that collides with a supervisor added by hand is refused whole: the user it
    // also adds is not created either.
    app.add_supervisor("handmade", &["x"]).await;
    let mut clash = state.clone();
    clash["switchboard"]["users"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "newcomer", "privileges": []}));
    let mut extra = clash["sites"][0]["supervisors"][0].clone();
    extra["id"] = json!("0192f3a0-0000-7000-8000-0000000000aa");
    extra["name"] = json!("handmade");
    clash["sites"][0]["supervisors"]
        .as_array_mut()
        .unwrap()
        .push(extra);
    let (s, v) = apply(&app, "c4", 4, &clash).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains("handmade"), "{v}");
    let (_, users) = app.admin(Method::GET, "/api/v1/users", None).await;
    assert!(!users.to_string().contains("newcomer"), "{users}");
    let (_, st) = app.admin(Method::GET, "/api/v1/deployment", None).await;
    assert_eq!(st["commit"], "c3");

    // Only admins apply.
    let token = app.user("bob", &["manage_supervisors"]).await;
    let (s, _) = app
        .req(
            Method::POST,
            "/api/v1/deployment",
            Some(&token),
            Some(json!({"commit": "x", "generation": 9, "state": state})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
both_backends!(apply_is_whole_idempotent_and_ordered);

/// The next `config` message (heartbeats and others skipped).
async fn expect_config(
    sim: &mut paddock_switchboard::sim::SimSupervisor,
) -> (u64, serde_json::Value) {
    loop {
        match sim
            .recv_timeout(std::time::Duration::from_secs(10))
            .await
            .unwrap()
        {
            paddock_core::protocol::SwitchboardMessage::Config { generation, config } => {
                return (generation, config);
            }
            _ => continue,
        }
    }
}

async fn configs_and_instance_settings_follow_the_applied_state(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut state = example_state();
    let token = "pds_config-push-test-token";
    state["sites"][0]["supervisors"][2]["token_sha256"] =
        json!(paddock_switchboard::auth::hash_token(token));
    let (s, v) = apply(&app, "c1", 1, &state).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // On connecting, the declared supervisor gets its configuration.
    let mut sim = paddock_switchboard::sim::SimSupervisor::connect(&app.base, token, vec![])
        .await
        .unwrap();
    let (generation, config) = expect_config(&mut sim).await;
    assert_eq!(generation, 1);
    assert_eq!(config["name"], "lab1-nrf52");
    assert_eq!(config["kind"], "netboot");
    assert_eq!(config["pdu"]["name"], "rack1-pdu");
    assert_eq!(config["pdu"]["port"], "3");
    assert_eq!(config["image_stores"][0], "http://127.0.0.1:8081");

    // A change of this supervisor is pushed at once, with the new generation.
    state["sites"][0]["supervisors"][2]["tags"]
        .as_array_mut()
        .unwrap()
        .push(json!("fw:v2"));
    let (s, v) = apply(&app, "c2", 2, &state).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (generation, config) = expect_config(&mut sim).await;
    assert_eq!(generation, 2);
    assert!(
        config["tags"].as_array().unwrap().contains(&json!("fw:v2")),
        "{config}"
    );
    // A change of its site's PDU reaches it too; a change of another supervisor does not.
    state["sites"][0]["supervisors"][0]["comment"] = json!("another one");
    let (s, _) = apply(&app, "c3", 3, &state).await;
    assert_eq!(s, StatusCode::OK);
    state["sites"][0]["pdus"][0]["config"]["on"] = json!("echo on");
    let (s, _) = apply(&app, "c4", 4, &state).await;
    assert_eq!(s, StatusCode::OK);
    let (generation, config) = expect_config(&mut sim).await;
    assert_eq!(generation, 4, "c3 did not concern this supervisor");
    assert_eq!(config["pdu"]["config"]["on"], "echo on");

    // The instance ACL and the job defaults are the applied state's.
    let bob = app.user("bob", &["submit_jobs"]).await;
    let enqueue = async |token: &str| {
        let (s, v) = app.enqueue_as(token, "site:lab1", json!({})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        app.job(v["job_id"].as_str().unwrap()).await
    };
    let v = enqueue(&bob).await;
    assert_eq!(v["execution_state"], "queued", "{v}");
    assert_eq!(v["timeout_s"], 3600, "{v}");
    state["switchboard"]["acl"] =
        json!({"deny": {"users": ["bob"]}, "allow": {"privileges": ["submit_jobs"]}});
    state["switchboard"]["defaults"]["job_timeout_s"] = json!(120);
    let (s, v) = apply(&app, "c5", 5, &state).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v = enqueue(&bob).await;
    assert_eq!(v["exit_status"], "supervisor_match_error", "{v}");
    assert!(
        v["status_message"]
            .as_str()
            .unwrap()
            .starts_with("no supervisor matches site:lab1 for user bob: "),
        "{v}"
    );
    assert!(
        v["status_message"]
            .as_str()
            .unwrap()
            .contains("ACL denies: instance deny rule matched user bob"),
        "{v}"
    );
    let carol = app.user("carol", &["submit_jobs"]).await;
    let v = enqueue(&carol).await;
    assert_eq!(v["execution_state"], "queued", "{v}");
    assert_eq!(v["timeout_s"], 120, "{v}");
    // A default beyond the switchboard's own limit is refused whole.
    state["switchboard"]["defaults"]["job_timeout_s"] = json!(10_000_000);
    let (s, v) = apply(&app, "c6", 6, &state).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("defaults.job_timeout_s"),
        "{v}"
    );
    let (_, v) = app.admin(Method::GET, "/api/v1/deployment", None).await;
    assert_eq!(v["commit"], "c5");
}
both_backends!(configs_and_instance_settings_follow_the_applied_state);

async fn a_supervisor_retired_by_the_repo_finishes_its_job_and_gets_no_new_one(backend: Backend) {
    use paddock_core::ExecutionState;
    use paddock_core::protocol::{SupervisorMessage, SwitchboardMessage};
    let app = TestApp::start(backend).await;
    let mut state = example_state();
    let token = "pds_retire-test-token";
    state["sites"][0]["supervisors"][0]["token_sha256"] =
        json!(paddock_switchboard::auth::hash_token(token));
    state["sites"][0]["supervisors"][0]["tags"]
        .as_array_mut()
        .unwrap()
        .push(json!("only:me"));
    let (s, v) = apply(&app, "c1", 1, &state).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut sim = paddock_switchboard::sim::SimSupervisor::connect(&app.base, token, vec![])
        .await
        .unwrap();
    // The example's instance ACL admits holders of submit_jobs.
    let carol = app.user("carol", &["submit_jobs"]).await;
    let (s, v) = app.enqueue_as(&carol, "only:me", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["job_id"].as_str().unwrap().to_string();
    let start = loop {
        match sim
            .recv_timeout(std::time::Duration::from_secs(10))
            .await
            .unwrap()
        {
            SwitchboardMessage::StartJob(s) => break s,
            _ => continue,
        }
    };
    let report =
        |s: ExecutionState, x: Option<paddock_core::ExitStatus>| SupervisorMessage::JobState {
            job_id: start.job_id,
            execution_state: Some(s),
            exit_status: x,
            message: None,
        };
    sim.send(&report(ExecutionState::Initializing, None))
        .await
        .unwrap();
    sim.send(&report(ExecutionState::Ready, None))
        .await
        .unwrap();
    app.wait_state(&id, "ready").await;

    // The repo drops the supervisor: retired while its job runs.
    state["sites"][0]["supervisors"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let (s, v) = apply(&app, "c2", 2, &state).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["summary"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("- supervisor lab1-local-1")),
        "{v}"
    );
    assert_eq!(app.job(&id).await["execution_state"], "ready");
    // The job finishes normally.
    sim.send(&report(
        ExecutionState::Terminated,
        Some(paddock_core::ExitStatus::WorkloadFinishedSuccess),
    ))
    .await
    .unwrap();
    let j = app.wait_state(&id, "terminated").await;
    assert_eq!(j["exit_status"], "workload_finished_success");
    // Nothing new is scheduled on it: no other supervisor has its tag, so a new job cannot
    // match at all.
    let (s, v) = app.enqueue_as(&carol, "only:me", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let j = app.job(v["job_id"].as_str().unwrap()).await;
    assert_eq!(j["exit_status"], "supervisor_match_error", "{j}");
}
both_backends!(a_supervisor_retired_by_the_repo_finishes_its_job_and_gets_no_new_one);

/// Issue 16: a rejection carries at most 100 errors (more are cut, the count kept) and the
/// total; a client that sends no `total_errors` (the old wire format) still works. `GET
/// /deployment` and `/metrics` name the rejected commit with its total.
async fn rejections_are_bounded_and_keep_the_total(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (s, v) = apply(&app, "c1", 1, &example_state()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let lines: Vec<String> = (1..=150)
        .map(|i| format!("db/sites/lab1.yaml:{i}:1: supervisors: bad"))
        .collect();
    // The old wire format: every error, no total.
    let (s, v) = app
        .admin(
            Method::POST,
            "/api/v1/deployment/rejection",
            Some(json!({"commit": "bad1", "errors": lines})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let e = &v["last_error"];
    assert_eq!(e["commit"], "bad1");
    assert_eq!(e["errors"].as_array().unwrap().len(), 100, "{e}");
    assert_eq!(e["errors"][0], lines[0].as_str());
    assert_eq!(e["total_errors"], 150);

    // The bounded report of a commit with 180,000 errors; a long line is cut.
    let mut first = lines[..100].to_vec();
    first[1] = format!(
        "db/sites/lab1.yaml:2:1: kind: `{}` is not a host kind",
        "x".repeat(10_000)
    );
    let (s, v) = app
        .admin(
            Method::POST,
            "/api/v1/deployment/rejection",
            Some(json!({"commit": "bad2", "errors": first, "total_errors": 180_000})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, st) = app.admin(Method::GET, "/api/v1/deployment", None).await;
    let e = &st["last_error"];
    assert_eq!(
        (e["commit"].as_str(), e["total_errors"].as_i64()),
        (Some("bad2"), Some(180_000))
    );
    assert!(e["errors"][1].as_str().unwrap().len() <= 1024, "{e}");
    assert_eq!(st["commit"], "c1");
    let m = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(
            "paddock_deployment_rejected_errors{commit=\"bad2\",first=\"db/sites/lab1.yaml:1:1\"} 180000\n"
        ),
        "{m}"
    );

    // A commit id that is not one.
    let (s, _) = app
        .admin(
            Method::POST,
            "/api/v1/deployment/rejection",
            Some(json!({"commit": "x".repeat(200), "errors": ["a"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
both_backends!(rejections_are_bounded_and_keep_the_total);

/// Issue 15: `POST /deployment` takes a state up to the deployments limit even when it is over
/// the switchboard's general `max_body_bytes`; other bodies keep that limit.
async fn apply_takes_a_state_over_max_body_bytes(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.max_body_bytes = 16 * 1024).await;
    let mut state = example_state();
    let sups = state["sites"][0]["supervisors"].as_array_mut().unwrap();
    for i in 0..200 {
        sups.push(json!({
            "id": format!("0192f3a0-0000-7000-8000-{:012x}", 0x1000 + i),
            "name": format!("m{i}"),
            "kind": "local",
        }));
    }
    assert!(state.to_string().len() > 16 * 1024);
    let (s, v) = apply(&app, "big", 1, &state).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(supervisors(&app).await.len(), 203);
    let (s, _) = app
        .admin(
            Method::POST,
            "/api/v1/deployment/report",
            Some(json!({"pad": "x".repeat(20 * 1024)})),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}
both_backends!(apply_takes_a_state_over_max_body_bytes);

/// Issue 15, item 3: the deploy daemon withdraws a rejection no source holds any more
/// (`DELETE /deployment/rejection?commit=`), admin only, and only while the recorded one is
/// still of that commit: a newer rejection is never lost. `/metrics` follows.
async fn a_withdrawn_rejection_is_cleared_only_if_still_the_same(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (s, v) = apply(&app, "c1", 1, &example_state()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let commit = "c1+edits-0123456789ab";
    let (s, v) = app
        .admin(
            Method::POST,
            "/api/v1/deployment/rejection",
            Some(json!({"commit": commit, "errors": ["db/sites/lab1.yaml:1:1: x: bad"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let metrics = || async {
        app.http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(
        !metrics()
            .await
            .contains("paddock_deployment_rejected_errors 0\n")
    );

    // Not an admin: 403, nothing changes.
    let user = app.user("u", &["manage_supervisors"]).await;
    let path = "/api/v1/deployment/rejection?commit=c1%2Bedits-0123456789ab";
    let (s, _) = app.req(Method::DELETE, path, Some(&user), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Another commit: the recorded rejection stays.
    let (s, v) = app
        .admin(
            Method::DELETE,
            "/api/v1/deployment/rejection?commit=other",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["last_error"]["commit"], commit, "{v}");
    // No commit: 400.
    let (s, _) = app
        .admin(Method::DELETE, "/api/v1/deployment/rejection", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // The same commit: cleared, and again is harmless.
    for _ in 0..2 {
        let (s, v) = app.admin(Method::DELETE, path, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["last_error"].is_null(), "{v}");
        assert_eq!(v["commit"], "c1");
    }
    assert!(
        metrics()
            .await
            .contains("paddock_deployment_rejected_errors 0\n")
    );
}
both_backends!(a_withdrawn_rejection_is_cleared_only_if_still_the_same);

/// Issue 16: the deploy daemon's report is read as `paddock_core::api::deployment::Report`: one
/// with a field it does not know is refused (400) and the stored one stays; a stored report
/// that does not read as one any more (an older switchboard kept any JSON object) is shown as
/// `null`, and `GET /deployment` still answers.
async fn the_daemon_report_is_typed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let report = json!({
        "repo": "/srv/R.git",
        "branch": "main",
        "remote_commit": "c1",
        "remote_error": null,
        "worktree": null,
        "pending": null,
        "drift": null,
        "activation": null,
        "checked_at": 1,
    });
    let (s, v) = app
        .admin(
            Method::POST,
            "/api/v1/deployment/report",
            Some(report.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["report"], report);
    let mut misspelt = report.clone();
    misspelt["remote_comit"] = json!("c2");
    let (s, v) = app
        .admin(Method::POST, "/api/v1/deployment/report", Some(misspelt))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("remote_comit"), "{v}");
    let (_, st) = app.admin(Method::GET, "/api/v1/deployment", None).await;
    assert_eq!(st["report"], report);
    sqlx::query("UPDATE deployment SET report = $1 WHERE id = 1")
        .bind(json!({"free": "form"}).to_string())
        .execute(&app.app.db.pool)
        .await
        .unwrap();
    let (s, st) = app.admin(Method::GET, "/api/v1/deployment", None).await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert!(st["report"].is_null(), "{st}");
}
both_backends!(the_daemon_report_is_typed);
