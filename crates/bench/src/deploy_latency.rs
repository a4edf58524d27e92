//! Deploy latencies against a real switchboard (SQLite, loopback HTTP) and real git repos:
//! an edit of a watched working tree until the switchboard runs it, and a signed push
//! webhook until the switchboard runs the pushed commit. Prints medians, p90 and maxima.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use paddock_core::api::deployment::Applied;
use paddock_deploy::apply;
use paddock_deploy::daemon::{Settings, run as daemon, sign, webhook};
use paddock_deploy::git_source::Source;

use crate::scheduler::percentile;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Working-tree edits timed.
    #[arg(long, default_value_t = 30)]
    pub edits: usize,
    /// Pushes announced by a webhook timed.
    #[arg(long, default_value_t = 20)]
    pub pushes: usize,
    /// The daemon's debounce (quiet time that ends a burst of edits), in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub debounce_ms: u64,
}

const SWITCHBOARD_YAML: &str = include_str!("../../../examples/deployments/db/switchboard.yaml");
const SITE_YAML: &str = include_str!("../../../examples/deployments/db/sites/lab1.yaml");
const COMMENT: &str = "comment: runs jobs as local processes on the site server";

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.org",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .context("running git")?;
    anyhow::ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The example site with supervisor lab1-local-1's comment made unique to `i`.
fn site_text(i: usize) -> String {
    SITE_YAML.replace(COMMENT, &format!("{COMMENT} (edit {i})"))
}

async fn applied_commit(sb: &paddock_client::Switchboard) -> anyhow::Result<String> {
    let applied: Applied = sb.get("/deployment").await.context("the deployment")?;
    Ok(applied.commit)
}

/// Polls (every millisecond) until the applied commit satisfies `done`; the time it took.
async fn until(
    sb: &paddock_client::Switchboard,
    t0: Instant,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<Duration> {
    loop {
        if done(&applied_commit(sb).await?) {
            return Ok(t0.elapsed());
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(30),
            "not applied within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn summary(what: &str, ms: &mut [f64], target: &str) {
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "deploy  {what}: median {:.0} ms  p90 {:.0} ms  max {:.0} ms  ({} runs; target {target})",
        percentile(ms, 0.5),
        percentile(ms, 0.9),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len()
    );
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("sb"))?;
    let db = paddock_switchboard::db::Db::connect(&paddock_switchboard::db::sqlite_url_for(
        &dir.path().join("sb"),
    ))
    .await?;
    let admin: paddock_core::Name = "bench".parse()?;
    db.create_user(&admin, None, &[paddock_core::Privilege::Admin])
        .await?;
    let token = paddock_switchboard::tokens::mint(&db, &admin, None)
        .await?
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(paddock_switchboard::run(
        paddock_switchboard::AppState::new(db, paddock_switchboard::config::Config::default()),
        listener,
    ));
    let daemon_sb = apply::Switchboard {
        url,
        token,
        http: reqwest::Client::new(),
    };
    // The polls share the daemons' HTTP client (connections reused between polls).
    let sb = paddock_client::Switchboard::from_parts(
        &daemon_sb.url,
        Some(daemon_sb.token.clone()),
        daemon_sb.http.clone(),
        paddock_client::Timeouts::default(),
    );

    // The deployments repo: a bare repo and a working tree on "the site server".
    let bare = dir.path().join("R.git");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&bare)?;
    std::fs::create_dir_all(work.join("db/sites"))?;
    git(&bare, &["init", "-q", "--bare", "-b", "main"])?;
    std::fs::write(work.join("db/switchboard.yaml"), SWITCHBOARD_YAML)?;
    std::fs::write(work.join("db/sites/lab1.yaml"), SITE_YAML)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    git(&work, &["add", "-A"])?;
    git(&work, &["commit", "-q", "-m", "lab1"])?;
    let bare_s = bare.display().to_string();
    git(&work, &["push", "-q", &bare_s, "main"])?;
    let head = git(&work, &["rev-parse", "HEAD"])?;
    let site = work.join("db/sites/lab1.yaml");

    // 1. Edits of a watched working tree, saved the way editors do (write + rename).
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let settings = Settings {
        worktree: Some(work.clone()),
        debounce: Duration::from_millis(opts.debounce_ms),
        state_dir: dir.path().join("state"),
        ..Settings::new(
            daemon_sb.clone(),
            Source::Local(bare.clone()),
            "main",
            Duration::from_secs(3600),
        )
    };
    let watcher = tokio::spawn(daemon(
        settings,
        Arc::new(tokio::sync::Notify::new()),
        async {
            let _ = stop_rx.await;
        },
    ));
    until(&sb, Instant::now(), |c| c == head).await?;
    let mut edit_ms = Vec::new();
    for i in 0..opts.edits {
        let before = applied_commit(&sb).await?;
        let tmp = site.with_file_name(".lab1.yaml.tmp");
        std::fs::write(&tmp, site_text(i))?;
        let t0 = Instant::now();
        std::fs::rename(&tmp, &site)?;
        let took = until(&sb, t0, |c| c != before && c.contains("+edits-")).await?;
        edit_ms.push(took.as_secs_f64() * 1000.0);
        // Let the daemon settle (its report) so edits are timed one at a time.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(());
    watcher.await?;

    // 2. Pushes announced by a signed webhook (poll interval an hour: only the hook syncs).
    std::fs::write(&site, SITE_YAML)?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hooks/push", hook_listener.local_addr()?);
    let secret = b"bench-secret".to_vec();
    let app = webhook(secret.clone(), wake.clone());
    tokio::spawn(async move { axum_serve(hook_listener, app).await });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let settings = Settings::new(
        daemon_sb.clone(),
        Source::Local(bare.clone()),
        "main",
        Duration::from_secs(3600),
    );
    let puller = tokio::spawn(daemon(settings, wake, async {
        let _ = stop_rx.await;
    }));
    until(&sb, Instant::now(), |c| c == head).await?;
    let body = br#"{"ref":"refs/heads/main"}"#.to_vec();
    let mut hook_ms = Vec::new();
    for i in 0..opts.pushes {
        std::fs::write(&site, site_text(1000 + i))?;
        git(&work, &["commit", "-q", "-am", &format!("push {i}")])?;
        git(&work, &["push", "-q", &bare_s, "main"])?;
        let pushed = git(&work, &["rev-parse", "HEAD"])?;
        let t0 = Instant::now();
        let status = daemon_sb
            .http
            .post(&hook)
            .header("x-hub-signature-256", sign(&secret, &body))
            .body(body.clone())
            .send()
            .await?
            .status();
        anyhow::ensure!(status.as_u16() == 202, "webhook answered {status}");
        let took = until(&sb, t0, |c| c == pushed).await?;
        hook_ms.push(took.as_secs_f64() * 1000.0);
    }
    let _ = stop_tx.send(());
    puller.await?;

    summary(
        &format!(
            "working-tree edit -> applied (debounce {} ms)",
            opts.debounce_ms
        ),
        &mut edit_ms,
        "p50 < 300 ms",
    );
    summary("signed push webhook -> applied", &mut hook_ms, "< 1 s");
    Ok(())
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) {
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("webhook listener: {e}");
    }
}
