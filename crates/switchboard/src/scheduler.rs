//! The scheduler: a task that claims queued jobs and idle supervisors together in one database
//! transaction, then sends `start_job` to the supervisors connected to this process.
//!
//! Rules of the loop: it runs when woken (a job was enqueued, a supervisor connected or became
//! idle) and at least once a second; each pass claims up to `BATCH` jobs; jobs go oldest first
//! within priority, each to the first idle supervisor that is eligible (tags match, ACL allows,
//! its site's audit gate `require_audit` is met).
//! A job no idle supervisor fits does not hold back the jobs behind it. If `start_job` cannot be
//! delivered (the connection just closed), the job stays `scheduled` and is sent again when the
//! supervisor says `hello`, or ends as `supervisor_dropped_job` after the grace period.

use std::collections::HashMap;
use std::time::Duration;

use paddock_core::acl::{self, Acl, Decision, Subject};
use paddock_core::protocol::SwitchboardMessage;
use paddock_core::{Privilege, TagExpr};
use tokio::sync::Notify;

use paddock_core::deployments::RequireAudit;

use crate::db::jobs::Candidate;
use crate::db::supervisors::Supervisor;
use crate::state::{AppState, InstanceSettings, Shutdown};

const BATCH: i64 = 512;

/// May the job's user run on this supervisor? Privileges (submit_jobs) and the ACLs.
pub fn user_may_use(
    sup: &Supervisor,
    instance_acl: &Acl,
    user: &paddock_core::Name,
    privileges: &[Privilege],
) -> bool {
    Privilege::SubmitJobs.granted_by(privileges)
        && acl::evaluate(&sup.acl, instance_acl, Subject { user, privileges }) == Decision::Allow
}

/// Is `sup` eligible for the job, apart from being connected and idle?
/// (The fast path of [`refusals`]: the two must agree.)
pub fn eligible(sup: &Supervisor, expr: &TagExpr, instance_acl: &Acl, c: &Candidate) -> bool {
    !sup.retired
        && sup.ready_for_service
        && !sup.audit_blocked
        && expr.matches(&sup.tag_strs())
        && user_may_use(sup, instance_acl, &c.user, &c.privileges)
}

/// Why a supervisor cannot take a job; see [`refusals`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Retired,
    /// The supervisor's tags do not satisfy the job's expression.
    Tags,
    /// The job's user does not hold `submit_jobs`.
    NoSubmitJobs,
    /// The ACLs deny the user; the explanation names the rule.
    Acl(acl::Explanation),
    NotReady,
    AuditBlocked,
    /// The audit gate in force for the supervisor's site is not met.
    AuditRequired(RequireAudit, AuditGap),
}

/// What the audit gate misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditGap {
    /// No check run yet, or the latest one did not pass.
    NoPassingCheck,
    /// The latest inventory's verdict is FAILED.
    InventoryFailed,
}

/// Whether `sup`'s audit state meets `gate`; `None` when it does.
pub fn audit_gap(sup: &Supervisor, gate: RequireAudit) -> Option<AuditGap> {
    match gate {
        RequireAudit::None => None,
        _ if !sup.audit_check_passed => Some(AuditGap::NoPassingCheck),
        RequireAudit::CheckAndInventory if sup.inventory_failed => Some(AuditGap::InventoryFailed),
        _ => None,
    }
}

impl Refusal {
    /// True for what only a person changes (retirement, tags, privileges, ACLs); false for
    /// what the supervisor's own state may lift (readiness, the audit block). A job is refused
    /// at enqueue only when every supervisor has a lasting refusal.
    pub fn is_lasting(&self) -> bool {
        matches!(
            self,
            Refusal::Retired | Refusal::Tags | Refusal::NoSubmitJobs | Refusal::Acl(_)
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Retired => f.write_str("retired"),
            Refusal::Tags => f.write_str("tags do not match"),
            Refusal::NoSubmitJobs => f.write_str("user lacks submit_jobs"),
            Refusal::Acl(e) => write!(f, "ACL denies: {e}"),
            Refusal::NotReady => f.write_str("not ready for service"),
            Refusal::AuditBlocked => f.write_str("blocked by its latest audit check run"),
            Refusal::AuditRequired(gate, AuditGap::NoPassingCheck) => {
                write!(f, "no passing audit check run (require_audit: {gate})")
            }
            Refusal::AuditRequired(gate, AuditGap::InventoryFailed) => {
                write!(f, "latest inventory FAILED (require_audit: {gate})")
            }
        }
    }
}

/// Every reason `sup` cannot take a job of `user` with expression `expr`, apart from being
/// connected and idle; empty when it is eligible. [`eligible`] is the same decision.
pub fn refusals(
    sup: &Supervisor,
    expr: &TagExpr,
    settings: &InstanceSettings,
    user: &paddock_core::Name,
    privileges: &[Privilege],
) -> Vec<Refusal> {
    let instance_acl = &settings.acl;
    let mut out = Vec::new();
    if sup.retired {
        out.push(Refusal::Retired);
    }
    if !expr.matches(&sup.tag_strs()) {
        out.push(Refusal::Tags);
    }
    if !Privilege::SubmitJobs.granted_by(privileges) {
        out.push(Refusal::NoSubmitJobs);
    }
    let e = acl::explain(&sup.acl, instance_acl, Subject { user, privileges });
    if e.decision == Decision::Deny {
        out.push(Refusal::Acl(e));
    }
    if !sup.ready_for_service {
        out.push(Refusal::NotReady);
    }
    if sup.audit_blocked {
        out.push(Refusal::AuditBlocked);
    }
    let gate = settings.require_audit_of(&sup.site);
    if let Some(gap) = audit_gap(sup, gate) {
        out.push(Refusal::AuditRequired(gate, gap));
    }
    out
}

/// The most supervisors a match error names; the rest are counted.
pub const MAX_NAMED_IN_MATCH_ERROR: usize = 10;

/// The enqueue-time verdict: `None` when some supervisor of `all` (retired ones included)
/// could ever run the job (no lasting [`Refusal`]), otherwise the job's status message:
/// `no supervisor matches EXPR for user U: NAME (reason, …); …`, naming at most
/// [`MAX_NAMED_IN_MATCH_ERROR`] supervisors (those whose tags match first, then by name) and
/// counting the rest.
pub fn match_error(
    all: &[Supervisor],
    expr: &TagExpr,
    settings: &InstanceSettings,
    user: &paddock_core::Name,
    privileges: &[Privilege],
) -> Option<String> {
    let mut refused = Vec::with_capacity(all.len());
    for sup in all {
        let r = refusals(sup, expr, settings, user, privileges);
        if !r.iter().any(Refusal::is_lasting) {
            return None;
        }
        refused.push((sup, r));
    }
    refused.sort_by(|(a, ra), (b, rb)| {
        (ra.contains(&Refusal::Tags), &a.name).cmp(&(rb.contains(&Refusal::Tags), &b.name))
    });
    let mut msg = format!("no supervisor matches {expr} for user {user}: ");
    if refused.is_empty() {
        msg.push_str("no supervisor is registered");
        return Some(msg);
    }
    let named: Vec<String> = refused
        .iter()
        .take(MAX_NAMED_IN_MATCH_ERROR)
        .map(|(sup, r)| {
            let why: Vec<String> = r.iter().map(ToString::to_string).collect();
            format!("{} ({})", sup.name, why.join(", "))
        })
        .collect();
    msg.push_str(&named.join("; "));
    if refused.len() > MAX_NAMED_IN_MATCH_ERROR {
        msg.push_str(&format!(
            "; and {} more",
            refused.len() - MAX_NAMED_IN_MATCH_ERROR
        ));
    }
    Some(msg)
}

/// The policy: pairs (job index, supervisor index), in job order.
pub fn pick(jobs: &[Candidate], idle: &[Supervisor], instance_acl: &Acl) -> Vec<(usize, usize)> {
    pick_gated(jobs, idle, instance_acl, |_| true)
}

/// [`pick`] under the instance settings: also skips supervisors whose site's audit gate
/// (`require_audit`) is not met.
pub fn pick_with(
    jobs: &[Candidate],
    idle: &[Supervisor],
    settings: &InstanceSettings,
) -> Vec<(usize, usize)> {
    pick_gated(jobs, idle, &settings.acl, |s| {
        audit_gap(s, settings.require_audit_of(&s.site)).is_none()
    })
}

fn pick_gated(
    jobs: &[Candidate],
    idle: &[Supervisor],
    instance_acl: &Acl,
    gate: impl Fn(&Supervisor) -> bool,
) -> Vec<(usize, usize)> {
    // A supervisor its audit gate keeps out counts as taken.
    let mut taken: Vec<bool> = idle.iter().map(|s| !gate(s)).collect();
    let mut left = taken.iter().filter(|t| !**t).count();
    // Most queued jobs share a handful of expressions: parse each once per pass.
    let mut parsed: HashMap<&str, Option<TagExpr>> = HashMap::new();
    let mut out = Vec::new();
    for (ji, c) in jobs.iter().enumerate() {
        if left == 0 {
            break;
        }
        let Some(expr) = parsed
            .entry(c.tag_expr.as_str())
            .or_insert_with(|| c.tag_expr.parse().ok())
        else {
            continue;
        };
        if let Some(si) =
            (0..idle.len()).find(|&si| !taken[si] && eligible(&idle[si], expr, instance_acl, c))
        {
            taken[si] = true;
            left -= 1;
            out.push((ji, si));
        }
    }
    out
}

/// Runs one pass; returns how many jobs were claimed.
pub async fn run_once(app: &AppState) -> anyhow::Result<usize> {
    let local = app.hub.connected();
    if local.is_empty() {
        return Ok(0);
    }
    let settings = app.instance_settings().await?;
    let started = std::time::Instant::now();
    let claims = app
        .db
        .claim(&local, BATCH, |jobs, idle| pick_with(jobs, idle, &settings))
        .await?;
    tracing::debug!(
        claimed = claims.len(),
        duration_us = started.elapsed().as_micros() as u64,
        "scheduling pass"
    );
    let now = paddock_core::api::now_ms();
    for c in &claims {
        let _span =
            tracing::info_span!("schedule", job.id = %c.job.id, supervisor.id = %c.supervisor_id)
                .entered();
        if app.hub.send(
            c.supervisor_id,
            SwitchboardMessage::StartJob(c.job.start_message()),
        ) {
            app.metrics
                .observe_scheduling_latency((now - c.job.created_at).max(0) as f64 / 1000.0);
            tracing::debug!("start_job sent");
        } else {
            tracing::warn!("supervisor disconnected before start_job; will resend on hello");
        }
    }
    if !claims.is_empty() {
        // Event streams waiting on these jobs see `scheduled` now, not at their next poll.
        app.events_changed();
    }
    Ok(claims.len())
}

/// The scheduler task.
pub async fn run(app: AppState, wake: std::sync::Arc<Notify>, mut shutdown: Shutdown) {
    loop {
        let claimed = match run_once(&app).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "scheduling pass failed");
                0
            }
        };
        if claimed as i64 >= BATCH {
            continue;
        }
        tokio::select! {
            // A short pause after a wake lets a burst of enqueues and finished jobs be claimed
            // in one pass instead of many.
            _ = wake.notified() => tokio::time::sleep(Duration::from_millis(2)).await,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = crate::state::stopped(&mut shutdown) => return,
        }
    }
}
