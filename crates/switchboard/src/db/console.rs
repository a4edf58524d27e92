//! Console output of jobs, stored in arrival order, with its accounting: each job keeps at most
//! `console_limit_bytes`; what is dropped (past the limit here, or by a supervisor that could
//! not deliver it) is counted exactly and reported by a marker line in the console and an event
//! of the job (docs/switchboard.md "Console").

use paddock_core::protocol::ConsoleStream;
use paddock_core::{Actor, JobId, SupervisorId};
use sqlx::{Any, Row, Transaction};

use super::{Backend, Db, Result, StoreError};

/// The marker line for `bytes` dropped console bytes: on a line of its own.
pub fn dropped_marker(bytes: u64, reason: &str) -> String {
    format!("[paddock: {bytes} bytes of console output dropped: {reason}]")
}

/// The reason of the marker for output past the job's limit.
pub fn limit_reason(limit: u64) -> String {
    format!("the job's console limit of {limit} bytes was reached")
}

/// The longest prefix of `data` of at most `max` bytes that ends on a character boundary.
fn prefix(data: &str, max: usize) -> &str {
    let mut end = max.min(data.len());
    while !data.is_char_boundary(end) {
        end -= 1;
    }
    &data[..end]
}

fn stream_name(stream: ConsoleStream) -> &'static str {
    match stream {
        ConsoleStream::Stdout => "stdout",
        ConsoleStream::Stderr => "stderr",
        ConsoleStream::Serial => "serial",
    }
}

impl Db {
    /// Appends console output, only if the job is assigned to `from`. Output is kept while the
    /// job's console is under `limit` bytes (a chunk that crosses it is cut at a character
    /// boundary); from the first byte that does not fit on, everything is dropped and counted.
    /// Returns the bytes dropped from this chunk.
    pub async fn append_console(
        &self,
        job: JobId,
        from: SupervisorId,
        stream: ConsoleStream,
        data: &str,
        limit: u64,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        assigned(&mut tx, job, from).await?;
        let (kept, dropped) = self.totals(&mut tx, job).await?;
        let room = if dropped > 0 {
            0
        } else {
            limit.saturating_sub(kept)
        };
        let keep = prefix(data, usize::try_from(room).unwrap_or(usize::MAX));
        let lost = (data.len() - keep.len()) as u64;
        if !keep.is_empty() {
            insert_chunk(&mut tx, job, stream_name(stream), keep).await?;
        }
        sqlx::query(
            "UPDATE console_totals SET kept_bytes = kept_bytes + $2, dropped_bytes = dropped_bytes + $3 \
             WHERE job_id = $1",
        )
        .bind(job.to_string())
        .bind(keep.len() as i64)
        .bind(lost as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(lost)
    }

    /// Records console output that `from` (the job's supervisor) dropped: a marker line in the
    /// console (whatever the limit) and an event.
    pub async fn console_dropped_by_supervisor(
        &self,
        job: JobId,
        from: SupervisorId,
        bytes: u64,
        reason: &str,
    ) -> Result<()> {
        // The reason is the supervisor's text: bounded, so these notes cannot carry more than
        // a line each past the console limit.
        let mut end = reason.len().min(MAX_DROP_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut tx = self.pool.begin().await?;
        assigned(&mut tx, job, from).await?;
        let terminated = sqlx::query(
            "SELECT 1 AS one FROM jobs WHERE id = $1 AND execution_state = 'terminated'",
        )
        .bind(job.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if terminated {
            return Err(StoreError::Conflict(format!("job {job} is terminated")));
        }
        note(
            &mut tx,
            job,
            Actor::Supervisor,
            &dropped_marker(bytes, &reason[..end]),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reports the bytes dropped past the job's limit and not reported yet, with a marker line
    /// and an event; called when the job's output has ended (its supervisor reports it
    /// terminated). Returns the bytes reported (0: nothing was dropped since the last report).
    /// Only for the job's own supervisor `from`.
    pub async fn note_console_limit(
        &self,
        job: JobId,
        from: SupervisorId,
        limit: u64,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        assigned(&mut tx, job, from).await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "SELECT dropped_bytes, noted_bytes FROM console_totals WHERE job_id = $1{lock}"
        ))
        .bind(job.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(0);
        };
        let dropped: i64 = row.try_get("dropped_bytes")?;
        let noted: i64 = row.try_get("noted_bytes")?;
        if dropped <= noted {
            return Ok(0);
        }
        sqlx::query("UPDATE console_totals SET noted_bytes = $2 WHERE job_id = $1")
            .bind(job.to_string())
            .bind(dropped)
            .execute(&mut *tx)
            .await?;
        let bytes = (dropped - noted) as u64;
        let marker = dropped_marker(bytes, &limit_reason(limit));
        note(&mut tx, job, Actor::Switchboard, &marker).await?;
        tx.commit().await?;
        Ok(bytes)
    }

    /// The job's console accounting, `(kept, dropped)` bytes, creating its row (locked on
    /// PostgreSQL until the transaction ends).
    async fn totals(&self, tx: &mut Transaction<'static, Any>, job: JobId) -> Result<(u64, u64)> {
        sqlx::query(
            "INSERT INTO console_totals (job_id) VALUES ($1) ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(job.to_string())
        .execute(&mut **tx)
        .await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "SELECT kept_bytes, dropped_bytes FROM console_totals WHERE job_id = $1{lock}"
        ))
        .bind(job.to_string())
        .fetch_one(&mut **tx)
        .await?;
        let kept: i64 = row.try_get("kept_bytes")?;
        let dropped: i64 = row.try_get("dropped_bytes")?;
        Ok((kept.max(0) as u64, dropped.max(0) as u64))
    }

    /// The whole console of a job, all streams interleaved in arrival order.
    pub async fn console(&self, job: JobId) -> Result<String> {
        Ok(self.console_after(job, 0).await?.0)
    }

    /// The console after `cursor` (0: from the start), and the cursor to continue from.
    pub async fn console_after(&self, job: JobId, cursor: i64) -> Result<(String, i64)> {
        let rows = sqlx::query(
            "SELECT id, data FROM console_chunks WHERE job_id = $1 AND id > $2 ORDER BY id",
        )
        .bind(job.to_string())
        .bind(cursor)
        .fetch_all(&self.reader)
        .await?;
        let mut out = String::new();
        let mut last = cursor;
        for r in rows {
            out.push_str(&r.try_get::<String, _>("data")?);
            last = r.try_get::<i64, _>("id")?;
        }
        Ok((out, last))
    }
}

/// Refuses output for a job not assigned to `from` (a supervisor acts only for itself).
/// The longest reason a supervisor may give for dropped console output, in bytes.
const MAX_DROP_REASON: usize = 200;

async fn assigned(
    tx: &mut Transaction<'static, Any>,
    job: JobId,
    from: SupervisorId,
) -> Result<()> {
    let row = sqlx::query("SELECT 1 AS one FROM jobs WHERE id = $1 AND supervisor_id = $2")
        .bind(job.to_string())
        .bind(from.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict(format!(
            "job {job} is not assigned to this supervisor"
        ))),
    }
}

async fn insert_chunk(
    tx: &mut Transaction<'static, Any>,
    job: JobId,
    stream: &str,
    data: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO console_chunks (job_id, at, stream, data) VALUES ($1, $2, $3, $4)")
        .bind(job.to_string())
        .bind(paddock_core::api::now_ms())
        .bind(stream)
        .bind(data)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A marker line in the console (on a line of its own) and the same text as an event of the
/// job, which restates its current state (the state does not change).
async fn note(
    tx: &mut Transaction<'static, Any>,
    job: JobId,
    actor: Actor,
    marker: &str,
) -> Result<()> {
    insert_chunk(tx, job, "stderr", &format!("\n{marker}\n")).await?;
    let actor = match actor {
        Actor::Switchboard => "switchboard",
        Actor::Supervisor => "supervisor",
    };
    sqlx::query(
        "INSERT INTO job_events (job_id, at, actor, from_state, to_state, from_status, to_status, message) \
         SELECT id, $2, $3, execution_state, execution_state, exit_status, exit_status, $4 FROM jobs WHERE id = $1",
    )
    .bind(job.to_string())
    .bind(paddock_core::api::now_ms())
    .bind(actor)
    .bind(marker)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
