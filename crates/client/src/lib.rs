//! The one client of the switchboard's HTTP API (`/api/v1`), used by the `paddock` CLI, the
//! deploy daemon and the audit agent: the URL checked before use (naming where it came from),
//! the bearer token, timeouts, retries of idempotent requests, the server's `error` message
//! read from a failed answer, answers read with a bound and decoded into the wire types of
//! `paddock_core::api`. Errors are typed ([`ClientError`]); callers add their own context.

mod error;
mod switchboard;
mod url;

pub use error::ClientError;
pub use switchboard::{Switchboard, Timeouts};
pub use url::check_http_url;
