//! The reaper: a task that sweeps the database for jobs that must end without a supervisor's
//! word. Rules of the loop, each pass (every `reaper_interval_ms`):
//! - a `queued` job past its queue timeout ends `terminated`/`queue_timeout`;
//! - a dispatched job past its job timeout gets `job_timeout` and a `stop_job`;
//! - a job asked to stop (cancel, timeout) that is not terminated `stop_grace_s` later is
//!   terminated by the switchboard with the status it has;
//! - a dispatched job whose supervisor has not been seen for `supervisor_grace_s` ends
//!   `terminated`/`supervisor_dropped_job`.
//!
//! Every change goes through the one transition path, conditional on the job's version, so
//! several switchboard processes may sweep the same database.

use std::time::Duration;

use tracing::Instrument;

use paddock_core::protocol::SwitchboardMessage;
use paddock_core::{ExecutionState, ExitStatus, JobId, Transition};

use crate::db::StoreError;
use crate::db::jobs::Change;
use crate::state::{AppState, Shutdown};

/// Runs one sweep.
pub async fn run_once(app: &AppState) -> anyhow::Result<()> {
    let now = paddock_core::api::now_ms();
    let c = &app.config;
    for id in app.db.queue_timed_out(now).await? {
        let t = Transition::to_with(ExecutionState::Terminated, ExitStatus::QueueTimeout);
        apply(app, id, Change::by_switchboard(t, "queue timeout")).await;
    }
    for id in app.db.job_timed_out(now).await? {
        let mut change =
            Change::by_switchboard(Transition::status(ExitStatus::JobTimeout), "job timeout");
        change.request_stop = true;
        if let Some(job) = apply(app, id, change).await
            && let Some(sup) = job.supervisor_id
        {
            app.hub.send(
                sup,
                SwitchboardMessage::StopJob {
                    job_id: id,
                    reason: "job timeout".into(),
                },
            );
        }
    }
    for id in app
        .db
        .stop_overdue(now - (c.stop_grace_s * 1000) as i64)
        .await?
    {
        // Terminate with whatever status the job has; it has one, since stops set one.
        let t = Transition::to(ExecutionState::Terminated);
        apply(
            app,
            id,
            Change::by_switchboard(t, "supervisor did not confirm the stop in time"),
        )
        .await;
    }
    for id in app
        .db
        .dropped(now - (c.supervisor_grace_s * 1000) as i64)
        .await?
    {
        let t = Transition::to_with(ExecutionState::Terminated, ExitStatus::SupervisorDroppedJob);
        apply(
            app,
            id,
            Change::by_switchboard(t, "supervisor gone longer than the grace period"),
        )
        .await;
    }
    Ok(())
}

async fn apply(app: &AppState, id: JobId, change: Change) -> Option<crate::db::jobs::Job> {
    let span = tracing::info_span!("reap", job.id = %id);
    match app
        .db
        .transition(id, &change)
        .instrument(span.clone())
        .await
    {
        Ok(r) => {
            if r.job.state.is_terminated() {
                app.wake_scheduler();
            }
            app.events_changed();
            let _guard = span.enter();
            tracing::info!(state = %r.job.state.execution_state, status = ?r.job.state.exit_status, "{}", change.message.as_deref().unwrap_or(""));
            Some(r.job)
        }
        // Another process or the supervisor got there first; the next sweep sees the new state.
        Err(StoreError::Conflict(_)) | Err(StoreError::NotFound) => None,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "reaper transition failed");
            None
        }
    }
}

/// The reaper task.
pub async fn run(app: AppState, mut shutdown: Shutdown) {
    let period = Duration::from_millis(app.config.reaper_interval_ms);
    loop {
        if let Err(e) = run_once(&app).await {
            tracing::error!(error = format!("{e:#}"), "reaper sweep failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = crate::state::stopped(&mut shutdown) => return,
        }
    }
}
