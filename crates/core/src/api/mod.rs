//! Wire types of the switchboard's HTTP API (`/api/v1`), one file per resource, and of the
//! image store server's (`images`).

pub mod audit;
pub mod auth;
pub mod deployment;
pub mod error;
pub mod images;
pub mod jobs;
pub mod supervisors;
pub mod users;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats a millisecond Unix timestamp as RFC 3339 (UTC).
pub fn format_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
