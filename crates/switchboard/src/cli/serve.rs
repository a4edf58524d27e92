//! `paddock-switchboard serve`.

use anyhow::Context;

use super::Settings;
use crate::server::run_with;
use crate::state::AppState;

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let (config, db) = settings.open_db().await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let tls = match &config.tls {
        Some(files) => Some(
            paddock_http::TlsServer::new(files.clone())
                .context("[tls]: the certificate and key")?,
        ),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    if tls.is_none() {
        tracing::info!(
            "no [tls] configured: serving plain HTTP (tokens cross the network in clear)"
        );
    }
    let app = AppState::new(db, config);
    // Caught from here on: a SIGTERM right after the ready line stops gracefully.
    let signal = paddock_core::service::shutdown_signal();
    let stopper = app.clone();
    tokio::spawn(async move {
        signal.await;
        stopper.shutdown();
    });
    tracing::info!(%addr, backend = ?app.db.backend, scheme, "switchboard serving");
    eprintln!("paddock-switchboard: serving on {scheme}://{addr}");
    run_with(app, listener, tls).await
}
