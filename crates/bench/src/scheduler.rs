//! The scheduler benchmark (see the crate doc).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use paddock_core::acl::Acl;
use paddock_core::api::jobs::{EnqueueJobRequest, EnqueueJobResponse};
use paddock_core::protocol::{SupervisorMessage, SwitchboardMessage};
use paddock_core::{ExecutionState, ExitStatus, JobId, Name, Privilege};
use paddock_switchboard::auth::{SUPERVISOR_TOKEN_PREFIX, hash_token, new_token};
use paddock_switchboard::db::Db;
use paddock_switchboard::db::supervisors::NewSupervisor;
use paddock_switchboard::sim::SimSupervisor;
use sqlx::Connection;
use tokio::sync::mpsc;

const IMAGE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[derive(Debug, Args)]
pub struct Options {
    /// Jobs to enqueue per backend.
    #[arg(long, default_value_t = 10_000)]
    jobs: usize,
    /// Simulated supervisors that run the jobs.
    #[arg(long, default_value_t = 100)]
    supervisors: usize,
    /// Idle supervisors connected for the memory figure (0 skips it).
    #[arg(long, default_value_t = 1000)]
    idle_supervisors: usize,
    /// Backends to measure: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// PostgreSQL server; each run uses a fresh schema.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Concurrent enqueue requests (the most in flight at once).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Offered load in jobs per second (open loop: job i is due at start + i/rate, and its
    /// latency counts from then). Without it, each connection enqueues as fast as it can.
    #[arg(long)]
    rate: Option<f64>,
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn database_url(
    backend: &str,
    dir: &std::path::Path,
    pg: &str,
) -> anyhow::Result<String> {
    match backend {
        "sqlite" => Ok(format!(
            "sqlite://{}?mode=rwc",
            dir.join("bench.db").display()
        )),
        "postgres" => {
            sqlx::any::install_default_drivers();
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let mut c = sqlx::AnyConnection::connect(pg)
                .await
                .with_context(|| format!("connecting to {pg}"))?;
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&mut c)
                .await?;
            let sep = if pg.contains('?') { '&' } else { '?' };
            Ok(format!("{pg}{sep}options=-c%20search_path%3D{schema}"))
        }
        other => bail!("unknown backend {other:?} (use sqlite or postgres)"),
    }
}

/// Creates the admin and `n` supervisors; returns the admin token and the supervisor tokens.
pub(crate) async fn populate(url: &str, n: usize) -> anyhow::Result<(String, Vec<String>)> {
    let db = Db::connect(url).await?;
    let admin: Name = "bench".parse()?;
    db.create_user(&admin, None, &[Privilege::Admin]).await?;
    let token = paddock_switchboard::tokens::mint(&db, &admin, None)
        .await?
        .token;
    let site: Name = "lab".parse()?;
    let tags = ["board:bench".parse()?];
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let t = new_token(SUPERVISOR_TOKEN_PREFIX);
        let name: Name = format!("sim-{i}").parse()?;
        db.create_supervisor(NewSupervisor {
            name: &name,
            site: &site,
            tags: &tags,
            acl: &Acl::default(),
            ready_for_service: true,
            token_hash: &hash_token(&t),
        })
        .await?;
        tokens.push(t);
    }
    db.pool.close().await;
    Ok((token, tokens))
}

pub(crate) async fn spawn_server(url: &str) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(std::env::current_exe()?)
        .args([
            "switchboard",
            "serve",
            "--database-url",
            url,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env(
            "RUST_LOG",
            std::env::var("PADDOCK_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .spawn()
        .context("starting the switchboard")?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the switchboard did not become healthy")
}

/// The switchboard at `base` called as the admin (`token`) through `http`, shared so that
/// concurrent calls reuse its connections.
pub(crate) fn switchboard(
    base: &str,
    token: &str,
    http: &reqwest::Client,
) -> paddock_client::Switchboard {
    paddock_client::Switchboard::from_parts(
        base,
        Some(token.to_string()),
        http.clone(),
        paddock_client::Timeouts::default(),
    )
}

/// The benchmarks' job: `image` on any supervisor tagged `board:bench`, server defaults.
pub(crate) fn enqueue_request(image: &str) -> EnqueueJobRequest {
    EnqueueJobRequest {
        image: image.to_string(),
        tags: "board:bench".to_string(),
        parameters: Default::default(),
        ssh_keys: Vec::new(),
        timeout_s: None,
        queue_timeout_s: None,
        priority: 0,
    }
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) async fn terminated_count(http: &reqwest::Client, base: &str) -> anyhow::Result<usize> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("paddock_jobs{state=\"terminated\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0))
}

async fn throughput(opts: &Options, backend: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database_url(backend, dir.path(), &opts.postgres_url).await?;
    let (admin, tokens) = populate(&url, opts.supervisors).await?;
    let server = spawn_server(&url).await?;
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<(JobId, Instant)>();
    let mut sims = Vec::new();
    for token in tokens {
        let mut sim = SimSupervisor::connect(&server.base, &token, vec![]).await?;
        let tx = started_tx.clone();
        sims.push(tokio::spawn(async move {
            while let Ok(msg) = sim.recv().await {
                if let SwitchboardMessage::StartJob(s) = msg {
                    let _ = tx.send((s.job_id, Instant::now()));
                    let done = SupervisorMessage::JobState {
                        job_id: s.job_id,
                        execution_state: Some(ExecutionState::Terminated),
                        exit_status: Some(ExitStatus::WorkloadFinishedSuccess),
                        message: None,
                    };
                    if sim.send(&done).await.is_err() {
                        break;
                    }
                }
            }
        }));
    }
    drop(started_tx);

    // One HTTP client shared by every enqueue connection and the metrics polls.
    let http = reqwest::Client::new();
    let sb = switchboard(&server.base, &admin, &http);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency {
        let (sb, next, n, rate) = (sb.clone(), next.clone(), opts.jobs, opts.rate);
        workers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let at = match rate {
                    Some(r) => {
                        let due = t0 + Duration::from_secs_f64(i as f64 / r);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let r: EnqueueJobResponse = sb
                    .post("/jobs", &enqueue_request(IMAGE))
                    .await
                    .context("enqueue")?;
                sent.push((r.job_id, at));
            }
            anyhow::Ok(sent)
        }));
    }
    let mut sent_at = HashMap::with_capacity(opts.jobs);
    for w in workers {
        sent_at.extend(w.await??);
    }
    let enqueue_s = t0.elapsed().as_secs_f64();
    let mut started_at = HashMap::with_capacity(opts.jobs);
    while started_at.len() < opts.jobs {
        match tokio::time::timeout(Duration::from_secs(60), started_rx.recv()).await {
            Ok(Some((id, at))) => {
                started_at.insert(id, at);
            }
            _ => bail!("only {} of {} jobs started", started_at.len(), opts.jobs),
        }
    }
    while terminated_count(&http, &server.base).await? < opts.jobs {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(600),
            "jobs did not all terminate"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total_s = t0.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = sent_at
        .iter()
        .filter_map(|(id, s)| {
            started_at
                .get(id)
                .map(|t| t.duration_since(*s).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "scheduler {backend:<8} jobs={} supervisors={} concurrency={} rate={}  enqueue {:.0} jobs/s  end-to-end {:.0} jobs/s ({:.2} s)  enqueue->start_job p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        opts.jobs,
        opts.supervisors,
        opts.concurrency,
        opts.rate.map_or("max".to_string(), |r| format!("{r:.0}/s")),
        opts.jobs as f64 / enqueue_s,
        opts.jobs as f64 / total_s,
        total_s,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    for s in sims {
        s.abort();
    }
    Ok(())
}

pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

async fn memory(opts: &Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database_url("sqlite", dir.path(), &opts.postgres_url).await?;
    let (_, tokens) = populate(&url, opts.idle_supervisors).await?;
    let server = spawn_server(&url).await?;
    let pid = server.child.id();
    let (before, _) = rss_kib(pid)?;
    let mut sims = Vec::new();
    for token in &tokens {
        sims.push(SimSupervisor::connect(&server.base, token, vec![]).await?);
    }
    // Let heartbeats run a few rounds with everyone connected.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (after, peak) = rss_kib(pid)?;
    println!(
        "memory   sqlite   idle supervisors={}  switchboard RSS {:.1} MiB (before connections {:.1} MiB, peak {:.1} MiB)",
        sims.len(),
        after as f64 / 1024.0,
        before as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    Ok(())
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    for b in &opts.backends {
        throughput(&opts, b)
            .await
            .with_context(|| format!("{b} run"))?;
    }
    if opts.idle_supervisors > 0 {
        memory(&opts).await.context("memory run")?;
    }
    Ok(())
}
