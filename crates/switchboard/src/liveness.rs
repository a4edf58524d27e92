//! Liveness: a task that refreshes `last_seen` of every supervisor connected to this process,
//! once per heartbeat interval, in one statement. A connection whose supervisor stays silent for
//! three intervals is closed by its socket task, so everything registered in the hub is alive.
//! Other processes (and this one after a restart) judge connections and dropped jobs by
//! `last_seen`.

use std::time::Duration;

use crate::state::{AppState, Shutdown};

pub async fn run(app: AppState, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(app.config.heartbeat_interval_s));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = app.db.connections_seen(&app.hub.connections()).await {
                    tracing::error!(error = format!("{e:#}"), "recording supervisor liveness");
                }
            }
            _ = crate::state::stopped(&mut shutdown) => return,
        }
    }
}
