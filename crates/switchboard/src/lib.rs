//! paddock-switchboard: the central coordinator. It keeps users, tokens, supervisors and jobs in
//! a database (SQLite or PostgreSQL), serves the JSON API and the supervisor WebSocket, and runs
//! the scheduler and the reaper. `main.rs` only wires the command line to [`cli`].

pub mod api;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod hub;
pub mod liveness;
pub mod metrics;
pub mod reaper;
pub mod scheduler;
pub mod server;
pub mod sim;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;

pub use config::Config;
pub use server::{router, run, run_with};
pub use state::AppState;
