//! HTTP surface: `/healthz`, `/metrics` and the versioned API.

pub mod health;
pub mod json;
pub mod v1;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn routes(app: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", v1::routes(app.clone()))
        .with_state(app)
}
