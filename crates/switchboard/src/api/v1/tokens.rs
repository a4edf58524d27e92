//! `/api/v1/login`, `/api/v1/tokens` and `/api/v1/whoami`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use paddock_core::Privilege;
use paddock_core::api::auth::{CreateTokenRequest, LoginRequest, NewToken, WhoAmI};

use crate::api::json::{Json, Path};
use crate::auth::{Caller, verify_password};
use crate::error::ApiError;
use crate::state::AppState;

/// Exchanges a user name and password for a new token. Any failure is a bare 401.
pub async fn login(
    State(app): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    let hash = app.db.password_hash(&req.user).await?;
    // Verify against a dummy hash when the user has none, so timing does not reveal users.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy =
        DUMMY.get_or_init(|| crate::auth::hash_password("paddock-dummy").unwrap_or_default());
    let ok = verify_password(&req.password, hash.as_deref().unwrap_or(dummy)) && hash.is_some();
    if !ok {
        return Err(ApiError::Unauthorized);
    }
    let c = &app.config;
    let now = paddock_core::api::now_ms();
    let ttl = crate::tokens::lifetime_s(
        req.expires_in_s,
        c.token_ttl_s,
        c.max_token_ttl_s,
        None,
        now,
    )
    .map_err(ApiError::BadRequest)?;
    Ok((
        StatusCode::CREATED,
        Json(crate::tokens::mint(&app.db, &req.user, Some(ttl)).await?),
    ))
}

/// A new token for the caller: never outliving the caller's own token, nor the configured
/// maximum. Without `expires_in_s` it lives `token_ttl_s`, or as long as the caller's token.
pub async fn create(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    // The body is optional: empty means the defaults.
    let req: CreateTokenRequest = if body.is_empty() {
        CreateTokenRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("malformed body: {e}")))?
    };
    let c = &app.config;
    let ttl = crate::tokens::lifetime_s(
        req.expires_in_s,
        c.token_ttl_s,
        c.max_token_ttl_s,
        caller.token_expires_at,
        paddock_core::api::now_ms(),
    )
    .map_err(ApiError::BadRequest)?;
    Ok((
        StatusCode::CREATED,
        Json(
            crate::tokens::mint_within(&app.db, &caller.user, Some(ttl), caller.token_expires_at)
                .await?,
        ),
    ))
}

/// Revokes one of the caller's tokens (an admin may revoke anyone's).
pub async fn revoke(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let owner = (!caller.has(Privilege::Admin)).then_some(&caller.user);
    app.db.revoke_token(&id, owner).await.map_err(|e| match e {
        crate::db::StoreError::NotFound => ApiError::NotFound("token"),
        e => e.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn whoami(Extension(caller): Extension<Caller>) -> Json<WhoAmI> {
    Json(WhoAmI {
        user: caller.user,
        privileges: caller.privileges,
        token_id: caller.token_id,
    })
}
