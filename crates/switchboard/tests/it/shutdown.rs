//! Stopping: a shutdown asked for before the tasks start (a SIGTERM right after the "serving"
//! line) still ends `run`. Before, the scheduler, the reaper and the liveness task waited for
//! the next *change* of the shutdown flag, which had already changed: `run` never returned
//! and `paddock-switchboard` hung after SIGTERM (seen as a flaky signals test).

use std::time::Duration;

use paddock_switchboard::{AppState, Config};

use crate::common::{Backend, fresh_database};

async fn shutdown_before_run_still_ends_run(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path()).await;
    let db = paddock_switchboard::db::Db::connect(&url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = AppState::new(db, Config::default());
    app.shutdown();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        paddock_switchboard::run(app, listener),
    )
    .await
    .expect("run did not end within 10 s of a shutdown asked for before it started");
    r.unwrap();
}
crate::both_backends!(shutdown_before_run_still_ends_run);
