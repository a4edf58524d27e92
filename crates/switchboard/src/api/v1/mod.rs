//! The `/api/v1` route table. Each group of routes is wrapped in the guard that authenticates
//! the caller and checks the privileges it needs; only `login` and the supervisor socket (which
//! authenticates supervisors itself) are outside a guard.

pub mod audit;
pub mod deployment;
pub mod jobs;
pub mod socket;
pub mod supervisors;
pub mod tokens;
pub mod users;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};
use paddock_core::Privilege::*;

use crate::auth::{Guard, guard};
use crate::state::AppState;

fn guarded(app: &AppState, g: Guard, r: Router<AppState>) -> Router<AppState> {
    r.route_layer(from_fn_with_state((app.clone(), g), guard))
}

pub fn routes(app: AppState) -> Router<AppState> {
    let any_user = Router::new()
        .route("/whoami", get(tokens::whoami))
        .route("/tokens", post(tokens::create))
        .route("/tokens/{id}", delete(tokens::revoke));
    let admin = Router::new()
        .route("/users", get(users::list).post(users::create))
        .route(
            "/deployment",
            get(deployment::status).post(deployment::apply),
        )
        .route(
            "/deployment/rejection",
            post(deployment::reject).delete(deployment::clear_rejection),
        )
        .route("/deployment/report", post(deployment::report));
    let submit = Router::new().route("/jobs", post(jobs::enqueue));
    let read_jobs = Router::new()
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get))
        .route("/jobs/{id}/events", get(jobs::events))
        .route("/jobs/{id}/console", get(jobs::console));
    let cancel = Router::new().route("/jobs/{id}/cancel", post(jobs::cancel));
    let console_input = Router::new().route(
        "/jobs/{id}/console/input",
        post(jobs::console_input).layer(axum::extract::DefaultBodyLimit::max(
            jobs::CONSOLE_INPUT_BODY_MAX,
        )),
    );
    let read_sups = Router::new()
        .route("/supervisors", get(supervisors::list))
        .route("/supervisors/{id}", get(supervisors::get))
        .route("/audit/reports", get(audit::history))
        .route("/audit/reports/latest", get(audit::latest))
        .route("/audit/reports/{id}", get(audit::get));
    let manage_sups = Router::new()
        .route("/supervisors", post(supervisors::create))
        .route(
            "/supervisors/{id}",
            axum::routing::patch(supervisors::update),
        )
        .route("/supervisors/{id}/token", post(supervisors::reset_token))
        .route("/audit/reports", post(audit::post));
    Router::new()
        .route("/login", post(tokens::login))
        .route("/supervisor/socket", get(socket::upgrade))
        .merge(guarded(&app, Guard(&[]), any_user))
        .merge(guarded(&app, Guard(&[Admin]), admin))
        .merge(guarded(&app, Guard(&[SubmitJobs]), submit))
        .merge(guarded(&app, Guard(&[ListJobs, SubmitJobs]), read_jobs))
        .merge(guarded(&app, Guard(&[CancelJobs, SubmitJobs]), cancel))
        .merge(guarded(&app, Guard(&[ConsoleInput]), console_input))
        .merge(guarded(
            &app,
            Guard(&[ListSupervisors, ManageSupervisors]),
            read_sups,
        ))
        .merge(guarded(&app, Guard(&[ManageSupervisors]), manage_sups))
}
