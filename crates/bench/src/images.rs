//! The image store benchmark: on one machine, in one run, against the same stores of
//! (a) many small files and (b) two large blobs:
//! - mirroring: the Treadmill book's `wget … -i all.txt` one-liner versus `paddock image mirror`
//!   (the library), both against `paddock-imagestore serve`;
//! - serving: a static file server (nginx when installed, else `python3 -m http.server`) versus
//!   `paddock-imagestore serve`: throughput of concurrent large downloads (MB/s), and latency
//!   of small GETs under concurrency (p50, p99).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt;
use paddock_core::manifest::{
    BASE_EXTENSION, BlobSpec, ImageManifest, blob_path, image_path, sha256_id,
};
use rand::RngCore;

use crate::scheduler::percentile;

#[derive(Debug, Args)]
pub struct Options {
    /// Small files in store (a): half blobs, half manifests.
    #[arg(long, default_value_t = 2000)]
    small_files: usize,
    /// Size of each small blob, bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    small_size: usize,
    /// Size of each of the two large blobs of store (b), MiB (0 skips store b).
    #[arg(long, default_value_t = 1024)]
    big_mib: usize,
    /// Parallel downloads of `paddock image mirror`.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Concurrent clients for the serving figures.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Small GETs per server for the latency figure.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Timed rounds of each mirror figure (the order of wget and mirror alternates; the
    /// medians are printed).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Where to build the stores (needs about 5 × big-mib × 2 MiB free).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// A server under test, started in a process group of its own: dropping it stops the whole
/// group (SIGTERM, up to 5 s for the leader to exit, then SIGKILL), so that the processes it
/// started (nginx's workers) do not outlive it, re-parented to PID 1. [`run`] ends on Ctrl-C
/// by dropping these (its children are not in the terminal's foreground group).
struct Proc(Child);

impl Proc {
    fn spawn(cmd: &mut Command) -> std::io::Result<Proc> {
        std::os::unix::process::CommandExt::process_group(cmd, 0)
            .spawn()
            .map(Proc)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process_group};
        // The group's id is the leader's pid (`process_group(0)`).
        let group = Pid::from_child(&self.0);
        let _ = kill_process_group(group, Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (a worker that ignored SIGTERM, the leader).
        let _ = kill_process_group(group, Signal::KILL);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn write_file(root: &Path, rel: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().context("path")?)?;
    std::fs::write(p, bytes)?;
    Ok(())
}

fn manifest(label: &str, blobs: &[(&str, &[u8])]) -> Vec<u8> {
    let m = ImageManifest {
        manifest_version: 0,
        manifest_extensions: vec![BASE_EXTENSION.to_string()],
        label: label.into(),
        revision: 1,
        description: String::new(),
        attrs: Default::default(),
        blobs: blobs
            .iter()
            .map(|(n, b)| {
                (
                    n.to_string(),
                    BlobSpec {
                        sha256_digest: sha256_id(b).to_string(),
                        size: b.len() as u64,
                        attrs: Default::default(),
                    },
                )
            })
            .collect(),
    };
    m.to_toml().unwrap_or_default().into_bytes()
}

/// Store (a): `n / 2` images of one small random blob each. Returns the blob paths.
fn small_store(root: &Path, n: usize, size: usize) -> anyhow::Result<Vec<String>> {
    let mut rng = rand::thread_rng();
    let mut paths = Vec::new();
    for i in 0..n / 2 {
        let mut b = vec![0u8; size];
        rng.fill_bytes(&mut b);
        let d = sha256_id(&b);
        write_file(root, &blob_path(&d), &b)?;
        paths.push(blob_path(&d).display().to_string());
        let m = manifest(&format!("small-{i}"), &[("blob", &b)]);
        write_file(root, &image_path(&sha256_id(&m)), &m)?;
    }
    paddock_imagestore::index::write(root)?;
    Ok(paths)
}

/// Store (b): one image of two large random blobs. Returns the blob paths.
fn big_store(root: &Path, mib: usize) -> anyhow::Result<Vec<String>> {
    let mut rng = rand::thread_rng();
    let mut blobs = Vec::new();
    for _ in 0..2 {
        let mut b = vec![0u8; mib * 1024 * 1024];
        rng.fill_bytes(&mut b);
        blobs.push(b);
    }
    let m = manifest("big", &[("a", &blobs[0]), ("b", &blobs[1])]);
    let mut paths = Vec::new();
    for b in &blobs {
        let d = sha256_id(b);
        write_file(root, &blob_path(&d), b)?;
        paths.push(blob_path(&d).display().to_string());
    }
    write_file(root, &image_path(&sha256_id(&m)), &m)?;
    paddock_imagestore::index::write(root)?;
    Ok(paths)
}

async fn wait_up(base: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/all.txt")).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{base} did not come up")
}

async fn paddock_server(root: &Path) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let p = Proc::spawn(
        Command::new(std::env::current_exe()?)
            .args(["imagestore", "serve", "--root"])
            .arg(root)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null()),
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_up(&base).await?;
    Ok((p, base))
}

/// nginx with sendfile when installed, else python3's http.server.
async fn static_server(root: &Path, scratch: &Path) -> anyhow::Result<(Proc, String, String)> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let (p, name) = if let Some(nginx) = nginx {
        let conf = scratch.join(format!("nginx-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nworker_processes auto;\npid {pid};\nerror_log stderr error;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000;\n  client_body_temp_path {t};\n  proxy_temp_path {t};\n  fastcgi_temp_path {t};\n  uwsgi_temp_path {t};\n  scgi_temp_path {t};\n  server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
                pid = scratch.join(format!("nginx-{port}.pid")).display(),
                t = scratch.display(),
                root = root.display(),
            ),
        )?;
        (
            Proc::spawn(
                Command::new(nginx)
                    .args(["-c"])
                    .arg(&conf)
                    .args(["-p"])
                    .arg(scratch)
                    .stderr(Stdio::null()),
            )
            .context("starting nginx")?,
            "nginx",
        )
    } else {
        (
            Proc::spawn(
                Command::new("python3")
                    .args([
                        "-m",
                        "http.server",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                    ])
                    .current_dir(root)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .context("starting python3 -m http.server")?,
            "python3 http.server",
        )
    };
    wait_up(&base).await?;
    Ok((p, base, name.to_string()))
}

/// The book's one-liner, with the URL substituted.
fn wget(base: &str, dest: &Path) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dest)?;
    let script = format!(
        "wget -q -r -p -E -K -np -nH -nc --content-disposition --trust-server-names --no-http-keep-alive -i <(wget -O- -o/dev/null {base}/all.txt | sed 's|^\\./|{base}/|')"
    );
    let t0 = Instant::now();
    let st = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dest)
        .status()?;
    let secs = t0.elapsed().as_secs_f64();
    if !st.success() {
        bail!("the wget one-liner failed: {st}");
    }
    Ok(secs)
}

async fn paddock_mirror(
    base: &str,
    dest: &Path,
    parallel: usize,
    sync: bool,
) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let r = paddock_imagestore::mirror::mirror(
        base,
        dest,
        &paddock_imagestore::mirror::MirrorOptions {
            parallel,
            sync,
            ..Default::default()
        },
    )
    .await?;
    if !r.failed.is_empty() {
        bail!("mirror failed: {:?}", r.failed);
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Every client downloads every path once, concurrently; returns MB/s (10^6 bytes).
async fn throughput(base: &str, paths: &[String], clients: usize) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, base, paths) = (http.clone(), base.to_string(), paths.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            for i in 0..paths.len() {
                let p = &paths[(i + c) % paths.len()];
                let mut s = http.get(format!("{base}/{p}")).send().await?.bytes_stream();
                while let Some(chunk) = s.next().await {
                    n += chunk?.len() as u64;
                }
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / 1e6 / t0.elapsed().as_secs_f64())
}

/// Small GETs from `concurrency` keep-alive clients; returns (req/s, p50 ms, p99 ms).
async fn latency(
    base: &str,
    paths: &[String],
    concurrency: usize,
    requests: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let paths = Arc::new(paths.to_vec());
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, base, paths, next) =
            (http.clone(), base.to_string(), paths.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let p = &paths[i.wrapping_mul(7919) % paths.len()];
                let t = Instant::now();
                let r = http.get(format!("{base}/{p}")).send().await?;
                anyhow::ensure!(r.status().is_success(), "GET {p}: {}", r.status());
                r.bytes().await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = t0.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Ok((
        requests as f64 / secs,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    ))
}

/// The benchmark; on Ctrl-C it stops, stopping the servers it started (see [`Proc`]).
pub async fn run(opts: Options) -> anyhow::Result<()> {
    tokio::select! {
        r = figures(opts) => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

async fn figures(opts: Options) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    let base_dir = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base_dir)?;
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch)?;
    let mut stores = vec![("a", dir.path().join("small"))];
    eprintln!("building store (a): {} small files", opts.small_files);
    let small_paths = small_store(&stores[0].1, opts.small_files, opts.small_size)?;
    let mut big_paths = Vec::new();
    if opts.big_mib > 0 {
        eprintln!("building store (b): two blobs of {} MiB", opts.big_mib);
        stores.push(("b", dir.path().join("big")));
        big_paths = big_store(&stores[1].1, opts.big_mib)?;
    }
    for (name, root) in &stores {
        let (_srv, base) = paddock_server(root).await?;
        // Page cache warm for both: one untimed read of the store.
        let _ = paddock_mirror(
            &base,
            &dir.path().join(format!("warm-{name}")),
            opts.parallel,
            false,
        )
        .await?;
        if *name == "b" {
            let _ = std::fs::remove_dir_all(dir.path().join(format!("warm-{name}")));
        }
        // The disk and page cache of a small machine drift from run to run: alternate the
        // order of the contenders and print medians. Every run starts with nothing dirty.
        let sync = || {
            let t = Instant::now();
            let _ = Command::new("sync").status();
            t.elapsed().as_secs_f64()
        };
        let (mut tw, mut tws, mut tm, mut tms) = (vec![], vec![], vec![], vec![]);
        let mut t_again = 0.0;
        for round in 0..opts.rounds.max(1) {
            // Fresh directories each round, removed only when no timing follows: ext4 skips
            // inodes freed in the last 30 s when it allocates, so creating thousands of files
            // right after deleting thousands is several times slower, for wget and mirror alike.
            let w = dir.path().join(format!("wget-{name}-{round}"));
            let m = dir.path().join(format!("mirror-{name}-{round}"));
            let ms = dir.path().join(format!("mirror-sync-{name}-{round}"));
            for turn in 0..2 {
                sync();
                if (round + turn) % 2 == 0 {
                    // wget, then `sync` timed on top of it (wget never waits for the disk).
                    let t = wget(&base, &w)?;
                    tw.push(t);
                    tws.push(t + sync());
                } else {
                    // mirror (writeback left to the kernel), then mirror --sync.
                    tm.push(paddock_mirror(&base, &m, opts.parallel, false).await?);
                    sync();
                    tms.push(paddock_mirror(&base, &ms, opts.parallel, true).await?);
                }
            }
            let again = Instant::now();
            paddock_mirror(&base, &m, opts.parallel, false).await?;
            t_again = again.elapsed().as_secs_f64();
            if *name == "b" {
                // Two large files each: little inode churn, and the space is needed.
                for d in [&w, &m, &ms] {
                    let _ = std::fs::remove_dir_all(d);
                }
            }
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            percentile(v, 0.5)
        };
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let rounds = format!(
            "wget [{}] mirror [{}] wget+sync [{}] mirror --sync [{}]",
            list(&tw),
            list(&tm),
            list(&tws),
            list(&tms)
        );
        let (tw, tws, tm, tms) = (med(&mut tw), med(&mut tws), med(&mut tm), med(&mut tms));
        println!(
            "mirror   store ({name})  medians of {r}: wget one-liner {tw:.2} s   paddock image mirror --parallel {p} {tm:.2} s (every byte verified)   speed-up {:.2}x   |   wget + sync {tws:.2} s   mirror --sync {tms:.2} s   speed-up {:.2}x   |   second run {t_again:.3} s",
            tw / tm,
            tws / tms,
            r = opts.rounds.max(1),
            p = opts.parallel,
        );
        println!("         store ({name})  rounds, s: {rounds}");
    }
    // Serving.
    let small_root = &stores[0].1;
    let (_p, pbase) = paddock_server(small_root).await?;
    let (_s, sbase, sname) = static_server(small_root, &scratch).await?;
    for (who, base) in [(sname.as_str(), &sbase), ("paddock-imagestore", &pbase)] {
        let (rps, p50, p99) = latency(base, &small_paths, opts.concurrency, opts.requests).await?;
        println!(
            "serve    small GETs ({} B) {who:<20} concurrency {}  {rps:.0} req/s  p50 {p50:.2} ms  p99 {p99:.2} ms",
            opts.small_size, opts.concurrency
        );
    }
    drop((_p, _s));
    if opts.big_mib > 0 {
        let big_root = &stores[1].1;
        let (_p, pbase) = paddock_server(big_root).await?;
        let (_s, sbase, sname) = static_server(big_root, &scratch).await?;
        // Warm the page cache.
        let _ = throughput(&sbase, &big_paths, 1).await?;
        for clients in [1, 4] {
            for (who, base) in [(sname.as_str(), &sbase), ("paddock-imagestore", &pbase)] {
                let mbs = throughput(base, &big_paths, clients).await?;
                println!(
                    "serve    large blobs ({} MiB) {who:<20} {clients} client(s)  {mbs:.0} MB/s",
                    opts.big_mib
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The processes of the group `pgid` still alive (zombies, already dead, excluded).
    fn group_members(pgid: u32) -> Vec<u32> {
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid pgrp …; comm may hold spaces, so split after its `)`.
            let Some((head, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
                pids.push(head.split(' ').next().unwrap().parse().unwrap());
            }
        }
        pids
    }

    fn gone(pgid: u32) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if group_members(pgid).is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A server that starts workers of its own (as nginx's master does): dropping it stops
    /// them too, not only the process it started.
    #[test]
    fn dropping_a_server_stops_the_processes_it_started() {
        let p = Proc::spawn(
            Command::new("sh")
                .arg("-c")
                .arg("sleep 300 & sleep 300 & echo started; wait")
                .stdout(Stdio::piped()),
        )
        .unwrap();
        let pid = p.0.id();
        let start = Instant::now();
        while group_members(pid).len() < 3 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(group_members(pid).len(), 3, "the shell and its two workers");
        drop(p);
        assert!(gone(pid), "left running: {:?}", group_members(pid));
    }

    /// nginx's workers end with the benchmark (when nginx is installed).
    #[tokio::test]
    async fn nginx_workers_end_with_the_server() {
        if !["/usr/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .any(|p| Path::new(p).exists())
        {
            eprintln!("skipped: nginx is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (root, scratch) = (dir.path().join("root"), dir.path().join("scratch"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        let (p, _, name) = static_server(&root, &scratch).await.unwrap();
        assert_eq!(name, "nginx");
        let pid = p.0.id();
        assert!(group_members(pid).len() >= 2, "a master and its workers");
        drop(p);
        assert!(gone(pid), "left running: {:?}", group_members(pid));
    }
}
