//! `paddock-switchboard serve`.

use anyhow::Context;

use super::Settings;
use crate::server::run;
use crate::state::AppState;

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let (config, db) = settings.open_db().await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = AppState::new(db, config);
    // Caught from here on: a SIGTERM right after the ready line stops gracefully.
    let signal = paddock_core::service::shutdown_signal();
    let stopper = app.clone();
    tokio::spawn(async move {
        signal.await;
        stopper.shutdown();
    });
    tracing::info!(%addr, backend = ?app.db.backend, "switchboard serving");
    eprintln!("paddock-switchboard: serving on http://{addr}");
    run(app, listener).await
}
