//! The one client library of Paddock's HTTP APIs:
//!
//! - [`Switchboard`]: the switchboard's API (`/api/v1`), used by the `paddock` CLI, the deploy
//!   daemon, the audit agent and the benchmarks: the URL checked before use (naming where it
//!   came from), the bearer token, the server's `error` message read from a failed answer,
//!   answers decoded into the wire types of `paddock_core::api`;
//! - [`StoreClient`]: an image store's store paths and image API, used by the image store
//!   library's push, pull and mirror, the supervisor's image cache and the switchboard's
//!   label lookup.
//!
//! Both share [`transport`]: the HTTP client's settings, answers read with a bound, retries
//! of reads that got no answer. Errors are typed ([`ClientError`], [`StoreApiError`]);
//! callers add their own context.

mod error;
pub mod store;
mod switchboard;
pub mod transport;
mod url;

pub use error::ClientError;
pub use store::{Found, StoreApiError, StoreClient};
pub use switchboard::{Switchboard, Timeouts};
pub use url::check_http_url;
