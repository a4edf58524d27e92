//! `/api/v1/deployment`: apply the deployments repo's desired state (admin; the deploy daemon
//! calls it with each validated commit) and read which commit is applied.

use axum::extract::State;
use axum::http::StatusCode;
use paddock_core::api::deployment::{
    Applied, ApplyRequest, ApplyResponse, ClearRejectionQuery, RejectionRequest, parse_report,
};
use paddock_core::deployments::DesiredState;
use paddock_core::deployments::limits::MAX_STATE_JSON_BYTES;

use crate::api::json::{Json, Query};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn apply(
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> Result<Json<ApplyResponse>, ApiError> {
    let req = apply_request(&app, req).await?;
    if req.commit.is_empty() || req.commit.len() > 128 {
        return Err(ApiError::BadRequest(
            "commit: 1 to 128 characters".to_string(),
        ));
    }
    let d = &req.state.switchboard.defaults;
    let max = app.config.max_job_timeout_s;
    if d.job_timeout_s.is_some_and(|t| t == 0 || t > max) {
        return Err(ApiError::BadRequest(format!(
            "db/switchboard.yaml: defaults.job_timeout_s: must be between 1 and this switchboard's max_job_timeout_s ({max})"
        )));
    }
    let max = app.config.max_queue_timeout_s;
    if d.queue_timeout_s.is_some_and(|t| t == 0 || t > max) {
        return Err(ApiError::BadRequest(format!(
            "db/switchboard.yaml: defaults.queue_timeout_s: must be between 1 and this switchboard's max_queue_timeout_s ({max})"
        )));
    }
    let outcome = app
        .db
        .apply_deployment(&req.commit, req.generation, &req.state)
        .await?;
    push_configs(&app, &outcome.previous, &req.state, req.generation);
    let summary: Vec<String> = outcome.changes.iter().map(|c| c.to_string()).collect();
    for line in &summary {
        tracing::info!(commit = %req.commit, generation = req.generation, "deployment: {line}");
    }
    if !summary.is_empty() {
        // Retired or changed supervisors: the scheduler re-reads them.
        app.wake.notify_one();
    }
    Ok(Json(ApplyResponse {
        applied: outcome.applied,
        summary,
        changes: outcome.changes,
    }))
}

/// The body of `POST /deployment`, read up to [`MAX_STATE_JSON_BYTES`] (or `max_body_bytes`
/// when that is larger): every state within the deployments repo's limits fits, whatever the
/// general body limit (only an admin may send one).
async fn apply_request(
    app: &AppState,
    req: axum::extract::Request,
) -> Result<ApplyRequest, ApiError> {
    let json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError::Rejected(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected request with `Content-Type: application/json`".to_string(),
        ));
    }
    let limit = app.config.max_body_bytes.max(MAX_STATE_JSON_BYTES);
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            // http-body's `LengthLimitError`, somewhere in the chain.
            let mut cause: Option<&dyn std::error::Error> = Some(&e);
            while let Some(c) = cause {
                if c.to_string() == "length limit exceeded" {
                    return ApiError::PayloadTooLarge;
                }
                cause = c.source();
            }
            ApiError::BadRequest(format!("reading the request body: {e}"))
        })?;
    let axum::Json(req) = axum::Json::<ApplyRequest>::from_bytes(&bytes)?;
    Ok(req)
}

/// Sends its new configuration to every supervisor connected here whose configuration the
/// apply changed (`SwitchboardMessage::Config`, generation = the deployment's).
fn push_configs(app: &AppState, previous: &DesiredState, desired: &DesiredState, generation: i64) {
    use paddock_core::deployments::config_of;
    for id in app.hub.connected() {
        let new = config_of(desired, id);
        if new == config_of(previous, id) {
            continue;
        }
        let Some(config) = new else { continue };
        let _span = tracing::info_span!("config", supervisor.id = %id, generation).entered();
        if app.hub.send(
            id,
            paddock_core::protocol::SwitchboardMessage::Config {
                generation: generation.max(0) as u64,
                config: config.to_value(),
            },
        ) {
            tracing::info!("configuration pushed");
        }
    }
}

pub async fn status(State(app): State<AppState>) -> Result<Json<Applied>, ApiError> {
    Ok(Json(app.db.applied_deployment().await?))
}

/// The deploy daemon reports a commit it refused; `GET /deployment` shows it until the next
/// successful apply, or until the daemon withdraws it ([`clear_rejection`]). At most `MAX_REPORTED_ERRORS` lines are kept (more are cut, counted in
/// `total_errors`), each cut to `MAX_ERROR_LINE_BYTES`.
pub async fn reject(
    State(app): State<AppState>,
    Json(req): Json<RejectionRequest>,
) -> Result<Json<Applied>, ApiError> {
    if req.commit.is_empty() || req.commit.len() > 128 {
        return Err(ApiError::BadRequest(
            "commit: 1 to 128 characters".to_string(),
        ));
    }
    let req = req.into_rejection();
    tracing::warn!(commit = %req.commit, errors = req.total_errors, "deployment rejected");
    app.db.reject_deployment(&req).await?;
    Ok(Json(app.db.applied_deployment().await?))
}

/// The deploy daemon withdraws a rejection: the commit (or working-tree state) it rejected is
/// no longer what its sources hold (an edit reverted to the live content, a branch reset to
/// the live commit). Cleared only while the recorded rejection is still of `commit`, so a newer
/// rejection is never lost; either way the answer is the applied state.
pub async fn clear_rejection(
    State(app): State<AppState>,
    Query(q): Query<ClearRejectionQuery>,
) -> Result<Json<Applied>, ApiError> {
    if app.db.clear_deployment_rejection(&q.commit).await? {
        tracing::info!(commit = %q.commit, "deployment rejection withdrawn");
    }
    Ok(Json(app.db.applied_deployment().await?))
}

/// The deploy daemon reports what it sees (a JSON object of at most 64 KiB: the remote
/// branch's commit, the working tree, the last host activation, the pending commit and the
/// drift); `GET /deployment` shows it as `report`. It must read as a
/// [`paddock_core::api::deployment::Report`], without unknown fields (400 otherwise).
pub async fn report(
    State(app): State<AppState>,
    Json(report): Json<serde_json::Value>,
) -> Result<Json<Applied>, ApiError> {
    if !report.is_object() || report.to_string().len() > 64 * 1024 {
        return Err(ApiError::BadRequest(
            "a deployment report is a JSON object of at most 64 KiB".to_string(),
        ));
    }
    let report = parse_report(&report)
        .map_err(|e| ApiError::BadRequest(format!("deployment report: {e}")))?;
    app.db.report_deployment(&report).await?;
    Ok(Json(app.db.applied_deployment().await?))
}
