//! paddock-supervisor: the site agent. It owns one host (and the device under test attached to
//! it), keeps a WebSocket to the switchboard (`connection.rs`), and runs the jobs it is given
//! (`supervisor.rs`, `job.rs`) through a host driver (`driver/`). Jobs report readiness and
//! results over the puppet socket (`puppet_socket.rs`). The `paddock-supervisor` binary (installed by paddock-cli) only calls [`cli::main`].

pub mod backoff;
pub mod cli;
pub mod config;
pub mod connection;
pub mod driver;
pub mod image_cache;
pub mod job;
pub mod puppet_socket;
pub mod supervisor;

pub use config::Config;
pub use supervisor::{Settings, run};
