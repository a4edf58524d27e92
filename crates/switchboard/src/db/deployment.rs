//! Applying the deployments repo's desired state: the live state is read from the rows the
//! repo declared, planned against the new one (`paddock_core::deployments::plan`), and every
//! change is written in one transaction together with the applied commit. A failure anywhere
//! (a name taken by a supervisor added by hand, a crash) leaves nothing of it behind.

use paddock_core::Name;
use paddock_core::deployments::{Change, DesiredState, SupervisorSpec, plan};
use sqlx::Row;

use super::users::{join_privileges, split_privileges};
use super::{Db, Result, StoreError, json_col, parse_col, to_json};

pub use paddock_core::api::deployment::{Applied, Rejection, Report};

/// What an apply did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplyOutcome {
    pub applied: Applied,
    pub changes: Vec<Change>,
    /// The state applied before (to tell which supervisors' configuration changed).
    #[serde(skip)]
    pub previous: DesiredState,
}

/// The instance-wide part of the applied state: what the scheduler and enqueue read.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct DeployedSettings {
    pub acl: paddock_core::acl::Acl,
    pub defaults: paddock_core::deployments::Defaults,
    /// Sites that set their own `require_audit`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub site_require_audit:
        std::collections::BTreeMap<Name, paddock_core::deployments::RequireAudit>,
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

impl Db {
    /// The last applied commit and generation.
    pub async fn applied_deployment(&self) -> Result<Applied> {
        let row = sqlx::query(
            "SELECT commit_id, generation, applied_at, last_error, report FROM deployment WHERE id = 1",
        )
        .fetch_one(&self.reader)
        .await?;
        let last_error: Option<String> = row.try_get("last_error")?;
        let report: Option<String> = row.try_get("report")?;
        Ok(Applied {
            commit: row.try_get("commit_id")?,
            generation: row.try_get("generation")?,
            applied_at: row.try_get("applied_at")?,
            last_error: last_error
                .map(|e| json_col("last_error", &e).map(Rejection::bounded))
                .transpose()?,
            report: report.and_then(|r| stored_report(&r)),
        })
    }

    /// Stores the deploy daemon's report of what it sees (replacing the previous one).
    pub async fn report_deployment(&self, report: &Report) -> Result<()> {
        sqlx::query("UPDATE deployment SET report = $1 WHERE id = 1")
            .bind(to_json(report))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a rejected commit; the applied state is untouched.
    pub async fn reject_deployment(&self, rejection: &Rejection) -> Result<()> {
        let mut r = rejection.clone();
        r.at = paddock_core::api::now_ms();
        sqlx::query("UPDATE deployment SET last_error = $1 WHERE id = 1")
            .bind(to_json(&r))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Withdraws the recorded rejection if it is still of `commit`; true when one was removed.
    /// A compare-and-set on the stored row: a rejection recorded meanwhile stays.
    pub async fn clear_deployment_rejection(&self, commit: &str) -> Result<bool> {
        let raw: Option<String> =
            sqlx::query_scalar("SELECT last_error FROM deployment WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        let Some(raw) = raw else {
            return Ok(false);
        };
        let current: Rejection = json_col("last_error", &raw)?;
        if current.commit != commit {
            return Ok(false);
        }
        let r =
            sqlx::query("UPDATE deployment SET last_error = NULL WHERE id = 1 AND last_error = $1")
                .bind(raw)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Applies `desired` (already validated) as commit `commit`, generation `generation`.
    /// A generation older than the applied one is refused (`Conflict`): a slow deploy daemon
    /// never rolls a newer state back. The same state again changes nothing.
    pub async fn apply_deployment(
        &self,
        commit: &str,
        generation: i64,
        desired: &DesiredState,
    ) -> Result<ApplyOutcome> {
        let mut tx = self.pool.begin().await?;
        let lock = match self.backend {
            super::Backend::Postgres => " FOR UPDATE",
            super::Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "SELECT generation, state FROM deployment WHERE id = 1{lock}"
        ))
        .fetch_one(&mut *tx)
        .await?;
        let applied_generation: i64 = row.try_get("generation")?;
        if generation < applied_generation {
            return Err(StoreError::Conflict(format!(
                "generation {generation} is older than the applied generation {applied_generation}"
            )));
        }
        let previous: DesiredState = json_col("state", &row.try_get::<String, _>("state")?)?;
        let live = live_state(&mut tx, previous.clone()).await?;
        let changes = plan(&live, desired);
        let mut supervisors_changed = false;
        for c in &changes {
            supervisors_changed |= apply_change(&mut tx, c).await?;
            // The instance ACL, defaults and audit gates are cached under the same generation.
            supervisors_changed |= matches!(
                c,
                Change::SetInstanceAcl { .. }
                    | Change::SetDefaults { .. }
                    | Change::SetSiteRequireAudit { .. }
            );
        }
        if supervisors_changed {
            sqlx::query("UPDATE meta SET value = value + 1 WHERE key = 'supervisors_generation'")
                .execute(&mut *tx)
                .await?;
        }
        let now = paddock_core::api::now_ms();
        let report: Option<String> =
            sqlx::query_scalar("SELECT report FROM deployment WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(
            "UPDATE deployment SET commit_id = $1, generation = $2, applied_at = $3, state = $4, last_error = NULL, settings = $5 WHERE id = 1",
        )
        .bind(commit)
        .bind(generation)
        .bind(now)
        .bind(to_json(desired))
        .bind(to_json(&DeployedSettings {
            acl: desired.switchboard.acl.clone(),
            defaults: desired.switchboard.defaults.clone(),
            site_require_audit: desired
                .sites
                .iter()
                .filter_map(|s| s.require_audit.map(|r| (s.name.clone(), r)))
                .collect(),
        }))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ApplyOutcome {
            applied: Applied {
                commit: commit.to_string(),
                generation,
                applied_at: now,
                last_error: None,
                report: report.and_then(|r| stored_report(&r)),
            },
            changes,
            previous,
        })
    }

    /// The applied state's instance ACL and defaults; `None` before the first apply.
    pub async fn deployed_settings(&self) -> Result<Option<DeployedSettings>> {
        let settings: Option<String> =
            sqlx::query_scalar("SELECT settings FROM deployment WHERE id = 1")
                .fetch_one(&self.reader)
                .await?;
        settings.map(|s| json_col("settings", &s)).transpose()
    }

    /// The generation of the applied state (0 before the first apply) and when it was
    /// applied: together they identify it.
    pub async fn applied_deployment_generation(&self) -> Result<(i64, i64)> {
        let row = sqlx::query("SELECT generation, applied_at FROM deployment WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        Ok((row.try_get("generation")?, row.try_get("applied_at")?))
    }

    /// The applied state (what `POST /deployment` last wrote) and its generation.
    pub async fn applied_state(&self) -> Result<((i64, i64), DesiredState)> {
        let row = sqlx::query("SELECT generation, applied_at, state FROM deployment WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        Ok((
            (row.try_get("generation")?, row.try_get("applied_at")?),
            json_col("state", &row.try_get::<String, _>("state")?)?,
        ))
    }
}

/// The stored report of the deploy daemon; one that no longer reads as a [`Report`] (stored
/// by an older switchboard, which kept any JSON object) is logged and shown as none: the next
/// report of the daemon replaces it.
fn stored_report(raw: &str) -> Option<Report> {
    match serde_json::from_str(raw) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(
                "the stored deployment report is not a report any more ({e}); shown as none until the deploy daemon reports again"
            );
            None
        }
    }
}

/// What is live of the declared state: users marked `deployed`, supervisors with a `spec`
/// (their columns win over the stored declaration: an admin may have retired one by hand),
/// and the instance settings of the last applied state.
async fn live_state(tx: &mut Tx<'_>, previous: DesiredState) -> Result<DesiredState> {
    let mut live = previous;
    let users =
        sqlx::query("SELECT name, email, privileges FROM users WHERE deployed = 1 ORDER BY name")
            .fetch_all(&mut **tx)
            .await?;
    live.switchboard.users = users
        .iter()
        .map(|r| {
            Ok(paddock_core::deployments::UserSpec {
                name: parse_col("name", &r.try_get::<String, _>("name")?)?,
                email: r.try_get("email")?,
                privileges: split_privileges(&r.try_get::<String, _>("privileges")?)?,
            })
        })
        .collect::<Result<_>>()?;
    let rows = sqlx::query(
        "SELECT site, name, tags, acl, retired, ready_for_service, comment, spec FROM supervisors WHERE spec IS NOT NULL",
    )
    .fetch_all(&mut **tx)
    .await?;
    for site in &mut live.sites {
        site.supervisors.clear();
    }
    for r in rows {
        let mut spec: SupervisorSpec = json_col("spec", &r.try_get::<String, _>("spec")?)?;
        spec.name = parse_col("name", &r.try_get::<String, _>("name")?)?;
        spec.tags = json_col("tags", &r.try_get::<String, _>("tags")?)?;
        spec.acl = json_col("acl", &r.try_get::<String, _>("acl")?)?;
        spec.retired = r.try_get::<i64, _>("retired")? != 0;
        spec.ready_for_service = r.try_get::<i64, _>("ready_for_service")? != 0;
        spec.comment = r.try_get("comment")?;
        let site: Name = parse_col("site", &r.try_get::<String, _>("site")?)?;
        match live.sites.iter_mut().find(|s| s.name == site) {
            Some(s) => s.supervisors.push(spec),
            None => live.sites.push(paddock_core::deployments::Site {
                name: site,
                image_stores: vec![],
                pdus: vec![],
                supervisors: vec![spec],
                require_audit: None,
            }),
        }
    }
    Ok(live)
}

/// Writes one change; true when it touched a supervisor.
async fn apply_change(tx: &mut Tx<'_>, c: &Change) -> Result<bool> {
    match c {
        Change::AddUser { user } | Change::UpdateUser { user, .. } => {
            // A user made by hand with the same name is adopted by the repo.
            let r = sqlx::query(
                "UPDATE users SET email = $1, privileges = $2, deployed = 1 WHERE name = $3",
            )
            .bind(user.email.as_deref())
            .bind(join_privileges(&user.privileges))
            .bind(user.name.as_str())
            .execute(&mut **tx)
            .await?;
            if r.rows_affected() == 0 {
                sqlx::query(
                    "INSERT INTO users (name, email, password_hash, privileges, created_at, deployed) VALUES ($1, $2, NULL, $3, $4, 1)",
                )
                .bind(user.name.as_str())
                .bind(user.email.as_deref())
                .bind(join_privileges(&user.privileges))
                .bind(paddock_core::api::now_ms())
                .execute(&mut **tx)
                .await?;
            }
            Ok(false)
        }
        Change::RemoveUser { name } => {
            sqlx::query("UPDATE users SET privileges = '', deployed = 0 WHERE name = $1")
                .bind(name.as_str())
                .execute(&mut **tx)
                .await?;
            Ok(false)
        }
        // Kept in the deployment row's state; read from there.
        Change::SetInstanceAcl { .. }
        | Change::SetDefaults { .. }
        | Change::SetSiteStores { .. }
        | Change::SetSiteRequireAudit { .. } => Ok(false),
        Change::AddSupervisor { site, supervisor }
        | Change::UpdateSupervisor {
            site, supervisor, ..
        } => {
            upsert_supervisor(tx, site, supervisor).await?;
            Ok(true)
        }
        Change::RetireSupervisor { id, .. } => {
            sqlx::query("UPDATE supervisors SET retired = 1 WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
            Ok(true)
        }
    }
}

async fn upsert_supervisor(tx: &mut Tx<'_>, site: &Name, s: &SupervisorSpec) -> Result<()> {
    let id = s.id.to_string();
    let r = sqlx::query(
        "UPDATE supervisors SET name = $1, site = $2, tags = $3, acl = $4, retired = $5, ready_for_service = $6, spec = $7, comment = $8 WHERE id = $9",
    )
    .bind(s.name.as_str())
    .bind(site.as_str())
    .bind(to_json(&s.tags))
    .bind(to_json(&s.acl))
    .bind(i64::from(s.retired))
    .bind(i64::from(s.ready_for_service))
    .bind(to_json(s))
    .bind(s.comment.as_deref())
    .bind(&id)
    .execute(&mut **tx)
    .await
    .map_err(|e| name_conflict(e, &s.name))?;
    if r.rows_affected() > 0 {
        if let Some(hash) = &s.token_sha256 {
            sqlx::query("UPDATE supervisors SET token_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
        }
        return Ok(());
    }
    // Without a declared hash the supervisor gets an unknowable token until an admin resets
    // it (the token is shown once then).
    let hash = match &s.token_sha256 {
        Some(h) => h.clone(),
        None => crate::auth::hash_token(&crate::auth::new_token("unset_")),
    };
    sqlx::query(
        "INSERT INTO supervisors (id, name, site, tags, acl, token_hash, retired, ready_for_service, created_at, spec, comment) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(s.name.as_str())
    .bind(site.as_str())
    .bind(to_json(&s.tags))
    .bind(to_json(&s.acl))
    .bind(hash)
    .bind(i64::from(s.retired))
    .bind(i64::from(s.ready_for_service))
    .bind(paddock_core::api::now_ms())
    .bind(to_json(s))
    .bind(s.comment.as_deref())
    .execute(&mut **tx)
    .await
    .map_err(|e| name_conflict(e, &s.name))?;
    Ok(())
}

fn name_conflict(e: sqlx::Error, name: &Name) -> StoreError {
    match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(format!(
            "supervisor name `{name}` (or its token hash) is already used by a supervisor the repo does not declare; retire and rename that one first"
        )),
        e => e.into(),
    }
}
