//! What handlers and tasks share: the database, the configuration, the supervisor hub, the
//! metrics, the wake-ups and the shutdown signal, and the caches of what the database holds.
//! Start-up (the router, the tasks, serving) is in `server.rs`; this module depends on none of
//! the modules that use it.

use std::sync::Arc;

use paddock_core::deployments::{DesiredState, RequireAudit};
use tokio::sync::{Notify, watch};

use crate::cache::Cached;
use crate::config::Config;
use crate::db::supervisors::Supervisor;
use crate::db::{Db, StoreError};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// A cloneable shutdown signal: flips to `true` once.
pub type Shutdown = watch::Receiver<bool>;

/// Resolves once the shutdown is asked for, also when it was before this is called (a
/// receiver's `changed()` would wait for a change it has already seen and never end).
pub async fn stopped(shutdown: &mut Shutdown) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Everything handlers and tasks share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    /// Wakes the scheduler.
    pub wake: Arc<Notify>,
    /// Bumped after any job event is written, so event streams re-read the log.
    pub events: Arc<watch::Sender<u64>>,
    /// Identifies this process in the supervisors' `connection` column.
    pub instance: String,
    /// For the image store servers (label resolution at enqueue).
    pub http: reqwest::Client,
    stop: Arc<watch::Sender<bool>>,
    /// Non-retired supervisors, valid for one supervisors generation.
    supervisor_cache: Cached<i64, Vec<Supervisor>>,
    /// The instance ACL and defaults in force, valid for one supervisors generation.
    settings_cache: Cached<i64, InstanceSettings>,
    /// The applied deployments state, valid for one deployment generation.
    state_cache: Cached<(i64, i64), DesiredState>,
}

/// The instance ACL and job defaults in force: the applied deployments state's once one is
/// applied (its ACL replaces the configuration file's; its defaults where it sets them),
/// the configuration file's before.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSettings {
    pub acl: paddock_core::acl::Acl,
    pub default_job_timeout_s: u64,
    pub default_queue_timeout_s: u64,
    /// The audit gate of sites that set none.
    pub require_audit: RequireAudit,
    /// Sites' own audit gates.
    pub site_require_audit: std::collections::BTreeMap<paddock_core::Name, RequireAudit>,
}

impl InstanceSettings {
    /// The audit gate of a supervisor of `site`.
    pub fn require_audit_of(&self, site: &paddock_core::Name) -> RequireAudit {
        self.site_require_audit
            .get(site)
            .copied()
            .unwrap_or(self.require_audit)
    }
}

impl AppState {
    pub fn new(db: Db, config: Config) -> Self {
        AppState {
            db,
            config: Arc::new(config),
            hub: Hub::default(),
            metrics: Arc::new(Metrics::default()),
            wake: Arc::new(Notify::new()),
            events: Arc::new(watch::Sender::new(0)),
            instance: uuid::Uuid::new_v4().to_string(),
            http: reqwest::Client::new(),
            stop: Arc::new(watch::Sender::new(false)),
            supervisor_cache: Cached::default(),
            settings_cache: Cached::default(),
            state_cache: Cached::default(),
        }
    }

    /// The applied deployments state and its generation, parsed once per generation (every
    /// connecting supervisor reads its configuration from it).
    pub async fn applied_state(&self) -> Result<(i64, Arc<DesiredState>), StoreError> {
        let key = self.db.applied_deployment_generation().await?;
        if let Some(s) = self.state_cache.get(&key) {
            return Ok((key.0, s));
        }
        let (key, state) = self.db.applied_state().await?;
        Ok((key.0, self.state_cache.put(key, state)))
    }

    /// The instance ACL and defaults in force (see [`InstanceSettings`]), re-read when the
    /// supervisors generation moves (an apply that changes them bumps it).
    pub async fn instance_settings(&self) -> Result<Arc<InstanceSettings>, StoreError> {
        let generation = self.db.supervisors_generation().await?;
        if let Some(s) = self.settings_cache.get(&generation) {
            return Ok(s);
        }
        let c = &self.config;
        let settings = match self.db.deployed_settings().await? {
            None => InstanceSettings {
                acl: c.acl.clone(),
                default_job_timeout_s: c.default_job_timeout_s,
                default_queue_timeout_s: c.default_queue_timeout_s,
                require_audit: c.require_audit,
                site_require_audit: Default::default(),
            },
            Some(d) => InstanceSettings {
                acl: d.acl,
                default_job_timeout_s: d.defaults.job_timeout_s.unwrap_or(c.default_job_timeout_s),
                default_queue_timeout_s: d
                    .defaults
                    .queue_timeout_s
                    .unwrap_or(c.default_queue_timeout_s),
                require_audit: d.defaults.require_audit.unwrap_or(c.require_audit),
                site_require_audit: d.site_require_audit,
            },
        };
        Ok(self.settings_cache.put(generation, settings))
    }

    /// Every non-retired supervisor (desired state only: tags, ACL, readiness). Read once per
    /// change of the supervisors generation, which every process sees in the database.
    pub async fn active_supervisors(&self) -> Result<Arc<Vec<Supervisor>>, StoreError> {
        let generation = self.db.supervisors_generation().await?;
        if let Some(list) = self.supervisor_cache.get(&generation) {
            return Ok(list);
        }
        let list = self.db.active_supervisors().await?;
        Ok(self.supervisor_cache.put(generation, list))
    }

    /// Asks every task and connection to stop.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// The shutdown signal, for tasks to select on.
    pub fn shutdown_signal(&self) -> Shutdown {
        self.stop.subscribe()
    }

    /// A job was enqueued or a supervisor became free: run the scheduler.
    pub fn wake_scheduler(&self) {
        self.wake.notify_one();
    }

    pub fn events_changed(&self) {
        self.events.send_modify(|n| *n = n.wrapping_add(1));
    }
}
