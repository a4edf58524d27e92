//! Why a job matches no supervisor (issue 15 item 16), and what the supervisor record shows.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, TestApp};

async fn patch(t: &TestApp, id: &str, body: serde_json::Value) {
    let (s, v) = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/supervisors/{id}"),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn match_error_says_why_each_supervisor_was_refused(backend: Backend) {
    let t = TestApp::start(backend).await;
    let bob = t.user("bob", &["submit_jobs"]).await;
    let (_, _) = t.add_supervisor("a-other-board", &["board:x"]).await;
    let (deny, _) = t.add_supervisor("b-denies-bob", &["board:y"]).await;
    patch(&t, &deny, json!({"acl": {"deny": {"users": ["bob"]}}})).await;
    let (retired, _) = t.add_supervisor("c-retired", &["board:y"]).await;
    patch(&t, &retired, json!({"retired": true})).await;
    let (ann_only, _) = t.add_supervisor("d-ann-only", &["board:y"]).await;
    patch(
        &t,
        &ann_only,
        json!({"acl": {"allow": {"users": ["ann"]}}, "ready_for_service": false}),
    )
    .await;
    let (by_priv, _) = t.add_supervisor("e-no-submitters", &["board:y"]).await;
    patch(
        &t,
        &by_priv,
        json!({"acl": {"deny": {"privileges": ["submit_jobs"]}}}),
    )
    .await;

    let (s, v) = t.enqueue_as(&bob, "board:y", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let j = t.job(v["job_id"].as_str().unwrap()).await;
    assert_eq!(j["exit_status"], "supervisor_match_error", "{j}");
    assert_eq!(
        j["status_message"],
        "no supervisor matches board:y for user bob: \
         b-denies-bob (ACL denies: supervisor deny rule matched user bob); \
         c-retired (retired); \
         d-ann-only (ACL denies: no ACL rule matched and rules exist, not ready for service); \
         e-no-submitters (ACL denies: supervisor deny rule matched privilege submit_jobs); \
         a-other-board (tags do not match)",
        "{j}"
    );

    // The message stays bounded: ten supervisors named, the rest counted.
    for i in 0..12 {
        t.add_supervisor(&format!("z{i:02}"), &["board:z"]).await;
    }
    let (_, v) = t.enqueue_as(&bob, "board:y", json!({})).await;
    let j = t.job(v["job_id"].as_str().unwrap()).await;
    let msg = j["status_message"].as_str().unwrap();
    assert!(msg.ends_with("; and 7 more"), "{msg}");
    assert_eq!(msg.matches(" (").count(), 10, "{msg}");

    // A supervisor only out of service or audit-blocked is no match error: the job waits.
    patch(&t, &ann_only, json!({"acl": {}})).await;
    let (_, v) = t.enqueue_as(&bob, "board:y", json!({})).await;
    let j = t.job(v["job_id"].as_str().unwrap()).await;
    assert_eq!(j["execution_state"], "queued", "{j}");
}
both_backends!(match_error_says_why_each_supervisor_was_refused);

/// The supervisor record shows what the deployments repo declares of the host (kind, PDU, MAC,
/// comment), and a comment set by PATCH (issue 15 items 15 and 19).
async fn the_record_shows_kind_pdu_mac_and_comment(backend: Backend) {
    let t = TestApp::start(backend).await;
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
    let state = serde_json::to_value(paddock_core::deployments::load(&files).unwrap()).unwrap();
    let body = json!({"commit": "c1", "generation": 1, "state": state});
    let (s, v) = t
        .admin(Method::POST, "/api/v1/deployment", Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = "0192f3a0-0000-7000-8000-000000000003";
    let (s, v) = t
        .admin(Method::GET, &format!("/api/v1/supervisors/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["kind"], "netboot", "{v}");
    assert_eq!(v["pdu"], "rack1-pdu", "{v}");
    assert_eq!(v["pdu_port"], "3", "{v}");
    assert_eq!(v["mac"], "52:54:00:12:34:56", "{v}");
    assert_eq!(v["comment"], "waiting for its first boot test", "{v}");

    // The same state again changes nothing (the stored comment is the repo's).
    let body2 = json!({"commit": "c2", "generation": 2, "state": state});
    let (s, v) = t
        .admin(Method::POST, "/api/v1/deployment", Some(body2))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["changes"], json!([]), "{v}");

    // A supervisor added by hand: no declaration; a comment by PATCH, cleared by "".
    let (hand, _) = t.add_supervisor("by-hand", &["board:x"]).await;
    let (_, v) = t
        .admin(Method::GET, &format!("/api/v1/supervisors/{hand}"), None)
        .await;
    assert_eq!(v["kind"], json!(null), "{v}");
    assert_eq!(v["comment"], json!(null), "{v}");
    patch(&t, &hand, json!({"comment": "on loan to team b"})).await;
    let (_, v) = t
        .admin(Method::GET, &format!("/api/v1/supervisors/{hand}"), None)
        .await;
    assert_eq!(v["comment"], "on loan to team b", "{v}");
    assert_eq!(v["tags"], json!(["board:x"]), "the other fields stay: {v}");
    patch(&t, &hand, json!({"comment": ""})).await;
    let (_, v) = t
        .admin(Method::GET, &format!("/api/v1/supervisors/{hand}"), None)
        .await;
    assert_eq!(v["comment"], json!(null), "{v}");
}
both_backends!(the_record_shows_kind_pdu_mac_and_comment);
