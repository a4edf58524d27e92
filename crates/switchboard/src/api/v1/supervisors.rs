//! `/api/v1/supervisors`: create (prints the token once), list, get, update.
//!
//! Who may do what (docs/switchboard.md, "Supervisors and `manage_supervisors`"): a supervisor
//! in service receives every matching job with its secret parameters, so putting one in
//! service (`ready_for_service`) and resetting the token of one in service are the admin's.
//! `manage_supervisors` alone registers supervisors out of service, changes tags and ACLs,
//! retires, takes out of service, and resets tokens of supervisors out of service that have
//! never connected.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use paddock_core::api::supervisors::{
    CreateSupervisorRequest, NewSupervisor as NewSupervisorView, SupervisorList, SupervisorView,
    UpdateSupervisorRequest,
};
use paddock_core::{Privilege, SupervisorId};

use crate::api::json::{Json, Path};
use crate::auth::{Caller, SUPERVISOR_TOKEN_PREFIX, hash_token, new_token};
use crate::db::StoreError;
use crate::db::supervisors::NewSupervisor;
use crate::error::ApiError;
use crate::state::AppState;

/// The longest `comment` a PATCH may set.
const MAX_COMMENT_BYTES: usize = 4096;

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

/// The refusal of a change only an admin may make.
fn admins_only(what: &str) -> ApiError {
    ApiError::Rejected(
        StatusCode::FORBIDDEN,
        format!(
            "only an admin may {what}: a supervisor in service receives other users' jobs and their secrets"
        ),
    )
}

/// Registers a supervisor. One registered by a non-admin starts out of service, until an admin
/// puts it in service.
pub async fn create(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<CreateSupervisorRequest>,
) -> Result<(StatusCode, Json<NewSupervisorView>), ApiError> {
    let admin = caller.has(Privilege::Admin);
    if req.ready_for_service == Some(true) && !admin {
        return Err(admins_only("put a supervisor in service"));
    }
    let token = new_token(SUPERVISOR_TOKEN_PREFIX);
    let id = app
        .db
        .create_supervisor(NewSupervisor {
            name: &req.name,
            site: &req.site,
            tags: &req.tags,
            acl: &req.acl,
            ready_for_service: req.ready_for_service.unwrap_or(admin),
            token_hash: &hash_token(&token),
        })
        .await?;
    tracing::info!(supervisor.id = %id, supervisor.name = %req.name, by = %caller.user, "supervisor created");
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

/// Changes tags, ACL, retirement, readiness or the comment. Retiring a supervisor lets its running job
/// finish; the scheduler gives it nothing new. Only an admin puts one in service.
pub async fn update(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(req): Json<UpdateSupervisorRequest>,
) -> Result<Json<SupervisorView>, ApiError> {
    if req.ready_for_service == Some(true) && !caller.has(Privilege::Admin) {
        return Err(admins_only("put a supervisor in service"));
    }
    if let Some(c) = &req.comment
        && c.len() > MAX_COMMENT_BYTES
    {
        return Err(ApiError::BadRequest(format!(
            "comment: at most {MAX_COMMENT_BYTES} bytes"
        )));
    }
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
/// supervisor the deployments repo declares without `token_sha256`, or a lost token. Only an
/// admin resets the token of a supervisor that is in service or has ever connected (a new token
/// would let its holder impersonate it, and an admin approving it later would not know); a
/// manager may reset that of one registered and never used.
pub async fn reset_token(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<NewSupervisorView>, ApiError> {
    let id = parse_id(&id)?;
    let s = app.db.get_supervisor(id).await.map_err(not_found)?;
    let token = new_token(SUPERVISOR_TOKEN_PREFIX);
    if caller.has(Privilege::Admin) {
        app.db
            .set_supervisor_token(id, &hash_token(&token))
            .await
            .map_err(not_found)?;
    } else if !app
        .db
        .set_unused_supervisor_token(id, &hash_token(&token))
        .await?
    {
        return Err(admins_only(
            "reset the token of a supervisor that is in service or has ever connected",
        ));
    }
    tracing::info!(supervisor.id = %id, supervisor.name = %s.name, by = %caller.user, "supervisor token reset");
    Ok(Json(NewSupervisorView {
        id,
        name: s.name,
        token,
    }))
}
