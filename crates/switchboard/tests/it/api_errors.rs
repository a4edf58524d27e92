//! Bad input gets a clear answer: 400 with the column, 401 without detail, 403, 404, 413.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, IMAGE, TestApp};

async fn bad_input_answers(backend: Backend) {
    // A small body limit, so the oversized body below fits in the socket buffers and the 413 is
    // read back instead of racing a connection reset.
    let t = TestApp::start_with(backend, |c| c.max_body_bytes = 16 * 1024).await;
    let (s, v) = t.enqueue_as(&t.admin.clone(), "board:(x", json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("column 7"), "{v}");

    let (s, v) = t
        .admin(
            Method::POST,
            "/api/v1/jobs",
            Some(json!({"image": "not-a-digest", "tags": "a"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("image id"), "{v}");

    let (s, _) = t
        .admin(
            Method::GET,
            "/api/v1/jobs/0190b6d8-7c2e-7000-8000-000000000001",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .admin(
            Method::GET,
            "/api/v1/supervisors/0190b6d8-7c2e-7000-8000-000000000001",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t.admin(Method::GET, "/api/v1/jobs/not-a-uuid", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let huge = "x".repeat(32 * 1024);
    let (s, _) = t
        .admin(
            Method::POST,
            "/api/v1/jobs",
            Some(json!({"image": IMAGE, "tags": "a", "parameters": {"p": {"value": huge}}})),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);

    let (s, v) = t
        .admin(
            Method::POST,
            "/api/v1/jobs",
            Some(json!({"image": IMAGE, "tags": "a", "bogus": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("bogus"), "{v}");

    let (s, v) = t
        .enqueue_as(
            &t.admin.clone(),
            "a",
            json!({"parameters": {"../etc": {"value": "x"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}
both_backends!(bad_input_answers);

async fn walk_through_match_error_and_metrics(backend: Backend) {
    let t = TestApp::start(backend).await;
    let id = t.enqueue("board:nothing-has-this", json!({})).await;
    let j = t.job(&id).await;
    assert_eq!(j["execution_state"], "terminated");
    assert_eq!(j["exit_status"], "supervisor_match_error");
    let (s, events) = t
        .admin(Method::GET, &format!("/api/v1/jobs/{id}/events"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let states: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["queued", "terminated"]);

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
        metrics.contains("paddock_jobs{state=\"terminated\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("paddock_supervisors_connected 0"));
    assert!(metrics.contains("paddock_scheduling_latency_seconds_bucket{le=\"+Inf\"}"));
    let health = t
        .http
        .get(format!("{}/healthz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}
both_backends!(walk_through_match_error_and_metrics);

async fn list_filters_and_paginates(backend: Backend) {
    let t = TestApp::start(backend).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(t.enqueue("board:none", json!({})).await);
    }
    let (_, page1) = t.admin(Method::GET, "/api/v1/jobs?limit=2", None).await;
    let got: Vec<&str> = page1["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = t
        .admin(
            Method::GET,
            &format!("/api/v1/jobs?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    let got: Vec<&str> = page2["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let (_, q) = t
        .admin(Method::GET, "/api/v1/jobs?state=queued", None)
        .await;
    assert_eq!(q["jobs"].as_array().unwrap().len(), 0);
    let (s, _) = t
        .admin(Method::GET, "/api/v1/jobs?state=nonsense", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
both_backends!(list_filters_and_paginates);
