//! Audit reports of the supervisors' hosts, with history. A baseline check run with a hard
//! failure blocks the supervisor (the scheduler skips it) until a passing run arrives; the
//! change bumps the supervisors generation so every process sees it at once.

use paddock_core::{Name, SupervisorId};
use sqlx::Row;

use super::{Db, Result, StoreError, json_col, parse_col};

pub use paddock_core::api::audit::{AuditKind, AuditRecord, Recorded};

fn record(row: &sqlx::any::AnyRow, with_report: bool) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        supervisor_id: parse_col("supervisor_id", &row.try_get::<String, _>("supervisor_id")?)?,
        kind: row.try_get("kind")?,
        received_at: row.try_get("received_at")?,
        verdict: row.try_get("verdict")?,
        failures: row.try_get("failures")?,
        warnings: row.try_get("warnings")?,
        report: if with_report {
            Some(json_col("report", &row.try_get::<String, _>("report")?)?)
        } else {
            None
        },
    })
}

impl Db {
    /// Stores a report of supervisor `name`'s host; a check run sets (hard failures) or
    /// clears (none) its audit block.
    pub async fn record_audit(
        &self,
        name: &Name,
        kind: AuditKind,
        verdict: &str,
        failures: i64,
        warnings: i64,
        report: &serde_json::Value,
    ) -> Result<Recorded> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT id, audit_blocked, audit_check_passed, inventory_failed FROM supervisors WHERE name = $1",
        )
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let id: SupervisorId = parse_col("id", &row.try_get::<String, _>("id")?)?;
        let was_blocked = row.try_get::<i64, _>("audit_blocked")? != 0;
        let was_passed = row.try_get::<i64, _>("audit_check_passed")? != 0;
        let was_failed = row.try_get::<i64, _>("inventory_failed")? != 0;
        let report_id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_reports (supervisor_id, kind, received_at, verdict, failures, warnings, report) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(id.to_string())
        .bind(kind.as_str())
        .bind(paddock_core::api::now_ms())
        .bind(verdict)
        .bind(failures)
        .bind(warnings)
        .bind(report.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let blocked = match kind {
            AuditKind::Check => failures > 0,
            AuditKind::Collect => was_blocked,
        };
        let (passed, failed) = match kind {
            AuditKind::Check => (failures == 0, was_failed),
            AuditKind::Collect => (was_passed, verdict == "FAILED"),
        };
        if (blocked, passed, failed) != (was_blocked, was_passed, was_failed) {
            sqlx::query(
                "UPDATE supervisors SET audit_blocked = $1, audit_check_passed = $2, inventory_failed = $3 WHERE id = $4",
            )
                .bind(i64::from(blocked))
                .bind(i64::from(passed))
                .bind(i64::from(failed))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE meta SET value = value + 1 WHERE key = 'supervisors_generation'")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Recorded {
            id: report_id,
            supervisor_id: id,
            audit_blocked: blocked,
        })
    }

    /// The newest reports of supervisor `name` (without their bodies), newest first.
    pub async fn audit_history(
        &self,
        name: &Name,
        kind: Option<AuditKind>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        let id: String = sqlx::query_scalar("SELECT id FROM supervisors WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound)?;
        let columns = "id, supervisor_id, kind, received_at, verdict, failures, warnings";
        let rows = match kind {
            Some(k) => {
                sqlx::query(&format!(
                    "SELECT {columns} FROM audit_reports WHERE supervisor_id = $1 AND kind = $2 ORDER BY id DESC LIMIT $3"
                ))
                .bind(id)
                .bind(k.as_str())
                .bind(limit)
                .fetch_all(&self.reader)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {columns} FROM audit_reports WHERE supervisor_id = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(id)
                .bind(limit)
                .fetch_all(&self.reader)
                .await?
            }
        };
        rows.iter().map(|r| record(r, false)).collect()
    }

    /// One report with its body.
    pub async fn audit_report(&self, id: i64) -> Result<AuditRecord> {
        let row = sqlx::query(
            "SELECT id, supervisor_id, kind, received_at, verdict, failures, warnings, report FROM audit_reports WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?;
        record(&row, true)
    }
}
