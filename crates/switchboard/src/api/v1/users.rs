//! `/api/v1/users` (admin only): create a user (answers with its first token, shown once) and
//! list users.

use axum::extract::State;
use axum::http::StatusCode;
use paddock_core::api::auth::NewToken;
use paddock_core::api::users::{CreateUserRequest, UserView};
use serde::Serialize;

use crate::api::json::Json;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct CreatedUser {
    user: UserView,
    token: NewToken,
}

pub async fn create(
    State(app): State<AppState>,
    Json(req): Json<CreateUserRequest>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    let user = app
        .db
        .create_user(&req.name, req.email.as_deref(), &req.privileges)
        .await?;
    // The first token lives `token_ttl_s` (at most `max_token_ttl_s`, checked at start).
    let token = crate::tokens::mint(&app.db, &user.name, Some(app.config.token_ttl_s)).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: user.view(),
            token,
        }),
    ))
}

pub async fn list(State(app): State<AppState>) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(
        app.db
            .list_users()
            .await?
            .iter()
            .map(|u| u.view())
            .collect(),
    ))
}
