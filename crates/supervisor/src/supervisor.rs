//! The supervisor's main loop: takes `start_job`, `stop_job` and `config` from the connection,
//! runs each job in its own task (`job.rs`), and on shutdown stops every job and reports it
//! before closing the connection.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paddock_core::JobId;
use paddock_core::protocol::{CONSOLE_INPUT_MAX, SupervisorConfig, SwitchboardMessage};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::connection::{self, JobTable, LinkSettings};
use crate::driver::HostDriver;
use crate::image_cache::ImageSource;
use crate::job::{self, JobContext, StopReason};

/// Everything a supervisor needs at run time (built from the TOML [`crate::config::Config`],
/// or directly by `paddock up` and the benchmarks).
#[derive(Debug, Clone)]
pub struct Settings {
    pub link: LinkSettings,
    /// Local image store directories, tried first.
    pub stores: Vec<PathBuf>,
    /// Image store servers, tried in order, through the cache.
    pub urls: Vec<String>,
    /// The image cache directory and its size limit in bytes.
    pub cache_dir: PathBuf,
    pub cache_max_bytes: u64,
}

/// The live configuration pushed by the switchboard, with its generation.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedConfig {
    pub generation: u64,
    /// As received.
    pub config: serde_json::Value,
    /// `config` read as a supervisor's configuration; `None` when it does not read as one
    /// (from a switchboard of another version).
    pub supervisor: Option<SupervisorConfig>,
}

/// Keeps the newest config: returns whether `generation` was newer than the applied one.
pub fn accept_config(current: &Mutex<Option<u64>>, generation: u64) -> bool {
    let mut g = current.lock().unwrap_or_else(|p| p.into_inner());
    match *g {
        Some(old) if old >= generation => false,
        _ => {
            *g = Some(generation);
            true
        }
    }
}

/// The image stores of the supervisor's site, from a pushed configuration (`image_stores`),
/// read leniently (for a configuration that does not read as a [`SupervisorConfig`]).
pub fn site_image_stores(config: &serde_json::Value) -> Vec<String> {
    config["image_stores"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// How many `console_input` messages may wait for a job's host (each at most
/// [`CONSOLE_INPUT_MAX`] bytes); more are dropped with a warning.
const CONSOLE_INPUT_QUEUE: usize = 16;

/// A job task's handles: its stop request and its console input.
struct Running {
    stop: watch::Sender<Option<StopReason>>,
    input: mpsc::Sender<String>,
}

/// How many finished job ids are remembered, so a repeated `start_job` is not run twice.
const RECENT: usize = 256;

/// Runs until `shutdown` turns true, then stops every job, reports it, and returns.
/// `config_out` receives each newer config the switchboard pushes.
pub async fn run<D: HostDriver>(
    settings: Settings,
    driver: D,
    mut shutdown: watch::Receiver<bool>,
    config_out: Option<watch::Sender<Option<AppliedConfig>>>,
) {
    driver.cleanup_leftovers().await;
    let jobs: JobTable = JobTable::default();
    let generation = Arc::new(Mutex::new(None));
    let (link, mut inbound, conn) =
        connection::spawn(settings.link.clone(), jobs.clone(), generation.clone());
    let ctx = JobContext {
        driver: Arc::new(driver),
        images: Arc::new(ImageSource::new(
            settings.stores.clone(),
            settings.urls.clone(),
            &settings.cache_dir,
            settings.cache_max_bytes,
        )),
        link: link.clone(),
        supervisor_id: settings.link.supervisor_id,
    };
    let mut running: HashMap<JobId, Running> = HashMap::new();
    let mut recent: VecDeque<JobId> = VecDeque::new();
    let mut tasks: JoinSet<JobId> = JoinSet::new();
    loop {
        tokio::select! {
            m = inbound.recv() => {
                // The connection task only ends once the link is dropped.
                let Some(m) = m else { break };
                match m {
                    SwitchboardMessage::StartJob(start) => {
                        let id = start.job_id;
                        if running.contains_key(&id) || recent.contains(&id) || link.is_tracked(&id) {
                            tracing::debug!(job.id = %id, "repeated start_job ignored");
                            continue;
                        }
                        if !running.is_empty() {
                            tracing::warn!(job.id = %id, running = running.len(), "a job starts while others still run");
                        }
                        tracing::info!(job.id = %id, "start_job");
                        link.track(id);
                        let (tx, rx) = watch::channel(None);
                        let (input, input_rx) = mpsc::channel(CONSOLE_INPUT_QUEUE);
                        running.insert(id, Running { stop: tx, input });
                        let ctx = ctx.clone();
                        tasks.spawn(async move {
                            job::run(ctx, start, rx, input_rx).await;
                            id
                        });
                    }
                    SwitchboardMessage::StopJob { job_id, reason } => {
                        match running.get(&job_id) {
                            Some(r) => {
                                tracing::info!(job.id = %job_id, %reason, "stop_job");
                                r.stop.send_replace(Some(StopReason::Switchboard));
                            }
                            None => tracing::debug!(job.id = %job_id, %reason, "stop_job for a job not running here"),
                        }
                    }
                    // The text is never logged, only its length.
                    SwitchboardMessage::ConsoleInput { job_id, data } => {
                        let bytes = data.0.len();
                        if bytes > CONSOLE_INPUT_MAX {
                            tracing::warn!(job.id = %job_id, bytes, max = CONSOLE_INPUT_MAX, "console input over the bound dropped");
                            continue;
                        }
                        match running.get(&job_id) {
                            Some(r) => {
                                if r.input.try_send(data.0).is_err() {
                                    tracing::warn!(job.id = %job_id, bytes, "console input dropped: the job's host is not taking input as fast as it comes");
                                }
                            }
                            None => tracing::warn!(job.id = %job_id, bytes, "console input for a job not running here dropped"),
                        }
                    }
                    SwitchboardMessage::Config { generation: g, config } => {
                        if accept_config(&generation, g) {
                            tracing::info!(generation = g, "config applied");
                            let supervisor = match SupervisorConfig::read(&config) {
                                Ok(c) => Some(c),
                                Err(e) => {
                                    tracing::warn!(generation = g, error = %e, "the config does not read as a supervisor's; its image stores are read as far as they can be");
                                    None
                                }
                            };
                            let site_stores = match &supervisor {
                                Some(c) => c.image_stores.clone(),
                                None => site_image_stores(&config),
                            };
                            if ctx.images.set_site_urls(site_stores.clone()) {
                                tracing::info!(?site_stores, "the site's image stores");
                            }
                            if let Some(out) = &config_out {
                                out.send_replace(Some(AppliedConfig { generation: g, config, supervisor }));
                            }
                        } else {
                            tracing::debug!(generation = g, "older or repeated config ignored");
                        }
                    }
                    _ => {}
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(id) = done {
                    running.remove(&id);
                    recent.push_back(id);
                    if recent.len() > RECENT {
                        recent.pop_front();
                    }
                }
            }
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    tracing::info!(jobs = running.len(), "supervisor shutting down");
    for r in running.values() {
        r.stop.send_replace(Some(StopReason::Shutdown));
    }
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    drop(ctx);
    drop(link);
    let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_config_generations_are_ignored() {
        let g = Mutex::new(None);
        assert!(accept_config(&g, 3));
        assert!(!accept_config(&g, 3), "repeated");
        assert!(!accept_config(&g, 2), "older");
        assert!(accept_config(&g, 4));
        assert_eq!(*g.lock().unwrap_or_else(|p| p.into_inner()), Some(4));
    }

    #[test]
    fn the_site_s_image_stores_come_after_the_supervisor_s_own() {
        let config =
            serde_json::json!({"site": "lab1", "image_stores": ["http://b:1/", 7, "http://a:2"]});
        assert_eq!(site_image_stores(&config), ["http://b:1/", "http://a:2"]);
        assert!(site_image_stores(&serde_json::json!({"site": "x"})).is_empty());
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let images = ImageSource::new(vec![], vec!["http://a:2".into()], dir.path(), 1 << 20);
        assert!(images.set_site_urls(site_image_stores(&config)));
        assert_eq!(
            images.urls(),
            ["http://a:2", "http://b:1"],
            "own first, no repeats"
        );
        assert!(!images.set_site_urls(vec!["http://b:1".into(), "http://a:2".into()]));
        assert!(images.set_site_urls(vec![]));
        assert_eq!(images.urls(), ["http://a:2"]);
    }
}
