//! Start-up of a running switchboard: the HTTP router over the shared state, and `run`, which
//! serves it and runs the scheduler, the reaper and the liveness task until the shutdown signal
//! fires.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;

use crate::state::AppState;

pub fn router(app: AppState) -> Router {
    let limit = app.config.max_body_bytes;
    crate::api::routes(app).layer(DefaultBodyLimit::max(limit))
}

/// Serves the API on `listener` and runs the scheduler and the reaper until
/// [`AppState::shutdown`].
pub async fn run(app: AppState, listener: TcpListener) -> anyhow::Result<()> {
    run_with(app, listener, None).await
}

/// [`run`], over TLS when `tls` is given.
pub async fn run_with(
    app: AppState,
    listener: TcpListener,
    tls: Option<paddock_http::TlsServer>,
) -> anyhow::Result<()> {
    let shutdown = app.shutdown_signal();
    let scheduler = tokio::spawn(crate::scheduler::run(
        app.clone(),
        app.wake.clone(),
        shutdown.clone(),
    ));
    let reaper = tokio::spawn(crate::reaper::run(app.clone(), shutdown.clone()));
    let liveness = tokio::spawn(crate::liveness::run(app.clone(), shutdown.clone()));
    let mut stop = shutdown.clone();
    let limits = app.config.http.limits();
    let r = paddock_http::serve_with(listener, router(app), limits, tls, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
    let _ = scheduler.await;
    let _ = reaper.await;
    let _ = liveness.await;
    r.map_err(Into::into)
}
