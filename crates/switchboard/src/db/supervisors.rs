//! Supervisor records: identity, tags, ACL, token hash, retirement and readiness (desired
//! state), plus connection, last-seen time and the job it holds (observed state).

use paddock_core::acl::Acl;
use paddock_core::api::format_ms;
use paddock_core::api::supervisors::{SupervisorView, UpdateSupervisorRequest};
use paddock_core::{JobId, Name, SupervisorId, Tag};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db, Result, StoreError, json_col, parse_col, parse_opt, to_json};

#[derive(Debug, Clone)]
pub struct Supervisor {
    pub id: SupervisorId,
    pub name: Name,
    pub site: Name,
    pub tags: Vec<Tag>,
    pub acl: Acl,
    pub retired: bool,
    pub ready_for_service: bool,
    /// The host's latest audit check run had a hard failure: no new jobs.
    pub audit_blocked: bool,
    /// The host's latest audit check run exists and had no hard failure.
    pub audit_check_passed: bool,
    /// The host's latest inventory's verdict is FAILED.
    pub inventory_failed: bool,
    pub connection: Option<String>,
    pub last_seen: Option<i64>,
    pub current_job: Option<JobId>,
    pub created_at: i64,
    pub comment: Option<String>,
    /// What the deployments repo declares of the host; `None` for one added by hand.
    pub declared: Option<Declared>,
}

/// The parts of a deployments repo declaration (`spec`) the API shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    pub kind: Option<String>,
    pub pdu: Option<String>,
    pub pdu_port: Option<String>,
    pub mac: Option<String>,
}

impl Declared {
    /// Read leniently, field by field: a declaration written by another version still shows
    /// what it has.
    fn from_spec(spec: &str) -> Result<Declared> {
        let v: serde_json::Value = json_col("spec", spec)?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        Ok(Declared {
            kind: text("kind"),
            pdu: text("pdu"),
            pdu_port: text("pdu_port"),
            mac: text("mac"),
        })
    }
}

impl Supervisor {
    /// Connected: a live connection whose heartbeats are younger than `liveness_ms`.
    pub fn is_connected(&self, now: i64, liveness_ms: i64) -> bool {
        self.connection.is_some() && self.last_seen.is_some_and(|t| t > now - liveness_ms)
    }

    pub fn tag_strs(&self) -> Vec<&str> {
        self.tags.iter().map(Tag::as_str).collect()
    }

    pub fn view(&self, now: i64, liveness_ms: i64) -> SupervisorView {
        SupervisorView {
            id: self.id,
            name: self.name.clone(),
            site: self.site.clone(),
            tags: self.tags.clone(),
            acl: self.acl.clone(),
            retired: self.retired,
            ready_for_service: self.ready_for_service,
            audit_blocked: self.audit_blocked,
            audit_check_passed: self.audit_check_passed,
            inventory_failed: self.inventory_failed,
            connected: self.is_connected(now, liveness_ms),
            current_job: self.current_job,
            last_seen: self.last_seen.map(format_ms),
            created_at: format_ms(self.created_at),
            comment: self.comment.clone(),
            kind: self.declared.as_ref().and_then(|d| d.kind.clone()),
            pdu: self.declared.as_ref().and_then(|d| d.pdu.clone()),
            pdu_port: self.declared.as_ref().and_then(|d| d.pdu_port.clone()),
            mac: self.declared.as_ref().and_then(|d| d.mac.clone()),
        }
    }
}

pub(crate) const COLUMNS: &str = "id, name, site, tags, acl, retired, ready_for_service, audit_blocked, audit_check_passed, inventory_failed, connection, last_seen, current_job, created_at, comment, spec";

pub(crate) fn row_to_supervisor(row: &AnyRow) -> Result<Supervisor> {
    Ok(Supervisor {
        id: parse_col("id", &row.try_get::<String, _>("id")?)?,
        name: parse_col("name", &row.try_get::<String, _>("name")?)?,
        site: parse_col("site", &row.try_get::<String, _>("site")?)?,
        tags: json_col("tags", &row.try_get::<String, _>("tags")?)?,
        acl: json_col("acl", &row.try_get::<String, _>("acl")?)?,
        retired: row.try_get::<i64, _>("retired")? != 0,
        ready_for_service: row.try_get::<i64, _>("ready_for_service")? != 0,
        audit_blocked: row.try_get::<i64, _>("audit_blocked")? != 0,
        audit_check_passed: row.try_get::<i64, _>("audit_check_passed")? != 0,
        inventory_failed: row.try_get::<i64, _>("inventory_failed")? != 0,
        connection: row.try_get("connection")?,
        last_seen: row.try_get("last_seen")?,
        current_job: parse_opt("current_job", row.try_get("current_job")?)?,
        created_at: row.try_get("created_at")?,
        comment: row.try_get("comment")?,
        declared: row
            .try_get::<Option<String>, _>("spec")?
            .map(|s| Declared::from_spec(&s))
            .transpose()?,
    })
}

/// A new supervisor's desired state.
#[derive(Debug, Clone)]
pub struct NewSupervisor<'a> {
    pub name: &'a Name,
    pub site: &'a Name,
    pub tags: &'a [Tag],
    pub acl: &'a Acl,
    pub ready_for_service: bool,
    pub token_hash: &'a str,
}

/// Marks the supervisor set as changed (see [`Db::supervisors_generation`]).
async fn bump_generation(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
    sqlx::query("UPDATE meta SET value = value + 1 WHERE key = 'supervisors_generation'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Db {
    /// A counter bumped in the same transaction as every change of a supervisor's desired state
    /// (creation, tags, ACL, retirement, readiness), so any process can cache that state.
    pub async fn supervisors_generation(&self) -> Result<i64> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = 'supervisors_generation'")
            .fetch_one(&self.reader)
            .await?;
        Ok(row.try_get("value")?)
    }

    pub async fn create_supervisor(&self, s: NewSupervisor<'_>) -> Result<SupervisorId> {
        let id = SupervisorId::new();
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "INSERT INTO supervisors (id, name, site, tags, acl, token_hash, retired, ready_for_service, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
        )
        .bind(id.to_string())
        .bind(s.name.as_str())
        .bind(s.site.as_str())
        .bind(to_json(&s.tags))
        .bind(to_json(&s.acl))
        .bind(s.token_hash)
        .bind(i64::from(s.ready_for_service))
        .bind(paddock_core::api::now_ms())
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {
                bump_generation(&mut tx).await?;
                tx.commit().await?;
                Ok(id)
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("a supervisor named {} already exists", s.name),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a supervisor's token (the old one stops working at once).
    pub async fn set_supervisor_token(&self, id: SupervisorId, token_hash: &str) -> Result<()> {
        let r = sqlx::query("UPDATE supervisors SET token_hash = $1 WHERE id = $2")
            .bind(token_hash)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets the token of a supervisor only if it is out of service and has never connected (a
    /// board registered whose first token was lost), in one statement, so an approval or a
    /// first connection racing it wins. `Ok(false)` when the supervisor is not such a one.
    pub async fn set_unused_supervisor_token(
        &self,
        id: SupervisorId,
        token_hash: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE supervisors SET token_hash = $1 \
             WHERE id = $2 AND ready_for_service = 0 AND last_seen IS NULL",
        )
        .bind(token_hash)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn get_supervisor(&self, id: SupervisorId) -> Result<Supervisor> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM supervisors WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound)?;
        row_to_supervisor(&row)
    }

    pub async fn supervisor_by_token(&self, token_hash: &str) -> Result<Option<Supervisor>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM supervisors WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(row_to_supervisor).transpose()
    }

    pub async fn list_supervisors(&self) -> Result<Vec<Supervisor>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM supervisors ORDER BY name"))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(row_to_supervisor).collect()
    }

    /// Supervisors that could ever run a job: every one not retired, connected or not.
    pub async fn active_supervisors(&self) -> Result<Vec<Supervisor>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM supervisors WHERE retired = 0"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row_to_supervisor).collect()
    }

    pub async fn update_supervisor(
        &self,
        id: SupervisorId,
        u: &UpdateSupervisorRequest,
    ) -> Result<Supervisor> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM supervisors WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut s = row_to_supervisor(&row)?;
        if let Some(tags) = &u.tags {
            s.tags = tags.clone();
        }
        if let Some(acl) = &u.acl {
            s.acl = acl.clone();
        }
        if let Some(r) = u.retired {
            s.retired = r;
        }
        if let Some(r) = u.ready_for_service {
            s.ready_for_service = r;
        }
        if let Some(c) = &u.comment {
            s.comment = (!c.is_empty()).then(|| c.clone());
        }
        sqlx::query("UPDATE supervisors SET tags = $1, acl = $2, retired = $3, ready_for_service = $4, comment = $5 WHERE id = $6")
            .bind(to_json(&s.tags))
            .bind(to_json(&s.acl))
            .bind(i64::from(s.retired))
            .bind(i64::from(s.ready_for_service))
            .bind(s.comment.as_deref())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        bump_generation(&mut tx).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Records a new connection (replacing any older one) and refreshes `last_seen`.
    pub async fn supervisor_connected(&self, id: SupervisorId, connection: &str) -> Result<()> {
        sqlx::query("UPDATE supervisors SET connection = $1, last_seen = $2 WHERE id = $3")
            .bind(connection)
            .bind(paddock_core::api::now_ms())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that these connections are alive, in one statement whatever their number.
    pub async fn connections_seen(&self, connections: &[String]) -> Result<()> {
        if connections.is_empty() {
            return Ok(());
        }
        let list = match self.backend {
            Backend::Sqlite => "SELECT value FROM json_each($2)",
            Backend::Postgres => "SELECT json_array_elements_text($2::json)",
        };
        sqlx::query(&format!(
            "UPDATE supervisors SET last_seen = $1 WHERE connection IN ({list})"
        ))
        .bind(paddock_core::api::now_ms())
        .bind(serde_json::Value::from(connections.to_vec()).to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Clears the connection if it is still this one (a newer connection may have replaced it).
    pub async fn supervisor_disconnected(&self, id: SupervisorId, connection: &str) -> Result<()> {
        sqlx::query("UPDATE supervisors SET connection = NULL, last_seen = $1 WHERE id = $2 AND connection = $3")
            .bind(paddock_core::api::now_ms())
            .bind(id.to_string())
            .bind(connection)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
