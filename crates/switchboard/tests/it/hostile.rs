//! Requests of a hostile (or careless) user that once got through: issue 14's switchboard items.
//! Each test names the item it guards.

use std::time::Duration;

use paddock_core::protocol::SwitchboardMessage;
use paddock_switchboard::sim::SimSupervisor;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, TestApp};

fn error(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

/// Item 1: a flat tag expression of 20,000 terms once overflowed a worker's stack and aborted
/// the switchboard. Now a 400 naming the limit, and the switchboard answers on.
async fn a_flat_tag_expression_of_thousands_of_terms_is_refused(backend: Backend) {
    let t = TestApp::start_with(backend, |c| c.max_body_bytes = 1024 * 1024).await;
    for op in [" & ", " | "] {
        let tags = vec!["board:x"; 20_000].join(op);
        let (s, v) = t.enqueue_as(&t.admin.clone(), &tags, json!({})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error(&v).contains("256 terms"), "{v}");
    }
    let (s, _) = t.admin(Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(s, StatusCode::OK, "the switchboard still answers");
    // The largest expression taken is stored, shown and matched.
    let tags = vec!["board:x"; 256].join(" & ");
    let id = t.enqueue(&tags, json!({})).await;
    let j = t.job(&id).await;
    assert_eq!(j["tags"], tags);
}
both_backends!(a_flat_tag_expression_of_thousands_of_terms_is_refused);

/// Item 5: `manage_supervisors` alone cannot put a supervisor in service nor take over one that
/// is, so it never receives other users' jobs (and their secrets).
async fn manage_supervisors_cannot_receive_other_users_jobs(backend: Backend) {
    let t = TestApp::start(backend).await;
    let mallory = t.user("mallory", &["manage_supervisors"]).await;
    let alice = t.user("alice", &["submit_jobs"]).await;
    let (real_id, real_token) = t.add_supervisor("real", &["board:lab"]).await;
    let _real = SimSupervisor::connect(&t.base, &real_token, vec![])
        .await
        .unwrap();

    // Registering one with the lab's tags: refused when asked to be in service...
    let body =
        json!({"name": "evil", "site": "lab", "tags": ["board:lab"], "ready_for_service": true});
    let (s, v) = t
        .req(
            Method::POST,
            "/api/v1/supervisors",
            Some(&mallory),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(error(&v).contains("admin"), "{v}");
    // ...and out of service by default.
    let body = json!({"name": "evil", "site": "lab", "tags": ["board:lab"]});
    let (s, v) = t
        .req(
            Method::POST,
            "/api/v1/supervisors",
            Some(&mallory),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let evil_id = v["id"].as_str().unwrap().to_string();
    let evil_token = v["token"].as_str().unwrap().to_string();
    let (s, v) = t
        .req(
            Method::GET,
            &format!("/api/v1/supervisors/{evil_id}"),
            Some(&mallory),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ready_for_service"], false, "{v}");
    // Putting it in service is the admin's.
    let (s, v) = t
        .req(
            Method::PATCH,
            &format!("/api/v1/supervisors/{evil_id}"),
            Some(&mallory),
            Some(json!({"ready_for_service": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // So is resetting the token of a supervisor in service (which would let one impersonate it).
    let (s, v) = t
        .req(
            Method::POST,
            &format!("/api/v1/supervisors/{real_id}/token"),
            Some(&mallory),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Its own, out of service, it may reset.
    let (s, v) = t
        .req(
            Method::POST,
            &format!("/api/v1/supervisors/{evil_id}/token"),
            Some(&mallory),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let evil_token_2 = v["token"].as_str().unwrap().to_string();
    assert_ne!(evil_token, evil_token_2);

    // Connected, it gets nothing: alice's secret job waits for a supervisor in service.
    let mut evil = SimSupervisor::connect(&t.base, &evil_token_2, vec![])
        .await
        .unwrap();
    let (s, v) = t
        .enqueue_as(
            &alice,
            "board:lab",
            json!({"parameters": {"key": {"value": "alice-s3cret", "secret": true}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
        match evil.recv_timeout(left).await {
            Ok(SwitchboardMessage::StartJob(s)) => panic!("an unapproved supervisor got {s:?}"),
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    // The admin approves it: from then on it is a supervisor like any other.
    let (s, v) = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/supervisors/{evil_id}"),
            Some(json!({"ready_for_service": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ready_for_service"], true);
    // Taking a supervisor out of service is allowed to managers (it only stops new jobs)...
    let (s, v) = t
        .req(
            Method::PATCH,
            &format!("/api/v1/supervisors/{real_id}"),
            Some(&mallory),
            Some(json!({"ready_for_service": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // ...but it does not open the way to its token: one that has ever connected keeps its
    // token unless an admin resets it (else an admin approving it again would approve the
    // manager's token). The same holds for mallory's own, now that it has connected.
    for id in [&real_id, &evil_id] {
        let (s, v) = t
            .req(
                Method::POST,
                &format!("/api/v1/supervisors/{id}/token"),
                Some(&mallory),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(error(&v).contains("ever connected"), "{v}");
    }
    let (s, v) = t
        .admin(
            Method::POST,
            &format!("/api/v1/supervisors/{real_id}/token"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
both_backends!(manage_supervisors_cannot_receive_other_users_jobs);

/// Item 7: a token never outlives the token that made it; a configured maximum bounds all.
async fn token_lifetimes_cannot_be_extended(backend: Backend) {
    let t = TestApp::start_with(backend, |c| {
        c.max_token_ttl_s = 3600;
        c.token_ttl_s = 600;
    })
    .await;
    let name: paddock_core::Name = "admin".parse().unwrap();
    let hash = paddock_switchboard::auth::hash_password("s3cret-pass").unwrap();
    t.app.db.set_password_hash(&name, &hash).await.unwrap();
    let login = |expires: Option<u64>| {
        let mut body = json!({"user": "admin", "password": "s3cret-pass"});
        if let Some(e) = expires {
            body["expires_in_s"] = json!(e);
        }
        t.req(Method::POST, "/api/v1/login", None, Some(body))
    };
    // Login: beyond the maximum is refused, naming it; zero too.
    let (s, v) = login(Some(100 * 365 * 86400)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("3600"), "{v}");
    let (s, v) = login(Some(0)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // A short-lived login token...
    let (s, v) = login(Some(5)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let short = v["token"].as_str().unwrap().to_string();
    let short_expiry = v["expires_at"].as_str().unwrap().to_string();
    // ...mints, with an empty body, a token that expires with it, not never.
    let r = t
        .http
        .post(format!("{}/api/v1/tokens", t.base))
        .bearer_auth(&short)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let child = v["expires_at"].as_str().expect("the child token expires");
    assert!(child <= short_expiry.as_str(), "{child} > {short_expiry}");
    // Asking for longer than the parent has left is refused.
    let (s, v) = t
        .req(
            Method::POST,
            "/api/v1/tokens",
            Some(&short),
            Some(json!({"expires_in_s": 60})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("outlive"), "{v}");
    // A token without expiry (the bootstrap admin's) mints tokens bounded by the maximum.
    let (s, v) = t
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"expires_in_s": 7200})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = t.admin(Method::POST, "/api/v1/tokens", None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["expires_at"].is_string(), "{v}");
    // So does a new user's first token.
    let (s, v) = t
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "bob", "privileges": ["submit_jobs"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["token"]["expires_at"].is_string(), "{v}");
    // The short token dies, and so does its child.
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let (s, _) = t
        .req(Method::GET, "/api/v1/whoami", Some(&short), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
both_backends!(token_lifetimes_cannot_be_extended);

/// Item 8: a misspelt field inside a parameter is refused, naming it, instead of storing a
/// secret as not secret.
async fn unknown_fields_are_refused_everywhere(backend: Backend) {
    let t = TestApp::start(backend).await;
    let (s, v) = t
        .enqueue_as(
            &t.admin.clone(),
            "a",
            json!({"parameters": {"k": {"value": "X", "secrte": true}}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(error(&v).contains("secrte"), "{v}");
    let (s, v) = t.admin(Method::GET, "/api/v1/jobs", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!v.to_string().contains("\"X\""), "nothing stored: {v}");

    // Every JSON body the API takes refuses an unknown field, at the top and one level down.
    let bodies: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/api/v1/login".into(),
            json!({"user": "admin", "password": "x", "bogus": 1}),
        ),
        (Method::POST, "/api/v1/tokens".into(), json!({"bogus": 1})),
        (
            Method::POST,
            "/api/v1/users".into(),
            json!({"name": "u", "bogus": 1}),
        ),
        (
            Method::POST,
            "/api/v1/supervisors".into(),
            json!({"name": "s", "site": "lab", "bogus": 1}),
        ),
        (
            Method::POST,
            "/api/v1/supervisors".into(),
            json!({"name": "s", "site": "lab", "acl": {"allow": {"users": ["a"], "bogus": 1}}}),
        ),
        (
            Method::POST,
            "/api/v1/jobs".into(),
            json!({"image": crate::common::IMAGE, "tags": "a", "bogus": 1}),
        ),
    ];
    for (m, path, body) in bodies {
        let (s, v) = t.admin(m.clone(), &path, Some(body)).await;
        assert!(
            s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST,
            "{m} {path}: {s} {v}"
        );
        assert!(error(&v).contains("bogus"), "{m} {path}: {v}");
    }
}
both_backends!(unknown_fields_are_refused_everywhere);

/// Item 10: `admin` implies every privilege in ACL rules too.
async fn acl_rules_know_that_admin_implies_every_privilege(backend: Backend) {
    let t = TestApp::start(backend).await;
    let body = json!({
        "name": "s1", "site": "lab", "tags": ["board:x"],
        "acl": {"allow": {"privileges": ["submit_jobs"]}},
    });
    let (s, v) = t
        .admin(Method::POST, "/api/v1/supervisors", Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let _sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let id = t.enqueue("board:x", json!({})).await;
    let j = t.job(&id).await;
    assert_ne!(j["exit_status"], "supervisor_match_error", "{j}");

    let body = json!({
        "name": "s2", "site": "lab", "tags": ["board:y"],
        "acl": {"deny": {"privileges": ["submit_jobs"]}, "allow": {"users": ["admin"]}},
    });
    let (s, v) = t
        .admin(Method::POST, "/api/v1/supervisors", Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let _sim2 = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let id = t.enqueue("board:y", json!({})).await;
    let j = t.wait_state(&id, "terminated").await;
    assert_eq!(
        j["exit_status"], "supervisor_match_error",
        "deny stops an admin: {j}"
    );
}
both_backends!(acl_rules_know_that_admin_implies_every_privilege);

/// Item 12: `cancel_jobs` alone cancels another user's job, as the docs say.
async fn cancel_jobs_alone_cancels_others_jobs(backend: Backend) {
    let t = TestApp::start(backend).await;
    let alice = t.user("alice", &["submit_jobs"]).await;
    let carol = t.user("carol", &["cancel_jobs"]).await;
    let eve = t.user("eve", &["submit_jobs"]).await;
    let (_, token) = t.add_supervisor("s1", &["board:x"]).await;
    let _sim = SimSupervisor::connect(&t.base, &token, vec![])
        .await
        .unwrap();
    let (s, v) = t
        .enqueue_as(&alice, "board:nothing-has-this | board:x", json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["job_id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/jobs/{id}/cancel");
    // Another submitter still cannot see it.
    let (s, _) = t.req(Method::POST, &path, Some(&eve), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = t.req(Method::POST, &path, Some(&carol), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["exit_status"], "job_canceled", "{v}");
}
both_backends!(cancel_jobs_alone_cancels_others_jobs);

/// Item 13: numeric fields are range-checked instead of wrapping into the database.
async fn numeric_fields_are_range_checked(backend: Backend) {
    let t = TestApp::start(backend).await;
    for q in [0u64, 1 << 63, u64::MAX, 10 * 365 * 86400] {
        let (s, v) = t
            .enqueue_as(&t.admin.clone(), "a", json!({"queue_timeout_s": q}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "queue_timeout_s {q}: {v}");
        assert!(error(&v).contains("queue_timeout_s"), "{v}");
    }
    let (s, v) = t
        .enqueue_as(&t.admin.clone(), "a", json!({"queue_timeout_s": 60}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for x in [0u64, 1 << 63] {
        let (s, v) = t
            .enqueue_as(&t.admin.clone(), "a", json!({"timeout_s": x}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "timeout_s {x}: {v}");
    }
    for (q, what) in [
        ("limit=-1", "limit"),
        ("limit=100000", "limit"),
        ("cursor=-5", "cursor"),
    ] {
        let (s, v) = t
            .admin(Method::GET, &format!("/api/v1/jobs?{q}"), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert!(error(&v).contains(what), "{q}: {v}");
    }
}
both_backends!(numeric_fields_are_range_checked);

/// Item 4: a connection that never finishes its request header is closed (here after the
/// configured 1 s), and a flood of them does not keep `/healthz` from answering.
async fn slow_clients_are_disconnected(backend: Backend) {
    let t = TestApp::start_with(backend, |c| {
        c.http.header_read_timeout_s = 1;
        c.http.max_connections = 64;
    })
    .await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = t.base.trim_start_matches("http://").to_string();
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
            flood.push(s);
        }
    }
    let started = tokio::time::Instant::now();
    for s in &mut flood {
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "the server closes a slow client"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let r = t
        .http
        .get(format!("{}/healthz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
both_backends!(slow_clients_are_disconnected);

/// Item 3: the SQLite database and its companions are readable by their owner only, and an
/// existing world-readable database is repaired when it is opened.
#[tokio::test]
async fn the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    paddock_switchboard::db::file_modes::secure_data_dir(&data).unwrap();
    assert_eq!(mode(&data), 0o700);
    let file = data.join("switchboard.db");
    let url = paddock_switchboard::db::sqlite_url_for(&data);
    let db = paddock_switchboard::db::Db::connect(&url).await.unwrap();
    let name: paddock_core::Name = "alice".parse().unwrap();
    db.create_user(&name, None, &[]).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    drop(db);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    paddock_switchboard::db::file_modes::secure_data_dir(&data).unwrap();
    let _db = paddock_switchboard::db::Db::connect(&url).await.unwrap();
    assert_eq!((mode(&data), mode(&file)), (0o700, 0o600));
}
