//! Jobs: creation, reads, the one transition path (core's lifecycle function applied under an
//! optimistic version check, with its event appended and the supervisor freed in the same
//! transaction), and the scheduler's claim of jobs and supervisors together.

use std::collections::{BTreeMap, HashMap, HashSet};

use paddock_core::api::format_ms;
use paddock_core::api::jobs::{JobView, ParameterView};
use paddock_core::lifecycle::Applied;
use paddock_core::protocol::{AccessEndpoint, JobParameter, StartJob};
use paddock_core::{
    Actor, ExecutionState, ExitStatus, ImageId, JobId, JobState, Name, Privilege, SupervisorId,
    Transition,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::supervisors::{COLUMNS as SUP_COLUMNS, Supervisor, row_to_supervisor};
use super::users::split_privileges;
use super::{Backend, Db, Result, StoreError, json_col, parse_col, parse_opt, to_json};

#[derive(Debug, Clone)]
pub struct Job {
    pub seq: i64,
    pub id: JobId,
    pub user: Name,
    pub image_id: ImageId,
    pub tag_expr: String,
    pub parameters: BTreeMap<String, JobParameter>,
    pub ssh_keys: Vec<String>,
    pub timeout_s: i64,
    pub queue_timeout_s: i64,
    pub priority: i64,
    pub state: JobState,
    pub status_message: Option<String>,
    pub supervisor_id: Option<SupervisorId>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub scheduled_at: Option<i64>,
    pub stop_requested_at: Option<i64>,
    pub terminated_at: Option<i64>,
    /// How to reach the job's host (the supervisor's `job_access`), until the job terminates.
    pub access: Option<AccessEndpoint>,
}

impl Job {
    /// The read view: secret parameter values are left out.
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id,
            user: self.user.clone(),
            image_id: self.image_id.clone(),
            tags: self.tag_expr.clone(),
            parameters: self
                .parameters
                .iter()
                .map(|(k, p)| {
                    (
                        k.clone(),
                        ParameterView {
                            value: (!p.secret).then(|| p.value.clone()),
                            secret: p.secret,
                        },
                    )
                })
                .collect(),
            ssh_keys: self.ssh_keys.clone(),
            timeout_s: self.timeout_s as u64,
            queue_timeout_s: self.queue_timeout_s as u64,
            priority: self.priority as i32,
            execution_state: self.state.execution_state,
            exit_status: self.state.exit_status,
            status_message: self.status_message.clone(),
            supervisor_id: self.supervisor_id,
            created_at: format_ms(self.created_at),
            updated_at: format_ms(self.updated_at),
            terminated_at: self.terminated_at.map(format_ms),
            access: if self.state.is_terminated() {
                None
            } else {
                self.access.clone()
            },
        }
    }

    pub fn start_message(&self) -> StartJob {
        StartJob {
            job_id: self.id,
            image_id: self.image_id.clone(),
            parameters: self.parameters.clone(),
            ssh_keys: self.ssh_keys.clone(),
            timeout_s: self.timeout_s as u64,
        }
    }
}

const COLUMNS: &str = "seq, id, user_name, image_id, tag_expr, parameters, ssh_keys, timeout_s, queue_timeout_s, priority, \
    execution_state, exit_status, status_message, supervisor_id, version, created_at, updated_at, scheduled_at, \
    stop_requested_at, terminated_at, access";

const ACTIVE: &str = "('scheduled', 'initializing', 'ready', 'terminating')";

fn row_to_job(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        seq: row.try_get("seq")?,
        id: parse_col("id", &row.try_get::<String, _>("id")?)?,
        user: parse_col("user_name", &row.try_get::<String, _>("user_name")?)?,
        image_id: parse_col("image_id", &row.try_get::<String, _>("image_id")?)?,
        tag_expr: row.try_get("tag_expr")?,
        parameters: json_col("parameters", &row.try_get::<String, _>("parameters")?)?,
        ssh_keys: json_col("ssh_keys", &row.try_get::<String, _>("ssh_keys")?)?,
        timeout_s: row.try_get("timeout_s")?,
        queue_timeout_s: row.try_get("queue_timeout_s")?,
        priority: row.try_get("priority")?,
        state: JobState {
            execution_state: parse_col(
                "execution_state",
                &row.try_get::<String, _>("execution_state")?,
            )?,
            exit_status: parse_opt("exit_status", row.try_get("exit_status")?)?,
        },
        status_message: row.try_get("status_message")?,
        supervisor_id: parse_opt("supervisor_id", row.try_get("supervisor_id")?)?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        scheduled_at: row.try_get("scheduled_at")?,
        stop_requested_at: row.try_get("stop_requested_at")?,
        terminated_at: row.try_get("terminated_at")?,
        access: match row.try_get::<Option<String>, _>("access")? {
            Some(a) => Some(json_col("access", &a)?),
            None => None,
        },
    })
}

/// A job as submitted.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub user: Name,
    pub image_id: ImageId,
    pub tag_expr: String,
    pub parameters: BTreeMap<String, JobParameter>,
    pub ssh_keys: Vec<String>,
    pub timeout_s: u64,
    pub queue_timeout_s: u64,
    pub priority: i32,
}

/// A requested change of a job's state.
#[derive(Debug, Clone)]
pub struct Change {
    pub transition: Transition,
    pub actor: Actor,
    pub message: Option<String>,
    /// Refuse unless the job is assigned to this supervisor (a supervisor acts only for itself).
    pub on_supervisor: Option<SupervisorId>,
    /// Record that the job was asked to stop (cancel, timeout); the reaper enforces a grace.
    pub request_stop: bool,
}

impl Change {
    pub fn by_switchboard(transition: Transition, message: impl Into<String>) -> Self {
        Change {
            transition,
            actor: Actor::Switchboard,
            message: Some(message.into()),
            on_supervisor: None,
            request_stop: false,
        }
    }
}

/// The result of an accepted change.
#[derive(Debug, Clone)]
pub struct Changed {
    pub job: Job,
    pub applied: Applied,
    /// False when the change restated the current state.
    pub changed: bool,
}

/// One scheduling decision, made in the claim transaction.
#[derive(Debug, Clone)]
pub struct Claim {
    pub job: Job,
    pub supervisor_id: SupervisorId,
}

/// A queued job as the scheduler sees it (light columns only), with its user's privileges.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: JobId,
    pub user: Name,
    pub tag_expr: String,
    pub version: i64,
    pub privileges: Vec<Privilege>,
}

/// Whether this change terminated a job with secret parameters, whose values it wiped.
fn wiped_secrets(c: &Changed) -> bool {
    c.changed && c.job.state.is_terminated() && c.job.parameters.values().any(|p| p.secret)
}

fn redact_secrets(p: &BTreeMap<String, JobParameter>) -> BTreeMap<String, JobParameter> {
    p.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if v.secret {
                    JobParameter {
                        value: String::new(),
                        secret: true,
                    }
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

impl Db {
    /// Inserts a job; the creation event is written by the same statement (a trigger). With
    /// `match_error` the job then terminates at once with `SupervisorMatchError`, in the same
    /// transaction.
    pub async fn create_job(&self, new: NewJob, match_error: Option<String>) -> Result<Job> {
        let id = JobId::new();
        let now = paddock_core::api::now_ms();
        let parameters = to_json(&new.parameters);
        let ssh_keys = to_json(&new.ssh_keys);
        let note = format!("enqueued by {}", new.user);
        let insert = sqlx::query(
            "INSERT INTO jobs (id, user_name, image_id, tag_expr, parameters, ssh_keys, timeout_s, queue_timeout_s, \
             priority, execution_state, version, created_at, updated_at, last_actor, last_message) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', 0, $10, $10, 'switchboard', $11) RETURNING seq",
        )
        .bind(id.to_string())
        .bind(new.user.as_str())
        .bind(new.image_id.as_str())
        .bind(&new.tag_expr)
        .bind(parameters)
        .bind(ssh_keys)
        .bind(new.timeout_s as i64)
        .bind(new.queue_timeout_s as i64)
        .bind(i64::from(new.priority))
        .bind(now)
        .bind(note);
        let Some(why) = match_error else {
            let seq: i64 = insert.fetch_one(&self.pool).await?.try_get("seq")?;
            return Ok(Job {
                seq,
                id,
                user: new.user,
                image_id: new.image_id,
                tag_expr: new.tag_expr,
                parameters: new.parameters,
                ssh_keys: new.ssh_keys,
                timeout_s: new.timeout_s as i64,
                queue_timeout_s: new.queue_timeout_s as i64,
                priority: i64::from(new.priority),
                state: JobState::QUEUED,
                status_message: None,
                supervisor_id: None,
                version: 0,
                created_at: now,
                updated_at: now,
                scheduled_at: None,
                stop_requested_at: None,
                terminated_at: None,
                access: None,
            });
        };
        let mut tx = self.pool.begin().await?;
        insert.fetch_one(&mut *tx).await?;
        let t = Transition::to_with(ExecutionState::Terminated, ExitStatus::SupervisorMatchError);
        let changed =
            transition_on(Via::Conn(&mut tx), id, &Change::by_switchboard(t, why)).await?;
        tx.commit().await?;
        if wiped_secrets(&changed) {
            self.after_wipe().await;
        }
        Ok(changed.job)
    }

    pub async fn get_job(&self, id: JobId) -> Result<Job> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound)?;
        row_to_job(&row)
    }

    /// Newest first. `before_seq` is the pagination cursor.
    pub async fn list_jobs(
        &self,
        state: Option<ExecutionState>,
        user: Option<&Name>,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Job>> {
        let mut sql = format!("SELECT {COLUMNS} FROM jobs WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if state.is_some() {
            sql += &format!(" AND execution_state = ${}", next());
        }
        if user.is_some() {
            sql += &format!(" AND user_name = ${}", next());
        }
        if before_seq.is_some() {
            sql += &format!(" AND seq < ${}", next());
        }
        sql += &format!(" ORDER BY seq DESC LIMIT ${}", next());
        let mut q = sqlx::query(&sql);
        if let Some(s) = state {
            q = q.bind(s.as_str());
        }
        if let Some(u) = user {
            q = q.bind(u.as_str());
        }
        if let Some(b) = before_seq {
            q = q.bind(b);
        }
        let rows = q.bind(limit).fetch_all(&self.reader).await?;
        rows.iter().map(row_to_job).collect()
    }

    /// Applies a change (see [`transition_on`]).
    /// The job is read on the reader pool (the write is conditional on what was read), so the
    /// single SQLite writer only does the write.
    pub async fn transition(&self, id: JobId, change: &Change) -> Result<Changed> {
        let changed = transition_on(
            Via::Pools {
                read: &self.reader,
                write: &self.pool,
            },
            id,
            change,
        )
        .await?;
        if wiped_secrets(&changed) {
            self.after_wipe().await;
        }
        Ok(changed)
    }

    /// Non-terminated jobs assigned to a supervisor.
    /// Stores how to reach the job's host, as its supervisor reported it (`job_access`):
    /// only for a job assigned to `from` that has not terminated (the end of a job clears it).
    pub async fn set_job_access(
        &self,
        id: JobId,
        from: SupervisorId,
        access: &AccessEndpoint,
    ) -> Result<()> {
        let r = sqlx::query(
            "UPDATE jobs SET access = $1 WHERE id = $2 AND supervisor_id = $3 \
             AND execution_state <> 'terminated'",
        )
        .bind(to_json(access))
        .bind(id.to_string())
        .bind(from.to_string())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "job {id} is not running on this supervisor"
            )));
        }
        Ok(())
    }

    pub async fn jobs_on_supervisor(&self, sup: SupervisorId) -> Result<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE supervisor_id = $1 AND execution_state IN {ACTIVE} ORDER BY seq"
        ))
        .bind(sup.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row_to_job).collect()
    }

    /// Queued jobs whose queue timeout has passed.
    pub async fn queue_timed_out(&self, now: i64) -> Result<Vec<JobId>> {
        self.ids("SELECT id FROM jobs WHERE execution_state = 'queued' AND created_at + queue_timeout_s * 1000 <= $1", now).await
    }

    /// Dispatched jobs past their job timeout that were not yet asked to stop.
    pub async fn job_timed_out(&self, now: i64) -> Result<Vec<JobId>> {
        self.ids(
            &format!(
                "SELECT id FROM jobs WHERE execution_state IN {ACTIVE} AND stop_requested_at IS NULL \
                 AND scheduled_at + timeout_s * 1000 <= $1"
            ),
            now,
        )
        .await
    }

    /// Jobs asked to stop before `deadline` that are still not terminated.
    pub async fn stop_overdue(&self, deadline: i64) -> Result<Vec<JobId>> {
        self.ids(
            &format!(
                "SELECT id FROM jobs WHERE execution_state IN {ACTIVE} AND stop_requested_at <= $1"
            ),
            deadline,
        )
        .await
    }

    /// Jobs whose supervisor has not been seen since `deadline`.
    pub async fn dropped(&self, deadline: i64) -> Result<Vec<JobId>> {
        self.ids(
            &format!(
                "SELECT j.id FROM jobs j JOIN supervisors s ON s.id = j.supervisor_id \
                 WHERE j.execution_state IN {ACTIVE} AND (s.last_seen IS NULL OR s.last_seen <= $1)"
            ),
            deadline,
        )
        .await
    }

    async fn ids(&self, sql: &str, at: i64) -> Result<Vec<JobId>> {
        let rows = sqlx::query(sql).bind(at).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| parse_col("id", &r.try_get::<String, _>("id")?))
            .collect()
    }

    pub async fn count_jobs_by_state(&self) -> Result<HashMap<String, i64>> {
        let rows =
            sqlx::query("SELECT execution_state, COUNT(*) AS n FROM jobs GROUP BY execution_state")
                .fetch_all(&self.reader)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("execution_state")?, r.try_get("n")?)))
            .collect()
    }

    /// Claims queued jobs and idle supervisors together, in one transaction. `eligible` lists the
    /// supervisors this process may dispatch to; `pick` is the scheduling policy: given the
    /// queued jobs (priority, then age; at most `batch`) and the idle supervisors, it returns
    /// pairs of indexes. The scan reads light columns only; each chosen job is then taken with a
    /// version check (and `FOR UPDATE SKIP LOCKED` on PostgreSQL), so concurrent schedulers never
    /// take the same job or supervisor twice and never wait on each other.
    pub async fn claim(
        &self,
        eligible: &HashSet<SupervisorId>,
        batch: i64,
        pick: impl Fn(&[Candidate], &[Supervisor]) -> Vec<(usize, usize)>,
    ) -> Result<Vec<Claim>> {
        let lock = self.skip_locked();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT {SUP_COLUMNS} FROM supervisors WHERE current_job IS NULL AND retired = 0 AND ready_for_service = 1 AND audit_blocked = 0 \
             AND connection IS NOT NULL{lock}"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let mut idle = Vec::new();
        for row in &rows {
            let s = row_to_supervisor(row)?;
            if eligible.contains(&s.id) {
                idle.push(s);
            }
        }
        if idle.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // Scan the queue in chunks (keyset on priority, seq): usually the first small chunk fills
        // every idle supervisor; jobs no idle supervisor fits do not hide the ones behind them,
        // up to `batch` jobs per pass.
        let now = paddock_core::api::now_ms();
        let mut claims = Vec::new();
        let mut privileges: HashMap<String, Vec<Privilege>> = HashMap::new();
        let mut after: Option<(i64, i64)> = None;
        let mut scanned = 0i64;
        while !idle.is_empty() && scanned < batch {
            let chunk = (idle.len() as i64 * 2).max(16).min(batch - scanned);
            let light = "SELECT seq, priority, id, user_name, tag_expr, version FROM jobs WHERE execution_state = 'queued'";
            let order = "ORDER BY priority DESC, seq LIMIT";
            let rows = match after {
                None => {
                    sqlx::query(&format!("{light} {order} $1"))
                        .bind(chunk)
                        .fetch_all(&mut *tx)
                        .await?
                }
                Some((p, seq)) => {
                    sqlx::query(&format!(
                        "{light} AND (priority < $1 OR (priority = $1 AND seq > $2)) {order} $3"
                    ))
                    .bind(p)
                    .bind(seq)
                    .bind(chunk)
                    .fetch_all(&mut *tx)
                    .await?
                }
            };
            scanned += rows.len() as i64;
            let mut candidates = Vec::with_capacity(rows.len());
            for row in &rows {
                after = Some((row.try_get("priority")?, row.try_get("seq")?));
                let user: String = row.try_get("user_name")?;
                if !privileges.contains_key(&user) {
                    let p = sqlx::query("SELECT privileges FROM users WHERE name = $1")
                        .bind(&user)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.try_get::<String, _>("privileges"))
                        .transpose()?;
                    privileges.insert(
                        user.clone(),
                        p.as_deref()
                            .map(split_privileges)
                            .transpose()?
                            .unwrap_or_default(),
                    );
                }
                candidates.push(Candidate {
                    id: parse_col("id", &row.try_get::<String, _>("id")?)?,
                    user: parse_col("user_name", &user)?,
                    tag_expr: row.try_get("tag_expr")?,
                    version: row.try_get("version")?,
                    privileges: privileges.get(&user).cloned().unwrap_or_default(),
                });
            }
            let mut used = Vec::new();
            let mut pairs = Vec::new();
            for (ji, si) in pick(&candidates, &idle) {
                if let (Some(c), Some(sup)) = (candidates.get(ji), idle.get(si)) {
                    used.push(si);
                    pairs.push((c, sup));
                }
            }
            // At most 256 pairs a statement keeps the bound parameters within both backends' limits.
            for slice in pairs.chunks(256) {
                for (job, supervisor_id) in take_many(self, &mut tx, slice, now).await? {
                    claims.push(Claim { job, supervisor_id });
                }
            }
            used.sort_unstable();
            for si in used.into_iter().rev() {
                idle.swap_remove(si);
            }
            if (rows.len() as i64) < chunk {
                break;
            }
        }
        tx.commit().await?;
        Ok(claims)
    }
}

/// The chosen pairs as rows `v(v_id, v_sup, v_ver, v_msg)` built from one JSON parameter, so the
/// statements below have one text whatever the number of pairs (and are prepared once).
fn pair_rows(backend: Backend, param: &str) -> String {
    match backend {
        Backend::Postgres => {
            format!(
                "json_to_recordset({param}::json) AS v(v_id text, v_sup text, v_ver bigint, v_msg text)"
            )
        }
        Backend::Sqlite => format!(
            "(SELECT json_extract(value, '$.v_id') AS v_id, json_extract(value, '$.v_sup') AS v_sup, \
             json_extract(value, '$.v_ver') AS v_ver, json_extract(value, '$.v_msg') AS v_msg FROM json_each({param})) AS v"
        ),
    }
}

/// Takes the chosen jobs and supervisors inside the claim transaction, with one statement per
/// table whatever their number. A pair whose job or supervisor was taken meanwhile is left out.
async fn take_many(
    db: &Db,
    tx: &mut Transaction<'_, Any>,
    pairs: &[(&Candidate, &Supervisor)],
    now: i64,
) -> Result<Vec<(Job, SupervisorId)>> {
    let rows_json = |pairs: &[(&Candidate, &Supervisor)]| {
        let rows: Vec<serde_json::Value> = pairs
            .iter()
            .map(|(c, sup)| {
                serde_json::json!({
                    "v_id": c.id.to_string(),
                    "v_sup": sup.id.to_string(),
                    "v_ver": c.version,
                    "v_msg": format!("scheduled on {}", sup.name),
                })
            })
            .collect();
        serde_json::Value::Array(rows).to_string()
    };
    let mut pairs: Vec<(&Candidate, &Supervisor)> = pairs.to_vec();
    if db.backend == Backend::Postgres {
        let sql = format!(
            "SELECT id FROM jobs WHERE execution_state = 'queued' AND id IN (SELECT v_id FROM {}) FOR UPDATE SKIP LOCKED",
            pair_rows(db.backend, "$1")
        );
        let free: HashSet<String> = sqlx::query_scalar::<_, String>(&sql)
            .bind(rows_json(&pairs))
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        pairs.retain(|(c, _)| free.contains(&c.id.to_string()));
    }
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE supervisors SET current_job = v.v_id FROM {} WHERE supervisors.id = v.v_sup \
         AND supervisors.current_job IS NULL RETURNING supervisors.id",
        pair_rows(db.backend, "$1")
    );
    let sql = if db.backend == Backend::Sqlite {
        sql.replace("RETURNING supervisors.id", "RETURNING id")
    } else {
        sql
    };
    let taken: HashSet<String> = sqlx::query_scalar::<_, String>(&sql)
        .bind(rows_json(&pairs))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    pairs.retain(|(_, sup)| taken.contains(&sup.id.to_string()));
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE jobs SET execution_state = 'scheduled', supervisor_id = v.v_sup, last_message = v.v_msg, \
         scheduled_at = $1, updated_at = $1, last_actor = 'switchboard', version = jobs.version + 1 \
         FROM {} WHERE jobs.id = v.v_id AND jobs.version = v.v_ver AND jobs.execution_state = 'queued' RETURNING {}",
        pair_rows(db.backend, "$2"),
        match db.backend {
            Backend::Postgres => COLUMNS
                .split(", ")
                .map(|c| format!("jobs.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            Backend::Sqlite => COLUMNS.to_string(),
        }
    );
    let rows = sqlx::query(&sql)
        .bind(now)
        .bind(rows_json(&pairs))
        .fetch_all(&mut **tx)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut done = HashSet::new();
    for row in &rows {
        let job = row_to_job(row)?;
        done.insert(job.id);
        if let Some(sup) = job.supervisor_id {
            out.push((job, sup));
        }
    }
    for (c, sup) in pairs.iter().filter(|(c, _)| !done.contains(&c.id)) {
        // The job changed meanwhile: give its supervisor back.
        sqlx::query("UPDATE supervisors SET current_job = NULL WHERE id = $1 AND current_job = $2")
            .bind(sup.id.to_string())
            .bind(c.id.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(out)
}

/// Where a transition reads and writes: one connection (inside a transaction), or a read pool
/// and the write pool.
pub(crate) enum Via<'a> {
    Conn(&'a mut sqlx::AnyConnection),
    Pools {
        read: &'a sqlx::AnyPool,
        write: &'a sqlx::AnyPool,
    },
}

/// How often a change is retried when the job changed between reading and writing it.
const RETRIES: usize = 5;

/// The one path by which a job's state changes after creation: read the job, ask
/// [`JobState::apply`], and write the result conditional on the version read. The write's
/// triggers append the event and, when the job terminates, free its supervisor, so the change is
/// atomic without an explicit transaction; a concurrent change is retried on fresh data.
pub(crate) async fn transition_on(mut via: Via<'_>, id: JobId, change: &Change) -> Result<Changed> {
    for _ in 0..RETRIES {
        let select = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        let query = sqlx::query(&select).bind(id.to_string());
        let row = match &mut via {
            Via::Conn(conn) => query.fetch_optional(&mut **conn).await?,
            Via::Pools { read, .. } => query.fetch_optional(*read).await?,
        }
        .ok_or(StoreError::NotFound)?;
        let mut job = row_to_job(&row)?;
        if let Some(sup) = change.on_supervisor
            && job.supervisor_id != Some(sup)
        {
            return Err(StoreError::Conflict(format!(
                "job {id} is not assigned to this supervisor"
            )));
        }
        let applied = job.state.apply(change.transition, change.actor)?;
        let stop = change.request_stop
            && job.stop_requested_at.is_none()
            && !applied.state.is_terminated();
        let changed = applied.state != job.state || stop;
        if !changed {
            return Ok(Changed {
                job,
                applied,
                changed,
            });
        }
        let now = paddock_core::api::now_ms();
        if stop {
            job.stop_requested_at = Some(now);
        }
        if applied.state.is_terminated() {
            job.terminated_at = Some(now);
            job.parameters = redact_secrets(&job.parameters);
        }
        if change.message.is_some() {
            job.status_message = change.message.clone();
        }
        let mut event_message = change.message.clone();
        if let (Some(ignored), Some(kept)) = (applied.ignored_status, applied.state.exit_status) {
            let note = format!("exit status {ignored} not taken: {kept} is final");
            event_message = Some(match event_message {
                Some(m) => format!("{m} ({note})"),
                None => note,
            });
        }
        let actor = match change.actor {
            Actor::Switchboard => "switchboard",
            Actor::Supervisor => "supervisor",
        };
        let update = sqlx::query(
            "UPDATE jobs SET execution_state = $1, exit_status = $2, status_message = $3, stop_requested_at = $4, \
             terminated_at = $5, parameters = $6, updated_at = $7, last_actor = $8, last_message = $9, \
             access = CASE WHEN $1 = 'terminated' THEN NULL ELSE access END, \
             version = version + 1 WHERE id = $10 AND version = $11",
        )
        .bind(applied.state.execution_state.as_str())
        .bind(applied.state.exit_status.map(|s| s.as_str()))
        .bind(job.status_message.as_deref())
        .bind(job.stop_requested_at)
        .bind(job.terminated_at)
        .bind(to_json(&job.parameters))
        .bind(now)
        .bind(actor)
        .bind(event_message)
        .bind(id.to_string())
        .bind(job.version);
        let r = match &mut via {
            Via::Conn(conn) => update.execute(&mut **conn).await?,
            Via::Pools { write, .. } => update.execute(*write).await?,
        };
        if r.rows_affected() == 0 {
            continue;
        }
        job.state = applied.state;
        job.version += 1;
        job.updated_at = now;
        return Ok(Changed {
            job,
            applied,
            changed,
        });
    }
    Err(StoreError::Conflict(format!(
        "job {id} keeps changing concurrently"
    )))
}
