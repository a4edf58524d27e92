//! `GET /healthz` (the database answers) and `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn healthz(State(app): State<AppState>) -> Result<&'static str, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&app.db.pool)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok("ok\n")
}

pub async fn metrics(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let jobs = app.db.count_jobs_by_state().await?;
    let mut body = app.metrics.render(&jobs, app.hub.len());
    body.push_str(&deployment_metrics(&app.db.applied_deployment().await?));
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

/// The deployments repo's state: applied generation and time, and the newest rejected commit
/// (with the place of its first error) until the next successful apply.
fn deployment_metrics(d: &crate::db::deployment::Applied) -> String {
    // Label values: backslash, double quote and newline escaped (Prometheus text format).
    let esc = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = format!(
        "# HELP paddock_deployment_generation Generation of the applied deployments state (0: none).\n\
         # TYPE paddock_deployment_generation gauge\n\
         paddock_deployment_generation {}\n\
         # HELP paddock_deployment_applied_timestamp_seconds When the applied state was applied.\n\
         # TYPE paddock_deployment_applied_timestamp_seconds gauge\n\
         paddock_deployment_applied_timestamp_seconds {}\n\
         # HELP paddock_deployment_rejected_errors Errors of the newest rejected commit since the last apply (0: none).\n\
         # TYPE paddock_deployment_rejected_errors gauge\n",
        d.generation,
        d.applied_at / 1000
    );
    match &d.last_error {
        None => out.push_str("paddock_deployment_rejected_errors 0\n"),
        Some(r) => {
            let first = r.errors.first().map(String::as_str).unwrap_or("");
            // `file:line:column` of the first error (its message may be long).
            let place: String = first.splitn(4, ':').take(3).collect::<Vec<_>>().join(":");
            out.push_str(&format!(
                "paddock_deployment_rejected_errors{{commit=\"{}\",first=\"{}\"}} {}\n",
                esc(&r.commit),
                esc(&place),
                r.total_errors.max(r.errors.len())
            ));
        }
    }
    out
}
