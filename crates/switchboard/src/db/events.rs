//! The per-job event log: every transition, who made it, when, from what to what, and why. Rows
//! are written by database triggers on `jobs` (migration 0003), in the same statement as the
//! change they record.

use paddock_core::api::format_ms;
use paddock_core::api::jobs::JobEvent;
use paddock_core::{Actor, JobId};
use sqlx::Row;

use super::{Db, Result, parse_col, parse_opt};

impl Db {
    /// Events of a job with an id above `after`, oldest first.
    pub async fn job_events(&self, job: JobId, after: i64) -> Result<Vec<JobEvent>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, from_state, to_state, from_status, to_status, message FROM job_events \
             WHERE job_id = $1 AND id > $2 ORDER BY id",
        )
        .bind(job.to_string())
        .bind(after)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let actor = match r.try_get::<String, _>("actor")?.as_str() {
                    "supervisor" => Actor::Supervisor,
                    _ => Actor::Switchboard,
                };
                Ok(JobEvent {
                    id: r.try_get("id")?,
                    job_id: job,
                    at: format_ms(r.try_get("at")?),
                    actor,
                    from_state: parse_opt("from_state", r.try_get("from_state")?)?,
                    to_state: parse_col("to_state", &r.try_get::<String, _>("to_state")?)?,
                    from_status: parse_opt("from_status", r.try_get("from_status")?)?,
                    to_status: parse_opt("to_status", r.try_get("to_status")?)?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }
}
