//! `/api/v1/audit/reports`: audit reports of supervisors' hosts (`paddock-audit collect|check
//! --report-to`), kept with history; the latest check run gates scheduling.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use paddock_core::Name;
use paddock_core::api::audit::{
    AuditHistory, AuditKind, AuditRecord, HistoryQuery, LatestAudits, LatestQuery, Recorded,
    ReportRequest,
};
use serde_json::Value;

use crate::api::json::{Json, Path};
use crate::db::StoreError;
use crate::error::ApiError;
use crate::state::AppState;

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("supervisor or report"),
        e => e.into(),
    }
}

/// `(verdict, failures, warnings)` of a report, checked for the shape of its kind.
fn summary(kind: AuditKind, report: &Value) -> Result<(String, i64, i64), ApiError> {
    let bad = |m: &str| ApiError::BadRequest(format!("report: {m}"));
    let s = report.get("summary").ok_or_else(|| bad("no `summary`"))?;
    let count = |k: &str| {
        s.get(k)
            .and_then(Value::as_i64)
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad(&format!("summary.{k}: a count ≥ 0")))
    };
    let (failures, warnings) = (count("failures")?, count("warnings")?);
    let verdict = match kind {
        AuditKind::Collect => {
            let format = report.get("format").and_then(Value::as_str).unwrap_or("");
            if !format.starts_with("paddock-audit/") {
                return Err(bad("`format` is not paddock-audit/…"));
            }
            let v = s.get("verdict").and_then(Value::as_str).unwrap_or("");
            if !["OK", "WARNING", "FAILED"].contains(&v) {
                return Err(bad("summary.verdict: OK, WARNING or FAILED"));
            }
            v.to_string()
        }
        AuditKind::Check => {
            count("checks")?;
            if !report.get("checks").is_some_and(Value::is_array) {
                return Err(bad("`checks`: the list of results"));
            }
            match (failures, warnings) {
                (0, 0) => "OK",
                (0, _) => "WARNING",
                _ => "FAILED",
            }
            .to_string()
        }
    };
    Ok((verdict, failures, warnings))
}

pub async fn post(
    State(app): State<AppState>,
    Json(req): Json<ReportRequest>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let (verdict, failures, warnings) = summary(req.kind, &req.report)?;
    let r = app
        .db
        .record_audit(
            &req.supervisor,
            req.kind,
            &verdict,
            failures,
            warnings,
            &req.report,
        )
        .await
        .map_err(not_found)?;
    let _span = tracing::info_span!("audit", supervisor.id = %r.supervisor_id).entered();
    tracing::info!(kind = req.kind.as_str(), %verdict, failures, warnings, blocked = r.audit_blocked, "audit report");
    if req.kind == AuditKind::Check && !r.audit_blocked {
        // A passing run may free a supervisor for queued jobs.
        app.wake_scheduler();
    }
    Ok((StatusCode::CREATED, Json(r)))
}

pub async fn history(
    State(app): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20).clamp(1, 1000);
    let reports = app
        .db
        .audit_history(&q.supervisor, q.kind, limit)
        .await
        .map_err(not_found)?;
    sorted(&AuditHistory { reports })
}

pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<AuditRecord>, ApiError> {
    Ok(Json(app.db.audit_report(id).await.map_err(not_found)?))
}

/// The newest inventory and the newest check run of a supervisor's host, with their bodies
/// (`null` where none arrived yet).
pub async fn latest(
    State(app): State<AppState>,
    Query(q): Query<LatestQuery>,
) -> Result<Json<Value>, ApiError> {
    let collect = newest(&app, &q.supervisor, AuditKind::Collect).await?;
    let check = newest(&app, &q.supervisor, AuditKind::Check).await?;
    sorted(&LatestAudits { check, collect })
}

/// The newest report of `kind` of supervisor `name`'s host, with its body.
async fn newest(
    app: &AppState,
    name: &Name,
    kind: AuditKind,
) -> Result<Option<AuditRecord>, ApiError> {
    let history = app
        .db
        .audit_history(name, Some(kind), 1)
        .await
        .map_err(not_found)?;
    match history.first() {
        Some(r) => Ok(Some(app.db.audit_report(r.id).await.map_err(not_found)?)),
        None => Ok(None),
    }
}

/// An answer as a JSON value: keys sorted, as the history and the latest reports were always
/// written (one report and the post's answer are written from their structs).
fn sorted<T: serde::Serialize>(answer: &T) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(answer)
        .map(Json)
        .map_err(|e| ApiError::Internal(e.into()))
}
