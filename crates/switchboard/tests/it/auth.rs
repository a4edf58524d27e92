//! Tokens, privileges, passwords: 401 without detail, 403 for a missing privilege, revocation,
//! expiry, and no route reachable without the guard.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, TestApp};

async fn tokens_and_privileges(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (s, v) = t.req(Method::GET, "/api/v1/jobs", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "unauthorized");
    let (s, v) = t
        .req(Method::GET, "/api/v1/jobs", Some("pdk_0000"), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "unauthorized");

    let viewer = t.user("viewer", &["list_jobs"]).await;
    let (s, v) = t.enqueue_as(&viewer, "a", json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = t
        .req(Method::GET, "/api/v1/users", Some(&viewer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .req(Method::GET, "/api/v1/jobs", Some(&viewer), None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // A submitter sees only its own jobs; others' are 404.
    let alice = t.user("alice", &["submit_jobs"]).await;
    let bob = t.user("bob", &["submit_jobs"]).await;
    let (s, v) = t.enqueue_as(&alice, "board:none", json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = v["job_id"].as_str().unwrap().to_string();
    let (s, _) = t
        .req(Method::GET, &format!("/api/v1/jobs/{id}"), Some(&bob), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .req(
            Method::GET,
            &format!("/api/v1/jobs/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, list) = t.req(Method::GET, "/api/v1/jobs", Some(&bob), None).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0);

    // Revocation: a revoked token is a plain 401.
    let (_, me) = t.req(Method::GET, "/api/v1/whoami", Some(&bob), None).await;
    let token_id = me["token_id"].as_str().unwrap();
    let (s, _) = t
        .req(
            Method::DELETE,
            &format!("/api/v1/tokens/{token_id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.req(Method::GET, "/api/v1/whoami", Some(&bob), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Expiry.
    let (s, v) = t
        .req(
            Method::POST,
            "/api/v1/tokens",
            Some(&alice),
            Some(json!({"expires_in_s": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let short = v["token"].as_str().unwrap().to_string();
    let (s, _) = t
        .req(Method::GET, "/api/v1/whoami", Some(&short), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, _) = t
        .req(Method::GET, "/api/v1/whoami", Some(&short), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A supervisor token is not a user token.
    let (_, sup_token) = t.add_supervisor("s1", &["a"]).await;
    let (s, _) = t
        .req(Method::GET, "/api/v1/jobs", Some(&sup_token), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
both_backends!(tokens_and_privileges);

async fn every_api_route_needs_a_token(backend: Backend) {
    let t = TestApp::start(backend).await;
    let id = "0190b6d8-7c2e-7000-8000-000000000001";
    let routes = [
        (Method::GET, "/api/v1/whoami".to_string()),
        (Method::POST, "/api/v1/tokens".to_string()),
        (Method::DELETE, "/api/v1/tokens/abc".to_string()),
        (Method::GET, "/api/v1/users".to_string()),
        (Method::POST, "/api/v1/users".to_string()),
        (Method::POST, "/api/v1/jobs".to_string()),
        (Method::GET, "/api/v1/jobs".to_string()),
        (Method::GET, format!("/api/v1/jobs/{id}")),
        (Method::GET, format!("/api/v1/jobs/{id}/events")),
        (Method::GET, format!("/api/v1/jobs/{id}/console")),
        (Method::POST, format!("/api/v1/jobs/{id}/cancel")),
        (Method::GET, "/api/v1/supervisors".to_string()),
        (Method::POST, "/api/v1/supervisors".to_string()),
        (Method::GET, format!("/api/v1/supervisors/{id}")),
        (Method::PATCH, format!("/api/v1/supervisors/{id}")),
        (Method::GET, "/api/v1/supervisor/socket".to_string()),
    ];
    for (m, path) in routes {
        let (s, _) = t.req(m.clone(), &path, None, Some(json!({}))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {path}");
    }
}
both_backends!(every_api_route_needs_a_token);

async fn login_with_password(backend: Backend) {
    let t = TestApp::start(backend).await;
    let name: paddock_core::Name = "admin".parse().unwrap();
    let hash = paddock_switchboard::auth::hash_password("s3cret-pass").unwrap();
    t.app.db.set_password_hash(&name, &hash).await.unwrap();
    let (s, v) = t
        .req(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"user": "admin", "password": "wrong"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "unauthorized");
    let (s, _) = t
        .req(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"user": "nobody", "password": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = t
        .req(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"user": "admin", "password": "s3cret-pass"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = v["token"].as_str().unwrap();
    let (s, me) = t
        .req(Method::GET, "/api/v1/whoami", Some(token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["user"], "admin");
}
both_backends!(login_with_password);
