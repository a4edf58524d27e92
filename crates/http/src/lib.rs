//! Serving HTTP for every Paddock server (switchboard, image store, deploy webhook, audit
//! `serve`), with the limits a server facing hostile clients needs. `axum::serve` has none:
//! a connection that never finishes its request header is held forever, and enough of them
//! exhaust the process's file descriptors. Here:
//!
//! - **header read timeout**: the request line and headers of every request (the first, and
//!   each next one on a kept-alive connection, so an idle kept-alive connection too) must
//!   arrive within [`Limits::header_read_timeout`], or the connection is closed;
//! - **idle timeout**: a connection on which no byte moves either way for
//!   [`Limits::idle_timeout`] is closed (a body trickled, then stopped; a client that stopped
//!   reading). Streams that stay open on purpose (Server-Sent Events, WebSockets) send
//!   keep-alives more often than that;
//! - **connection limit**: at most [`Limits::max_connections`] connections are served at once;
//!   a connection beyond it is closed at once (said in the log at most every 10 s), so the
//!   process keeps file descriptors for its own work and recovers as soon as the flood stops;
//! - **graceful shutdown**: when `shutdown` resolves, no new connection is accepted, each open
//!   one finishes its request in flight and closes, and connections still open after
//!   [`SHUTDOWN_GRACE`] are dropped.
//!
//! A connection upgraded to a WebSocket leaves these limits when the upgrade completes (its
//! handler owns it then, with its own heartbeats); upgrades need credentials first.
//!
//! With a [`TlsServer`] ([`serve_with`]), every connection is TLS (1.2 or 1.3; see [`tls`]):
//! the handshake must end within the header read timeout, and the certificate files are read
//! again when they change.

pub mod tls;
mod watched;

pub use tls::{TlsError, TlsFiles, TlsServer};

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use watched::{Activity, Watched};

/// How long open connections may take to finish once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The limits of one server. [`Limits::default`] is what every Paddock server uses unless its
/// configuration says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's line and headers (default 10 s).
    pub header_read_timeout: Duration,
    /// Time a connection may stay without a byte moving either way (default 120 s).
    pub idle_timeout: Duration,
    /// Connections served at once (default 4096).
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_connections: 4096,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves. Returns once the
/// connections open at shutdown have finished (or [`SHUTDOWN_GRACE`] passed).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, router, limits, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given (plain HTTP otherwise).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<TlsServer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_full_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            // Out of file descriptors or similar: the process is overloaded; wait a little
            // instead of spinning (what axum::serve does too).
            Err(e) if !is_connection_error(&e) => {
                tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            Err(_) => continue,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if last_full_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                last_full_warning = Some(Instant::now());
                tracing::warn!(
                    max_connections = limits.max_connections,
                    %peer,
                    "connection limit reached: closing new connections until some end"
                );
            }
            drop(tcp);
            continue;
        };
        // TCP_NODELAY: without it a small response can wait ~40 ms for the client's delayed ACK.
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let _permit = permit;
            let Some(tls) = tls else {
                return connection(tcp, peer, router, limits, stop).await;
            };
            // The handshake is part of what a client must send within the header timeout.
            match tokio::time::timeout(limits.header_read_timeout, tls.acceptor().accept(tcp)).await
            {
                Ok(Ok(stream)) => connection(stream, peer, router, limits, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    let _ = stop_tx.send(true);
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE * 2, drained)
        .await
        .is_err()
    {
        connections.abort_all();
    }
    Ok(())
}

/// Serves one connection (plain or TLS) until it ends, idles out or the server stops.
async fn connection<S>(
    stream: S,
    peer: std::net::SocketAddr,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let activity = Activity::new();
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(io, service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        () = activity.idle_for(limits.idle_timeout) => {
            tracing::debug!(%peer, idle_s = limits.idle_timeout.as_secs(), "closing an idle connection");
        }
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
        }
    }
}

/// Errors of one incoming connection (the peer gave up before it was accepted), as opposed to
/// errors of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
