//! The client against real HTTP servers on loopback: error answers, retries of idempotent
//! calls only, the call time limit.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::get;
use paddock_client::{ClientError, Switchboard, Timeouts};
use serde_json::{Value, json};

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn answers_are_decoded_and_errors_carry_the_servers_message() {
    let app = axum::Router::new()
        .route("/api/v1/jobs/1", get(|| async { Json(json!({"id": 1})) }))
        .route(
            "/api/v1/jobs/2",
            get(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "no job 2"}))) }),
        )
        .route("/api/v1/jobs/3", get(|| async { "not json" }));
    let sb = Switchboard::new(&serve(app).await, "test", Some("t".into())).unwrap();
    let v: Value = sb.get("/jobs/1").await.unwrap();
    assert_eq!(v["id"], 1);
    let e = sb.get::<Value>("/jobs/2").await.unwrap_err();
    assert_eq!(e.status(), Some(reqwest::StatusCode::NOT_FOUND));
    assert_eq!(e.message(), Some("no job 2"));
    assert_eq!(e.to_string(), "404 Not Found: no job 2");
    let e = sb.get::<Value>("/jobs/3").await.unwrap_err();
    assert!(
        matches!(e, ClientError::Answer { .. }) && e.to_string().contains("not the expected JSON"),
        "{e}"
    );
}

/// A server that takes each connection and closes it at once, counting them.
async fn hang_up() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (url, seen)
}

#[tokio::test]
async fn only_idempotent_calls_are_tried_again_when_no_answer_came() {
    let limits = Timeouts {
        tries: 3,
        ..Timeouts::default()
    };
    let (url, seen) = hang_up().await;
    let sb = Switchboard::with_timeouts(&url, None, limits);
    let e = sb.get::<Value>("/jobs").await.unwrap_err();
    assert!(matches!(e, ClientError::Connect { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&format!("connecting to {url}: ")),
        "{e}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 3, "a GET is tried three times");

    let (url, seen) = hang_up().await;
    let sb = Switchboard::with_timeouts(&url, None, limits);
    let e = sb.post::<_, Value>("/jobs", &json!({})).await.unwrap_err();
    assert!(matches!(e, ClientError::Connect { .. }), "{e}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "a POST is never sent twice");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let app = axum::Router::new().route(
        "/api/v1/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let limits = Timeouts {
        call: Duration::from_millis(300),
        tries: 1,
        ..Timeouts::default()
    };
    let sb = Switchboard::with_timeouts(&serve(app).await, None, limits);
    let started = std::time::Instant::now();
    let e = sb.get::<Value>("/slow").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(e.to_string().contains("timed out"), "{e}");
}
