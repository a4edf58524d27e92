//! `GET /healthz` (the database answers) and `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::error::ApiError;

pub async fn healthz(State(app): State<AppState>) -> Result<&'static str, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&app.db.pool)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok("ok\n")
}

pub async fn metrics(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let jobs = app.db.count_jobs_by_state().await?;
    let body = app.metrics.render(&jobs, app.hub.len());
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}
