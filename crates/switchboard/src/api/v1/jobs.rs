//! `/api/v1/jobs`: enqueue, list, get, cancel, the event log (JSON or Server-Sent Events) and the
//! console. Secret parameter values are accepted here and never returned.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use paddock_client::{Found, StoreApiError, StoreClient};
use paddock_core::api::jobs::{
    ConsoleInputRequest, ConsoleInputResponse, EnqueueJobRequest, EnqueueJobResponse, JobEventList,
    JobList, JobView,
};
use paddock_core::protocol::{CONSOLE_INPUT_MAX, ConsoleInput, SwitchboardMessage};
use paddock_core::{
    ExecutionState, ExitStatus, ImageId, JobId, Name, Privilege, TagExpr, Transition,
};
use serde::Deserialize;

use crate::api::json::{Json, Path, Query};
use crate::auth::Caller;
use crate::db::jobs::{Change, Job, NewJob};
use crate::error::ApiError;
use crate::scheduler::user_may_use;
use crate::state::AppState;

const MAX_PARAMETERS: usize = 256;
/// The most jobs one `GET /jobs` answers.
const MAX_LIST_LIMIT: i64 = 500;

/// The image a job names: with image store servers configured (`image_urls`), the first that
/// knows it resolves it (an id, a label: its newest revision, or `label@revision`), asked with
/// the image store's client ([`StoreClient::find`]: a full id its API does not know is read
/// from its store path, as a plain static Treadmill store serves it); else with a local
/// `image_store`, that store does; else it must be an id, taken as it is. An image no
/// configured store has is a 404.
async fn resolve_image(app: &AppState, image: &str) -> Result<ImageId, ApiError> {
    let not_found = |what: &str| {
        ApiError::Rejected(
            StatusCode::NOT_FOUND,
            format!("no image {image:?} in {what} (by id, label or label@revision)"),
        )
    };
    // A stored image that cannot be used is refused with its problem, never as "no image".
    let unusable = |problem: &str| {
        ApiError::Rejected(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("image {image:?} cannot be used: {problem}"),
        )
    };
    if !app.config.image_urls.is_empty() {
        let mut errors = Vec::new();
        let mut answered = false;
        for base in &app.config.image_urls {
            let store =
                StoreClient::with_http(base, None, app.http.clone()).call_limit(IMAGE_CALL_LIMIT);
            match store.find(image).await {
                Ok(Found::Shown(shown)) => {
                    if let Some(problem) = &shown.problem {
                        return Err(unusable(problem));
                    }
                    return Ok(shown.id);
                }
                // A plain static Treadmill store has no API: a full id is read from its
                // store path, as the supervisors' cache reads it.
                Ok(Found::ByPath { id, manifest }) => match manifest {
                    Ok(Some(bytes)) => {
                        paddock_core::manifest::ImageManifest::parse(&bytes)
                            .map_err(|e| unusable(&format!("unusable manifest: {e}")))?;
                        return Ok(id);
                    }
                    Ok(None) => answered = true,
                    // A file there that is not that image (unreadable, too large, or hashing
                    // to another id) is not taken for it.
                    Err(
                        e @ (StoreApiError::WrongManifest { .. }
                        | StoreApiError::TooLarge { .. }
                        | StoreApiError::Read { .. }),
                    ) => {
                        tracing::warn!(error = %e, "a file at an image path is not that image; ignored");
                        answered = true;
                    }
                    Err(StoreApiError::Http { message, .. }) => {
                        errors.push(format!("{base}: {message}"))
                    }
                    Err(e) => errors.push(format!("{base}: {e}")),
                },
                Ok(Found::Missing { .. }) => answered = true,
                Err(StoreApiError::Status { status, .. }) => {
                    errors.push(format!("{base}: HTTP {status}"))
                }
                Err(StoreApiError::Http { message, .. }) => {
                    errors.push(format!("{base}: {message}"))
                }
                Err(StoreApiError::Answer { source, .. }) if source.is_data() => {
                    errors.push(format!("{base}: no id in the answer"))
                }
                Err(e) => return Err(ApiError::Internal(anyhow::anyhow!("{e}"))),
            }
        }
        if answered {
            return Err(not_found("the image stores"));
        }
        return Err(ApiError::Rejected(
            StatusCode::BAD_GATEWAY,
            format!("no image store answered: {}", errors.join("; ")),
        ));
    }
    if let Some(store) = app.config.image_store.clone() {
        let images =
            tokio::task::spawn_blocking(move || paddock_imagestore::LocalStore::new(store).list())
                .await
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("listing images: {e}")))?
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("listing images: {e}")))?;
        let found = paddock_imagestore::catalog::resolve(&images, image)
            .ok_or_else(|| not_found("the image store"))?;
        if let Some(problem) = &found.problem {
            return Err(unusable(problem));
        }
        return Ok(found.id.clone());
    }
    image.parse::<ImageId>().map_err(|_| {
        ApiError::BadRequest(format!(
            "malformed image id {image:?}: expected 64 hex characters (labels need an \
             image store in the switchboard configuration)"
        ))
    })
}

/// The time limit of each call to an image store.
const IMAGE_CALL_LIMIT: Duration = Duration::from_secs(10);

pub async fn enqueue(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<EnqueueJobRequest>,
) -> Result<(StatusCode, Json<EnqueueJobResponse>), ApiError> {
    let image_id = resolve_image(&app, &req.image).await?;
    let expr: TagExpr = req
        .tags
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("malformed tag expression: {e}")))?;
    if req.parameters.len() > MAX_PARAMETERS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_PARAMETERS} parameters"
        )));
    }
    if let Some(bad) = req
        .parameters
        .keys()
        .find(|k| !paddock_core::job_files::valid_name(k))
    {
        return Err(ApiError::BadRequest(format!(
            "invalid parameter name {bad:?}: use A-Z a-z 0-9 _ . -, not starting with '.'"
        )));
    }
    if let Some(bad) = req
        .ssh_keys
        .iter()
        .position(|k| k.trim().is_empty() || k.contains('\n'))
    {
        return Err(ApiError::BadRequest(format!(
            "ssh_keys[{bad}]: must be one non-empty line"
        )));
    }
    let c = &app.config;
    let live = app.instance_settings().await?;
    let timeout_s = req.timeout_s.unwrap_or(live.default_job_timeout_s);
    if timeout_s == 0 || timeout_s > c.max_job_timeout_s {
        return Err(ApiError::BadRequest(format!(
            "timeout_s must be between 1 and {}",
            c.max_job_timeout_s
        )));
    }
    let queue_timeout_s = req.queue_timeout_s.unwrap_or(live.default_queue_timeout_s);
    if queue_timeout_s == 0 || queue_timeout_s > c.max_queue_timeout_s {
        return Err(ApiError::BadRequest(format!(
            "queue_timeout_s must be between 1 and {}",
            c.max_queue_timeout_s
        )));
    }
    let could_match = app.active_supervisors().await?.iter().any(|s| {
        expr.matches(&s.tag_strs()) && user_may_use(s, &live.acl, &caller.user, &caller.privileges)
    });
    let match_error = if could_match {
        None
    } else {
        // Rare: read every supervisor, retired ones too, to say why each was refused.
        let all = app.db.list_supervisors().await?;
        crate::scheduler::match_error(&all, &expr, &live, &caller.user, &caller.privileges)
    };
    let new = NewJob {
        user: caller.user.clone(),
        image_id,
        tag_expr: expr.to_string(),
        parameters: req.parameters,
        ssh_keys: req.ssh_keys,
        timeout_s,
        queue_timeout_s,
        priority: req.priority,
    };
    let job = app.db.create_job(new, match_error).await?;
    tracing::info!(job.id = %job.id, user = %caller.user, state = %job.state.execution_state, "job enqueued");
    app.events_changed();
    app.wake_scheduler();
    Ok((
        StatusCode::CREATED,
        Json(EnqueueJobResponse { job_id: job.id }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<ExecutionState>,
    user: Option<Name>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let user = if caller.has(Privilege::ListJobs) {
        q.user
    } else {
        Some(caller.user.clone())
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIST_LIMIT}"
        )));
    }
    let before = q
        .cursor
        .map(|c| match c.parse::<i64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "malformed cursor {c:?}: pass a response's next_cursor"
            ))),
        })
        .transpose()?;
    let jobs = app
        .db
        .list_jobs(q.state, user.as_ref(), before, limit)
        .await?;
    let next_cursor = (jobs.len() as i64 == limit)
        .then(|| jobs.last().map(|j| j.seq.to_string()))
        .flatten();
    Ok(Json(JobList {
        jobs: jobs.iter().map(Job::view).collect(),
        next_cursor,
    }))
}

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadRequest(format!("malformed job id {id:?}")))
}

/// Loads a job the caller may see: its own, or any with `list_jobs`. Others are 404.
async fn visible_job(app: &AppState, caller: &Caller, id: &str) -> Result<Job, ApiError> {
    job_for(app, caller, id, &[Privilege::ListJobs]).await
}

/// Loads a job that is the caller's own or that one of `privileges` lets it reach; others are
/// 404, so a job's existence is not revealed.
async fn job_for(
    app: &AppState,
    caller: &Caller,
    id: &str,
    privileges: &[Privilege],
) -> Result<Job, ApiError> {
    let job = app.db.get_job(parse_id(id)?).await.map_err(|e| match e {
        crate::db::StoreError::NotFound => ApiError::NotFound("job"),
        e => e.into(),
    })?;
    if job.user != caller.user && !privileges.iter().any(|p| caller.has(*p)) {
        return Err(ApiError::NotFound("job"));
    }
    Ok(job)
}

pub async fn get(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(visible_job(&app, &caller, &id).await?.view()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleQuery {
    /// Only output after this cursor (from a previous response's `X-Paddock-Console-Cursor`).
    after: Option<i64>,
}

/// The console as plain text. `X-Paddock-Console-Cursor` is where the next `?after=` starts,
/// so `paddock job logs --follow` reads each byte once.
pub async fn console(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<ConsoleQuery>,
) -> Result<Response, ApiError> {
    let job = visible_job(&app, &caller, &id).await?;
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::BadRequest(
            "after must be a cursor from X-Paddock-Console-Cursor (0 or more)".into(),
        ));
    }
    let (text, cursor) = app.db.console_after(job.id, after).await?;
    Ok((
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (
                axum::http::HeaderName::from_static(CONSOLE_CURSOR),
                cursor.to_string(),
            ),
        ],
        text,
    )
        .into_response())
}

/// The most bytes a `POST /jobs/{id}/console/input` body may take: its `data` at most
/// [`CONSOLE_INPUT_MAX`] bytes, each escaped in JSON at most six times over (`\u0000`).
pub const CONSOLE_INPUT_BODY_MAX: usize = 6 * CONSOLE_INPUT_MAX + 1024;

/// Input for a job's live console, sent to its supervisor as `console_input`. The route's
/// guard asks for `console_input`; the job must be one the caller may see (its own, or any
/// with `list_jobs`), started (`initializing` or `ready`) on a supervisor connected to this
/// process. The text is never stored or logged (its length is).
pub async fn console_input(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<ConsoleInputRequest>,
) -> Result<(StatusCode, Json<ConsoleInputResponse>), ApiError> {
    let job = visible_job(&app, &caller, &id).await?;
    if body.data.is_empty() {
        return Err(ApiError::BadRequest("data: empty console input".into()));
    }
    if body.data.len() > CONSOLE_INPUT_MAX {
        return Err(ApiError::Rejected(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "data: {} bytes of console input, at most {CONSOLE_INPUT_MAX} per request",
                body.data.len()
            ),
        ));
    }
    let state = job.state.execution_state;
    if !matches!(state, ExecutionState::Initializing | ExecutionState::Ready) {
        return Err(ApiError::Conflict(format!(
            "job {} is {}: console input needs a job whose host runs (initializing or ready)",
            job.id,
            state.as_str()
        )));
    }
    let Some(sup) = job.supervisor_id else {
        return Err(ApiError::Conflict(format!(
            "job {} has no supervisor",
            job.id
        )));
    };
    let bytes = body.data.len();
    let sent = app.hub.send(
        sup,
        SwitchboardMessage::ConsoleInput {
            job_id: job.id,
            data: ConsoleInput(body.data),
        },
    );
    if !sent {
        return Err(ApiError::Conflict(format!(
            "job {}: its supervisor is not connected to this switchboard",
            job.id
        )));
    }
    tracing::info!(job.id = %job.id, user = %caller.user, bytes, "console input sent");
    Ok((StatusCode::ACCEPTED, Json(ConsoleInputResponse { bytes })))
}

/// Response header carrying the console cursor.
pub const CONSOLE_CURSOR: &str = "x-paddock-console-cursor";

/// The event log: JSON by default; a Server-Sent Events stream when the client accepts
/// `text/event-stream` (each event's `id` is the log id, so `Last-Event-ID` resumes). The stream
/// ends after the event that terminates the job.
pub async fn events(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = visible_job(&app, &caller, &id).await?;
    let wants_sse = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_sse {
        return Ok(Json(JobEventList {
            events: app.db.job_events(job.id, 0).await?,
        })
        .into_response());
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0i64);
    let mut changes = app.events.subscribe();
    let stream = async_stream(move |tx| async move {
        let mut last = after;
        loop {
            changes.mark_unchanged();
            let events = match app.db.job_events(job.id, last).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(job.id = %job.id, error = format!("{e:#}"), "reading events for stream");
                    return;
                }
            };
            for e in events {
                last = e.id;
                let done = e.to_state == ExecutionState::Terminated;
                let data = serde_json::to_string(&e).unwrap_or_default();
                if tx
                    .send(Ok(Event::default()
                        .id(e.id.to_string())
                        .event("job_event")
                        .data(data)))
                    .await
                    .is_err()
                {
                    return;
                }
                if done {
                    return;
                }
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// A stream fed by a task; the task ends when the client goes away.
fn async_stream<F, Fut>(f: F) -> tokio_stream::wrappers::ReceiverStream<Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Cancels a job: a queued job terminates at once (`job_canceled`); a dispatched one gets
/// `job_canceled` and its supervisor a `stop_job`; the supervisor then terminates it (or the
/// reaper does after `stop_grace_s`).
pub async fn cancel(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    // `cancel_jobs` alone reaches every job: cancelling needs no right to list.
    let job = job_for(
        &app,
        &caller,
        &id,
        &[Privilege::ListJobs, Privilege::CancelJobs],
    )
    .await?;
    if job.user != caller.user && !caller.has(Privilege::CancelJobs) {
        return Err(ApiError::Forbidden(Privilege::CancelJobs.to_string()));
    }
    let by = format!("canceled by {}", caller.user);
    let change = match job.state.execution_state {
        ExecutionState::Terminated => {
            return Err(ApiError::Conflict(format!(
                "job {} is already terminated",
                job.id
            )));
        }
        ExecutionState::Queued => Change::by_switchboard(
            Transition::to_with(ExecutionState::Terminated, ExitStatus::JobCanceled),
            by,
        ),
        _ => {
            let mut c = Change::by_switchboard(Transition::status(ExitStatus::JobCanceled), by);
            c.request_stop = true;
            c
        }
    };
    let r = app.db.transition(job.id, &change).await?;
    if !r.job.state.is_terminated() {
        if let Some(sup) = r.job.supervisor_id {
            app.hub.send(
                sup,
                SwitchboardMessage::StopJob {
                    job_id: job.id,
                    reason: "canceled".into(),
                },
            );
        }
    } else {
        app.wake_scheduler();
    }
    app.events_changed();
    tracing::info!(job.id = %job.id, user = %caller.user, "job cancel requested");
    Ok(Json(r.job.view()))
}
