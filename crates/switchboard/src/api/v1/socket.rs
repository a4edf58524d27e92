//! `GET /api/v1/supervisor/socket`: the supervisor WebSocket (`paddock.v1`).
//!
//! A supervisor authenticates with its own bearer token and can act only for itself: every job
//! it reports on must be assigned to it. After `hello` the switchboard reconciles: a job the
//! supervisor no longer runs is re-sent (`scheduled`, never started) or ends as
//! `supervisor_dropped_job`; a job it runs that the switchboard does not want is stopped.
//! Heartbeats go both ways; three silent intervals close the connection. Every sixth heartbeat
//! the switchboard also sends `status_request`; the `status` answer is reconciled too.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use axum::response::Response;
use paddock_core::protocol::{RunningJob, SUBPROTOCOL, SupervisorMessage, SwitchboardMessage};
use paddock_core::{Actor, ExecutionState, ExitStatus, JobId, SupervisorId, Transition};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::auth::hash_token;
use crate::db::StoreError;
use crate::db::jobs::Change;
use crate::db::supervisors::Supervisor;
use crate::error::ApiError;
use crate::state::AppState;

const MAX_FRAME_BYTES: usize = 1024 * 1024;
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A `status_request` every this many heartbeats: the answer is reconciled like a `hello`.
const STATUS_EVERY_TICKS: u64 = 6;

/// Authenticates first, so a request without a valid supervisor token is a 401 whatever else
/// is wrong with it.
pub async fn upgrade(
    State(app): State<AppState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let sup = app
        .db
        .supervisor_by_token(&hash_token(token.trim()))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let ws = ws.map_err(|r| ApiError::Rejected(r.status(), r.body_text()))?;
    let offers_protocol = headers
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == SUBPROTOCOL));
    if !offers_protocol {
        return Err(ApiError::BadRequest(format!(
            "the WebSocket sub-protocol must be {SUBPROTOCOL}"
        )));
    }
    let span =
        tracing::info_span!("supervisor", supervisor.id = %sup.id, supervisor.name = %sup.name);
    Ok(ws
        .protocols([SUBPROTOCOL])
        .max_message_size(MAX_FRAME_BYTES)
        // Small buffers: an idle supervisor should cost kilobytes, not the 128 KiB default.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| session(app, sup, socket).instrument(span)))
}

async fn recv(socket: &mut WebSocket) -> Option<Result<SupervisorMessage, String>> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(t)) => {
                return Some(serde_json::from_str(t.as_str()).map_err(|e| e.to_string()));
            }
            Ok(Message::Binary(_)) => {
                return Some(Err("binary frames are not part of paddock.v1".into()));
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

async fn session(app: AppState, sup: Supervisor, mut socket: WebSocket) {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, recv(&mut socket)).await {
        Ok(Some(Ok(SupervisorMessage::Hello { running_jobs, .. }))) => running_jobs,
        _ => {
            tracing::warn!("no hello within {HELLO_TIMEOUT:?}; closing");
            return;
        }
    };
    let connection = format!("{}/{}", app.instance, uuid::Uuid::new_v4());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let interval = app.config.heartbeat_interval_s;
    let _ = tx.send(SwitchboardMessage::Welcome {
        supervisor_id: sup.id,
        heartbeat_interval_s: interval,
    });
    // An older connection of this supervisor stops receiving at once (its task then ends).
    app.hub.remove(sup.id);
    if let Err(e) = app.db.supervisor_connected(sup.id, &connection).await {
        tracing::error!(error = format!("{e:#}"), "recording connection");
        return;
    }
    tracing::info!(running = hello.len(), "supervisor connected");
    // Reconcile before registering: until then the scheduler cannot dispatch to this
    // connection, so a job it schedules now is never also re-sent by the reconcile.
    reconcile(&app, sup.id, &hello, &tx, Moment::Hello).await;
    app.hub.register(sup.id, connection.clone(), tx.clone());
    send_config(&app, sup.id, &tx).await;
    app.wake_scheduler();

    let mut shutdown = app.shutdown_signal();
    let mut tick = tokio::time::interval(Duration::from_secs(interval));
    let mut last_heard = Instant::now();
    let mut ticks: u64 = 0;
    let silence = Duration::from_secs(interval * 3);
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(msg) = out else { break };
                let text = serde_json::to_string(&msg).unwrap_or_default();
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = recv(&mut socket) => {
                let Some(msg) = incoming else { break };
                last_heard = Instant::now();
                match msg {
                    Ok(m) => handle(&app, &sup, m, &tx).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed message");
                        let _ = tx.send(SwitchboardMessage::Refused { job_id: None, reason: format!("malformed message: {e}") });
                    }
                }
            }
            _ = tick.tick() => {
                if last_heard.elapsed() > silence {
                    tracing::warn!("no heartbeat for {silence:?}; closing");
                    break;
                }
                let _ = tx.send(SwitchboardMessage::Heartbeat);
                ticks += 1;
                if ticks.is_multiple_of(STATUS_EVERY_TICKS) {
                    let _ = tx.send(SwitchboardMessage::StatusRequest);
                }
            }
            _ = crate::state::stopped(&mut shutdown) => break,
        }
    }
    let _ = socket.send(Message::Close(None)).await;
    app.hub.unregister(sup.id, &connection);
    if let Err(e) = app.db.supervisor_disconnected(sup.id, &connection).await {
        tracing::error!(error = format!("{e:#}"), "recording disconnection");
    }
    tracing::info!("supervisor disconnected");
}

async fn handle(
    app: &AppState,
    sup: &Supervisor,
    msg: SupervisorMessage,
    tx: &mpsc::UnboundedSender<SwitchboardMessage>,
) {
    match msg {
        SupervisorMessage::JobState {
            job_id,
            execution_state,
            exit_status,
            message,
        } => {
            if execution_state == Some(ExecutionState::Terminated) {
                // The job's output has ended: report what its limit cut off, before the event
                // that ends the job's event stream.
                note_console_limit(app, sup.id, job_id).await;
            }
            let change = Change {
                transition: Transition {
                    execution_state,
                    exit_status,
                },
                actor: Actor::Supervisor,
                message,
                on_supervisor: Some(sup.id),
                request_stop: false,
            };
            job_state(app, job_id, &change, tx).await;
        }
        SupervisorMessage::Console {
            job_id,
            stream,
            data,
        } => {
            let limit = app.config.console_limit_bytes;
            match app
                .db
                .append_console(job_id, sup.id, stream, &data, limit)
                .await
            {
                Ok(0) => {}
                Ok(dropped) => {
                    tracing::debug!(job.id = %job_id, dropped_bytes = dropped, "console output past the job's limit dropped")
                }
                Err(e) => {
                    let reason = refuse(tx, Some(job_id), &e);
                    tracing::warn!(job.id = %job_id, reason, "console output refused");
                }
            }
        }
        SupervisorMessage::ConsoleDropped {
            job_id,
            bytes,
            reason,
        } => {
            match app
                .db
                .console_dropped_by_supervisor(job_id, sup.id, bytes, &reason)
                .await
            {
                Ok(()) => {
                    tracing::warn!(job.id = %job_id, dropped_bytes = bytes, %reason, "the supervisor dropped console output");
                    app.events_changed();
                }
                Err(e) => {
                    let reason = refuse(tx, Some(job_id), &e);
                    tracing::warn!(job.id = %job_id, reason, "console drop report refused");
                }
            }
        }
        SupervisorMessage::JobAccess { job_id, access } => {
            if let Err(reason) = access.check() {
                tracing::warn!(job.id = %job_id, reason, "job access refused");
                let _ = tx.send(SwitchboardMessage::Refused {
                    job_id: Some(job_id),
                    reason,
                });
                return;
            }
            match app.db.set_job_access(job_id, sup.id, &access).await {
                Ok(()) => {
                    tracing::debug!(job.id = %job_id, host = %access.host, port = access.port, user = %access.user, "job access stored")
                }
                Err(e) => {
                    let reason = refuse(tx, Some(job_id), &e);
                    tracing::warn!(job.id = %job_id, reason, "job access refused");
                }
            }
        }
        SupervisorMessage::Status { running_jobs } => {
            reconcile(app, sup.id, &running_jobs, tx, Moment::Status).await
        }
        SupervisorMessage::Hello { .. } => tracing::debug!("repeated hello ignored"),
        SupervisorMessage::Heartbeat => {}
    }
}

async fn job_state(
    app: &AppState,
    job_id: JobId,
    change: &Change,
    tx: &mpsc::UnboundedSender<SwitchboardMessage>,
) {
    let span = tracing::info_span!("job_state", job.id = %job_id);
    match app
        .db
        .transition(job_id, change)
        .instrument(span.clone())
        .await
    {
        Ok(r) => {
            if r.job.state.is_terminated() {
                app.wake_scheduler();
            }
            if r.changed {
                app.events_changed();
            }
        }
        Err(e) => {
            let _g = span.enter();
            app.metrics
                .refused_transitions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let gone = matches!(
                e,
                StoreError::NotFound | StoreError::Transition(paddock_core::TransitionError::Final)
            );
            let reason = refuse(tx, Some(job_id), &e);
            tracing::warn!(reason, "job state report refused");
            if gone {
                let _ = tx.send(SwitchboardMessage::StopJob {
                    job_id,
                    reason: "the job is terminated".into(),
                });
            }
        }
    }
}

/// Writes the marker line and event for console output the job's limit cut off.
async fn note_console_limit(app: &AppState, sup: SupervisorId, job_id: JobId) {
    match app
        .db
        .note_console_limit(job_id, sup, app.config.console_limit_bytes)
        .await
    {
        Ok(0) => {}
        Ok(bytes) => {
            tracing::info!(job.id = %job_id, dropped_bytes = bytes, "console output past the job's limit was dropped");
            app.events_changed();
        }
        // Not this supervisor's job: the state report itself is refused just after.
        Err(StoreError::Conflict(_)) => {}
        Err(e) => {
            tracing::error!(job.id = %job_id, error = format!("{e:#}"), "noting dropped console output")
        }
    }
}

/// Tells the supervisor a message was refused, and returns why.
fn refuse(
    tx: &mpsc::UnboundedSender<SwitchboardMessage>,
    job_id: Option<JobId>,
    e: &StoreError,
) -> String {
    let reason = match e {
        StoreError::Transition(t) => t.to_string(),
        StoreError::Conflict(m) => m.clone(),
        StoreError::NotFound => "unknown job".to_string(),
        _ => "internal error".to_string(),
    };
    let _ = tx.send(SwitchboardMessage::Refused {
        job_id,
        reason: reason.clone(),
    });
    reason
}

/// Brings the two sides' views of the supervisor's jobs together (see the module doc).
/// When a reconcile happens: at `hello`, nothing is in flight to the new connection, so a
/// `scheduled` job it lacks is re-sent; at `status` a `start_job` may still be on its way, so a
/// `scheduled` job is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    Hello,
    Status,
}

async fn reconcile(
    app: &AppState,
    sup: SupervisorId,
    reported: &[RunningJob],
    tx: &mpsc::UnboundedSender<SwitchboardMessage>,
    moment: Moment,
) {
    let assigned = match app.db.jobs_on_supervisor(sup).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "reconcile: reading jobs");
            return;
        }
    };
    let running: HashSet<JobId> = reported.iter().map(|r| r.job_id).collect();
    for job in &assigned {
        if running.contains(&job.id) {
            if job.stop_requested_at.is_some() {
                let _ = tx.send(SwitchboardMessage::StopJob {
                    job_id: job.id,
                    reason: "stop requested".into(),
                });
            }
        } else if job.state.execution_state == ExecutionState::Scheduled && moment == Moment::Status
        {
            continue;
        } else if job.state.execution_state == ExecutionState::Scheduled
            && job.stop_requested_at.is_none()
        {
            tracing::info!(job.id = %job.id, "re-sending start_job");
            let _ = tx.send(SwitchboardMessage::StartJob(job.start_message()));
        } else {
            let t =
                Transition::to_with(ExecutionState::Terminated, ExitStatus::SupervisorDroppedJob);
            let why = match moment {
                Moment::Hello => "supervisor reconnected without the job",
                Moment::Status => "supervisor no longer runs the job",
            };
            let change = Change::by_switchboard(t, why);
            match app.db.transition(job.id, &change).await {
                Ok(_) => {
                    tracing::warn!(job.id = %job.id, "supervisor dropped the job");
                    app.events_changed();
                }
                Err(e) => {
                    tracing::error!(job.id = %job.id, error = format!("{e:#}"), "reconcile: marking job dropped")
                }
            }
        }
    }
    let wanted: HashSet<JobId> = assigned.iter().map(|j| j.id).collect();
    for r in reported.iter().filter(|r| !wanted.contains(&r.job_id)) {
        tracing::warn!(job.id = %r.job_id, "supervisor runs a job the switchboard does not want; stopping it");
        let _ = tx.send(SwitchboardMessage::StopJob {
            job_id: r.job_id,
            reason: "not assigned to this supervisor".into(),
        });
    }
}

/// A supervisor the deployments repo declares gets its configuration on connecting (and
/// again whenever an apply changes it: `api::v1::deployment`).
async fn send_config(
    app: &AppState,
    id: paddock_core::SupervisorId,
    tx: &mpsc::UnboundedSender<SwitchboardMessage>,
) {
    match app.applied_state().await {
        Ok((generation, state)) => {
            if let Some(config) = paddock_core::deployments::config_of(&state, id) {
                let _ = tx.send(SwitchboardMessage::Config {
                    generation: generation.max(0) as u64,
                    config: config.to_value(),
                });
            }
        }
        Err(e) => tracing::error!(error = format!("{e:#}"), "reading the applied deployment"),
    }
}
