//! Domain types shared by every Paddock service: validated ids and names, the job lifecycle
//! state machine, tag expressions, ACL evaluation, privileges and the wire types of the HTTP API
//! and of the supervisor WebSocket protocol. No network or database code lives here; the file
//! system is read only to load a service's configuration file (`config_file`) and to see
//! whether a systemd credential is present (`credential`). With the `logging` feature,
//! `logging` sets up the services' logs (`RUST_LOG`, with payload-logging libraries capped);
//! with `service`, `service` is the start-up every binary shares (runtime, signals, exit codes).

pub mod acl;
pub mod api;
pub mod config_file;
pub mod credential;
pub mod deployments;
pub mod error_text;
pub mod ids;
pub mod job_files;
pub mod lifecycle;
#[cfg(feature = "logging")]
pub mod logging;
pub mod manifest;
pub mod privilege;
pub mod protocol;
pub mod puppet;
#[cfg(feature = "service")]
pub mod service;
pub mod tags;
pub mod transport;

pub use ids::{ImageId, JobId, Name, SupervisorId};
pub use lifecycle::{Actor, ExecutionState, ExitStatus, JobState, Transition, TransitionError};
pub use privilege::Privilege;
pub use tags::{Tag, TagExpr};
