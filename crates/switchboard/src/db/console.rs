//! Console output of jobs, stored in arrival order.

use paddock_core::protocol::ConsoleStream;
use paddock_core::{JobId, SupervisorId};
use sqlx::Row;

use super::{Db, Result, StoreError};

impl Db {
    /// Appends console output, only if the job is assigned to `from`.
    pub async fn append_console(
        &self,
        job: JobId,
        from: SupervisorId,
        stream: ConsoleStream,
        data: &str,
    ) -> Result<()> {
        let stream = match stream {
            ConsoleStream::Stdout => "stdout",
            ConsoleStream::Stderr => "stderr",
            ConsoleStream::Serial => "serial",
        };
        let r = sqlx::query(
            "INSERT INTO console_chunks (job_id, at, stream, data) SELECT $1, $2, $3, $4 \
             WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND supervisor_id = $5)",
        )
        .bind(job.to_string())
        .bind(paddock_core::api::now_ms())
        .bind(stream)
        .bind(data)
        .bind(from.to_string())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "job {job} is not assigned to this supervisor"
            )));
        }
        Ok(())
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
