//! `/api/v1/supervisors`: create (prints the token once), list, get, update.

use axum::extract::State;
use axum::http::StatusCode;
use paddock_core::SupervisorId;
use paddock_core::api::supervisors::{
    CreateSupervisorRequest, NewSupervisor as NewSupervisorView, SupervisorList, SupervisorView,
    UpdateSupervisorRequest,
};

use crate::api::json::{Json, Path};
use crate::app::AppState;
use crate::auth::{SUPERVISOR_TOKEN_PREFIX, hash_token, new_token};
use crate::db::StoreError;
use crate::db::supervisors::NewSupervisor;
use crate::error::ApiError;

fn parse_id(id: &str) -> Result<SupervisorId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadRequest(format!("malformed supervisor id {id:?}")))
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("supervisor"),
        e => e.into(),
    }
}

pub async fn create(
    State(app): State<AppState>,
    Json(req): Json<CreateSupervisorRequest>,
) -> Result<(StatusCode, Json<NewSupervisorView>), ApiError> {
    let token = new_token(SUPERVISOR_TOKEN_PREFIX);
    let id = app
        .db
        .create_supervisor(NewSupervisor {
            name: &req.name,
            site: &req.site,
            tags: &req.tags,
            acl: &req.acl,
            ready_for_service: req.ready_for_service.unwrap_or(true),
            token_hash: &hash_token(&token),
        })
        .await?;
    tracing::info!(supervisor.id = %id, supervisor.name = %req.name, "supervisor created");
    Ok((
        StatusCode::CREATED,
        Json(NewSupervisorView {
            id,
            name: req.name,
            token,
        }),
    ))
}

pub async fn list(State(app): State<AppState>) -> Result<Json<SupervisorList>, ApiError> {
    let now = paddock_core::api::now_ms();
    let liveness = app.config.liveness_ms();
    let supervisors = app
        .db
        .list_supervisors()
        .await?
        .iter()
        .map(|s| s.view(now, liveness))
        .collect();
    Ok(Json(SupervisorList { supervisors }))
}

pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SupervisorView>, ApiError> {
    let s = app
        .db
        .get_supervisor(parse_id(&id)?)
        .await
        .map_err(not_found)?;
    Ok(Json(s.view(
        paddock_core::api::now_ms(),
        app.config.liveness_ms(),
    )))
}

/// Changes tags, ACL, retirement or readiness. Retiring a supervisor lets its running job
/// finish; the scheduler gives it nothing new.
pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateSupervisorRequest>,
) -> Result<Json<SupervisorView>, ApiError> {
    let s = app
        .db
        .update_supervisor(parse_id(&id)?, &req)
        .await
        .map_err(not_found)?;
    app.wake_scheduler();
    Ok(Json(s.view(
        paddock_core::api::now_ms(),
        app.config.liveness_ms(),
    )))
}

/// Mints a new token for a supervisor and shows it once (the old one stops working): for a
/// supervisor the deployments repo declares without `token_sha256`, or a lost token.
pub async fn reset_token(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<NewSupervisorView>, ApiError> {
    let id = parse_id(&id)?;
    let s = app.db.get_supervisor(id).await.map_err(not_found)?;
    let token = new_token(SUPERVISOR_TOKEN_PREFIX);
    app.db
        .set_supervisor_token(id, &hash_token(&token))
        .await
        .map_err(not_found)?;
    tracing::info!(supervisor.id = %id, supervisor.name = %s.name, "supervisor token reset");
    Ok(Json(NewSupervisorView {
        id,
        name: s.name,
        token,
    }))
}
