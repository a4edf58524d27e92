//! The limits against hostile clients, over real loopback TCP with bounded clients: a header
//! never finished, a body trickled then stopped, a flood of connections.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use paddock_http::{Limits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/upload",
            post(|body: String| async move { body.len().to_string() }),
        );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, app, limits, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// One request on a fresh connection; the response's text.
async fn get_healthz(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .map_err(|_| std::io::Error::other("no answer in 5 s"))??;
    Ok(out)
}

/// Waits until the server closes `s`; how long that took.
async fn closed_after(s: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match timeout(bound.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

fn small() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(800),
        max_connections: 32,
    }
}

#[tokio::test]
async fn a_header_never_finished_is_closed() {
    let (addr, _stop) = start(small()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let took = closed_after(&mut s, Duration::from_secs(5)).await;
    let took = took.expect("a connection that never finishes its header is closed");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    // A kept-alive connection that goes silent after a request is closed the same way.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_after(&mut s, Duration::from_secs(5)).await.is_some());
}

#[tokio::test]
async fn a_body_trickled_then_stopped_is_closed() {
    // An idle timeout ten times the trickle's period, so a loaded machine's stalls do not close
    // the connection while it still trickles.
    let limits = Limits {
        idle_timeout: Duration::from_secs(3),
        ..small()
    };
    let (addr, _stop) = start(limits).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        .await
        .unwrap();
    // Trickled: a byte every 300 ms keeps it alive past the idle timeout...
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(b"c").await.unwrap();
    }
    // ...then silence closes it.
    let took = closed_after(&mut s, Duration::from_secs(10)).await;
    assert!(took.is_some(), "a silent upload is closed");
}

#[tokio::test]
async fn a_flood_of_connections_cannot_starve_the_server() {
    let limits = small();
    let (addr, _stop) = start(limits).await;
    // 400 connections that each send half a header and hold on (bounded: 400, then released).
    let mut flood = Vec::new();
    for _ in 0..400 {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
            flood.push(s);
        }
    }
    // Those beyond the limit are closed at once.
    let mut closed_at_once = 0;
    for s in &mut flood {
        if closed_after(s, Duration::from_millis(100)).await.is_some() {
            closed_at_once += 1;
        }
    }
    assert!(
        closed_at_once >= 400 - limits.max_connections,
        "{closed_at_once} of 400 closed at once"
    );
    // The flood still connected ends with the header timeout, and the server answers again.
    let t = Instant::now();
    loop {
        if let Ok(r) = get_healthz(addr).await
            && r.starts_with("HTTP/1.1 200")
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the server never answered again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(flood);
}

#[tokio::test]
async fn shutdown_ends_serving() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    let server = tokio::spawn(serve(listener, app, Limits::default(), async move {
        let _ = rx.await;
    }));
    assert!(get_healthz(addr).await.unwrap().starts_with("HTTP/1.1 200"));
    // A connection open at shutdown does not hold the server up past the grace period.
    let _idle = TcpStream::connect(addr).await.unwrap();
    tx.send(()).unwrap();
    timeout(Duration::from_secs(15), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}
