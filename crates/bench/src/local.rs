//! The local-supervisor benchmark: a real switchboard (child process, SQLite), and in this
//! process N real supervisors with the `local` driver, each running a trivial workload
//! (`/bin/sh` script that exits 0) from a real image store, every image verified by sha256
//! before each job. Prints end-to-end jobs/s and enqueue → `ready` latency (from the job event
//! log: the `queued` and `ready` timestamps, both written by the switchboard).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use paddock_core::api::jobs::{EnqueueJobResponse, JobEventList};
use paddock_core::api::supervisors::SupervisorList;
use paddock_core::{ExecutionState, ExitStatus};
use paddock_imagestore::LocalStore;
use paddock_imagestore::import::ImportOptions;
use paddock_supervisor::config::LocalDriverConfig;
use paddock_supervisor::connection::LinkSettings;
use paddock_supervisor::driver::local::LocalDriver;

use crate::scheduler::{
    database_url, enqueue_request, percentile, populate, spawn_server, switchboard,
    terminated_count,
};

#[derive(Debug, Args)]
pub struct Options {
    /// Jobs to enqueue.
    #[arg(long, default_value_t = 2000)]
    jobs: usize,
    /// Local supervisors (in this process) that run them.
    #[arg(long, default_value_t = 100)]
    supervisors: usize,
    /// Concurrent enqueue requests.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Offered load in jobs per second (open loop). Without it, jobs are enqueued as fast as
    /// possible and the latency includes the wait for a free supervisor.
    #[arg(long)]
    rate: Option<f64>,
}

fn ms(at: &str) -> anyhow::Result<i64> {
    let t = humantime::parse_rfc3339(at).with_context(|| format!("timestamp {at:?}"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64)
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    let dir = tempfile::tempdir()?;
    let url = database_url("sqlite", dir.path(), "").await?;
    let (admin, tokens) = populate(&url, opts.supervisors).await?;
    let server = spawn_server(&url).await?;

    let store = LocalStore::new(dir.path().join("store"));
    let script = dir.path().join("true.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n")?;
    let image = store.import(
        &script,
        &ImportOptions {
            label: "true".into(),
            revision: None,
            description: "exits 0".into(),
            entry_point: None,
            ready_on_puppet: false,
        },
    )?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut sups = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let driver = LocalDriver::new(
            LocalDriverConfig::default(),
            &dir.path().join(format!("s{i}")),
        )?;
        let settings = paddock_supervisor::Settings {
            link: LinkSettings {
                switchboard_url: server.base.clone(),
                token,
                supervisor_id: None,
                reconnect_min: Duration::from_millis(100),
                reconnect_max: Duration::from_secs(2),
                console_budget: paddock_supervisor::connection::CONSOLE_BUDGET,
            },
            stores: vec![store.root().to_path_buf()],
            urls: Vec::new(),
            cache_dir: dir.path().join(format!("cache{i}")),
            cache_max_bytes: 1 << 30,
        };
        sups.push(tokio::spawn(paddock_supervisor::run(
            settings,
            driver,
            stop_rx.clone(),
            None,
        )));
    }
    // One HTTP client shared by every enqueue connection, the metrics polls and the reads.
    let http = reqwest::Client::new();
    let sb = switchboard(&server.base, &admin, &http);
    // Wait until every supervisor is connected.
    let t_connect = Instant::now();
    loop {
        let list: SupervisorList = sb.get("/supervisors").await.context("supervisors")?;
        let n = list.supervisors.iter().filter(|s| s.connected).count();
        if n == opts.supervisors {
            break;
        }
        if t_connect.elapsed() > Duration::from_secs(60) {
            bail!("only {n} of {} supervisors connected", opts.supervisors);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency {
        let (sb, next, n, image, rate) = (
            sb.clone(),
            next.clone(),
            opts.jobs,
            image.to_string(),
            opts.rate,
        );
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Some(r) = rate {
                    let due = t0 + Duration::from_secs_f64(i as f64 / r);
                    tokio::time::sleep_until(due.into()).await;
                }
                let r: EnqueueJobResponse = sb
                    .post("/jobs", &enqueue_request(&image))
                    .await
                    .context("enqueue")?;
                ids.push(r.job_id);
            }
            anyhow::Ok(ids)
        }));
    }
    let mut ids = Vec::with_capacity(opts.jobs);
    for w in workers {
        ids.extend(w.await??);
    }
    let mut last_report = Instant::now();
    loop {
        let done = terminated_count(&http, &server.base).await?;
        if done >= opts.jobs {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!("  {done}/{} jobs terminated", opts.jobs);
            last_report = Instant::now();
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(900),
            "jobs did not all terminate"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total_s = t0.elapsed().as_secs_f64();

    let mut lat = Vec::with_capacity(ids.len());
    let mut ok = 0;
    for id in &ids {
        let events: JobEventList = sb
            .get(&format!("/jobs/{id}/events"))
            .await
            .with_context(|| format!("job {id}'s events"))?;
        let at = |s: ExecutionState| events.events.iter().find(|e| e.to_state == s);
        if let (Some(q), Some(r)) = (at(ExecutionState::Queued), at(ExecutionState::Ready)) {
            lat.push((ms(&r.at)? - ms(&q.at)?) as f64);
        }
        let last_status = events.events.iter().rev().find_map(|e| e.to_status);
        if last_status == Some(ExitStatus::WorkloadFinishedSuccess) {
            ok += 1;
        } else {
            let log: Vec<String> = events
                .events
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {:?} {}",
                        e.at,
                        e.to_state,
                        e.to_status,
                        e.message.as_deref().unwrap_or("")
                    )
                })
                .collect();
            eprintln!("job {id} did not succeed:\n  {}", log.join("\n  "));
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "local    sqlite   jobs={} supervisors={} concurrency={} rate={}  end-to-end {:.0} jobs/s ({:.2} s)  enqueue->ready p50 {:.0} ms p99 {:.0} ms max {:.0} ms  succeeded {ok}/{}",
        opts.jobs,
        opts.supervisors,
        opts.concurrency,
        opts.rate.map_or("max".to_string(), |r| format!("{r:.0}/s")),
        opts.jobs as f64 / total_s,
        total_s,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        opts.jobs,
    );
    stop_tx.send_replace(true);
    for s in sups {
        let _ = s.await;
    }
    Ok(())
}
