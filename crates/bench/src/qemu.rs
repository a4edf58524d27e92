//! The QEMU driver's figures (issue 17), with real QEMU and the test guest of the supervisor's
//! QEMU tests (Debian's cloud kernel and a busybox initramfs holding `paddock-puppet`).
//!
//! 1. Overlay creation: `qemu-img info --backing-chain` (the chain check) and `qemu-img
//!    create` of the job's overlay, over a 1 GiB and a 20 GiB sparse lower layer (raw, and
//!    qcow2), each timed `--overlay-rounds` times, through the driver's own functions.
//! 2. Jobs through a whole supervisor (`paddock_supervisor::run`, the `qemu` driver) in this
//!    process, fed by a scripted switchboard on a real WebSocket: `start_job` → QEMU's exec
//!    (the driver's `qemu` is a bash wrapper that writes `$EPOCHREALTIME` and execs QEMU, so
//!    the figure includes bash's start), and `start_job` → `ready` (the guest's puppet
//!    reporting over the virtio-serial port), one job at a time, `--jobs` jobs. The image is in
//!    a local store (no download: as with a cached image, it is verified by sha256 at each
//!    start); its disk is a qcow2 head over a qcow2 lower layer, so every job gets an overlay.
//!    The same with the driver alone (`QemuDriver::start` → exec, the image already verified),
//!    and the image verification alone.
//! 3. Memory: `--vms` supervisors in this process, each connected, idle, then each running a
//!    VM whose guest reported ready and stays up: this process's RSS (QEMU's own is separate
//!    and printed for reference), per running VM.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use paddock_core::protocol::{StartJob, SupervisorMessage, SwitchboardMessage};
use paddock_core::{ExecutionState, JobId, SupervisorId};
use paddock_imagestore::LocalStore;
use paddock_supervisor::config::{Accel, QemuDriverConfig};
use paddock_supervisor::connection::LinkSettings;
use paddock_supervisor::driver::qemu::QemuDriver;
use paddock_supervisor::driver::qemu::image::{
    ATTR_CMDLINE, ATTR_INITRD, ATTR_KERNEL, ATTR_LAYERED_HEAD, ATTR_LAYERED_LOWER, Layer,
    check_chain, create_overlay,
};
use paddock_supervisor::driver::{Host, HostDriver, HostJob};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use crate::scheduler::{percentile, rss_kib};

const CMDLINE: &str = "console=ttyS0 panic=-1 quiet";

#[derive(Debug, Args)]
pub struct Options {
    /// The test guest's kernel. `cargo test -p paddock-supervisor --test qemu` builds and
    /// caches it here (relative to the workspace root).
    #[arg(long, default_value = "target/tmp/qemu-guest-v4/vmlinuz")]
    kernel: PathBuf,
    /// The test guest's initramfs (left by the same test run).
    #[arg(long, default_value = "target/tmp/qemu-initrd.gz")]
    initrd: PathBuf,
    /// Jobs run one after the other for the start and boot figures.
    #[arg(long, default_value_t = 20)]
    jobs: usize,
    /// VMs running at once for the memory figure.
    #[arg(long, default_value_t = 4)]
    vms: usize,
    /// Rounds of each overlay measurement.
    #[arg(long, default_value_t = 20)]
    overlay_rounds: usize,
    /// The QEMU system emulator.
    #[arg(long, default_value = "qemu-system-x86_64")]
    qemu: String,
    /// `tcg`, `kvm` or `auto` (the driver's probe).
    #[arg(long, default_value = "tcg")]
    accel: String,
    /// Guest memory (MiB).
    #[arg(long, default_value_t = 256)]
    memory_mib: u64,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    for p in [&opts.kernel, &opts.initrd] {
        if !p.is_file() {
            bail!(
                "{} is missing: run `cargo test -p paddock-supervisor --test qemu` once (it \
                 builds the test guest into target/tmp), or give --kernel and --initrd",
                p.display()
            );
        }
    }
    let accel = match opts.accel.as_str() {
        "tcg" => Accel::Tcg,
        "kvm" => Accel::Kvm,
        "auto" => Accel::Auto,
        other => bail!("--accel {other}: tcg, kvm or auto"),
    };
    let dir = tempfile::tempdir()?;
    println!(
        "machine: {} CPUs, accel {}, guest memory {} MiB",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        opts.accel,
        opts.memory_mib
    );

    overlays(&opts, dir.path()).await?;

    // The wrapper QEMU: stamps its exec, then execs the real one.
    let stamps = dir.path().join("exec-stamps");
    let wrapper = dir.path().join("qemu-wrapper");
    write_exec(
        &wrapper,
        &format!(
            "#!/bin/bash\necho \"$EPOCHREALTIME\" >> {}\nexec {} \"$@\"\n",
            shell_quote(&stamps),
            shell_quote(Path::new(&opts.qemu)),
        ),
    )?;
    let config = QemuDriverConfig {
        qemu: wrapper.display().to_string(),
        accel,
        memory_mib: opts.memory_mib,
        stop_grace_s: 1,
        boot_timeout_s: 300,
        ..QemuDriverConfig::default()
    };
    let store_dir = dir.path().join("store");
    let ready_image = image(&opts, &store_dir, dir.path(), "puppet-ready")?;
    let stay_image = image(&opts, &store_dir, dir.path(), "puppet-stay")?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut supervisors = Vec::new();
    let mut spawn_supervisor = |i: usize, driver: QemuDriver| {
        let settings = paddock_supervisor::Settings {
            link: LinkSettings {
                switchboard_url: format!("http://{addr}"),
                token: "pds_bench".into(),
                supervisor_id: None,
                reconnect_min: Duration::from_millis(100),
                reconnect_max: Duration::from_secs(2),
                console_budget: paddock_supervisor::connection::CONSOLE_BUDGET,
            },
            stores: vec![store_dir.clone()],
            urls: Vec::new(),
            cache_dir: dir.path().join(format!("cache{i}")),
            cache_max_bytes: 1 << 30,
        };
        supervisors.push(tokio::spawn(paddock_supervisor::run(
            settings,
            driver,
            stop_rx.clone(),
            None,
        )));
    };

    // 2. One supervisor, one job at a time.
    let driver = QemuDriver::new(config.clone(), &dir.path().join("s0")).await?;
    spawn_supervisor(0, driver);
    let mut peer = Peer::accept(&listener).await?;
    let mut to_exec = Vec::new();
    let mut to_ready = Vec::new();
    let mut exec_to_ready = Vec::new();
    for _ in 0..opts.jobs {
        let seen = stamp_count(&stamps);
        let job = JobId::new();
        let sent = SystemTime::now();
        peer.start(job, &ready_image).await?;
        let ready = peer.until(job, ExecutionState::Ready).await?;
        peer.until(job, ExecutionState::Terminated).await?;
        let exec = new_stamp(&stamps, seen)?;
        let sent_s = epoch_s(sent);
        to_exec.push((exec - sent_s) * 1000.0);
        to_ready.push((epoch_s(ready) - sent_s) * 1000.0);
        exec_to_ready.push((epoch_s(ready) - exec) * 1000.0);
    }
    print_ms("start_job → QEMU exec (whole supervisor)", &mut to_exec);
    print_ms("start_job → ready (boot under the accel)", &mut to_ready);
    print_ms("QEMU exec → ready", &mut exec_to_ready);

    // The same image verified alone (what `job.rs` does before the driver), and the driver
    // alone: `start` → exec, the image already verified.
    let store = LocalStore::new(&store_dir);
    let id: paddock_core::ImageId = ready_image.parse()?;
    let mut verify = Vec::new();
    for _ in 0..opts.jobs {
        let t = Instant::now();
        store.verified_image(&id)?;
        verify.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    print_ms(
        "image verification alone (sha256 of every blob)",
        &mut verify,
    );
    let driver = QemuDriver::new(config.clone(), &dir.path().join("direct")).await?;
    let mut driver_exec = Vec::new();
    for _ in 0..opts.jobs.min(10) {
        let seen = stamp_count(&stamps);
        let (tx, mut rx) = mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let job = HostJob {
            job_id: JobId::new(),
            supervisor_id: None,
            image: store.verified_image(&id)?,
            parameters: Default::default(),
            ssh_keys: vec![],
        };
        let t = epoch_s(SystemTime::now());
        let mut host = driver.start(job, tx).await?;
        driver_exec.push((new_stamp(&stamps, seen)? - t) * 1000.0);
        host.stop().await?;
    }
    print_ms(
        "driver start → QEMU exec (image verified)",
        &mut driver_exec,
    );

    // 3. Memory per running VM.
    let mut peers = Vec::new();
    for i in 0..opts.vms {
        let driver = QemuDriver::new(config.clone(), &dir.path().join(format!("m{i}"))).await?;
        spawn_supervisor(i + 1, driver);
        peers.push(Peer::accept(&listener).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let me = std::process::id();
    let (idle, _) = rss_kib(me)?;
    let mut jobs = Vec::new();
    for p in &mut peers {
        let job = JobId::new();
        p.start(job, &stay_image).await?;
        jobs.push(job);
    }
    for (p, job) in peers.iter_mut().zip(&jobs) {
        p.until(*job, ExecutionState::Ready).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (running, _) = rss_kib(me)?;
    let qemu_kib: u64 = (0..opts.vms)
        .flat_map(|i| qemu_pids(&dir.path().join(format!("m{i}"))))
        .map(|pid| rss_kib(pid).map(|r| r.0).unwrap_or(0))
        .sum();
    for (p, job) in peers.iter_mut().zip(&jobs) {
        p.send(SwitchboardMessage::StopJob {
            job_id: *job,
            reason: "bench".into(),
        })
        .await?;
    }
    for (p, job) in peers.iter_mut().zip(&jobs) {
        p.until(*job, ExecutionState::Terminated).await?;
    }
    let (after, _) = rss_kib(me)?;
    println!(
        "memory: {} supervisors in this process: idle {idle} KiB, {} VMs running {running} KiB \
         → {:.0} KiB per running VM (after they ended: {after} KiB); QEMU's own RSS {:.0} MiB \
         per VM (not counted)",
        opts.vms + 1,
        opts.vms,
        (running as f64 - idle as f64) / opts.vms as f64,
        qemu_kib as f64 / 1024.0 / opts.vms.max(1) as f64,
    );

    stop_tx.send_replace(true);
    drop(peers);
    drop(peer);
    for s in supervisors {
        let _ = tokio::time::timeout(Duration::from_secs(20), s).await;
    }
    Ok(())
}

/// 1. The chain check and the overlay over sparse lower layers.
async fn overlays(opts: &Options, dir: &Path) -> anyhow::Result<()> {
    for (name, size) in [("1 GiB", 1u64 << 30), ("20 GiB", 20u64 << 30)] {
        for format in ["raw", "qcow2"] {
            let lower = dir.join(format!("lower-{size}.{format}"));
            if format == "raw" {
                std::fs::File::create(&lower)?.set_len(size)?;
            } else {
                let out = std::process::Command::new("qemu-img")
                    .args(["create", "-q", "-f", "qcow2"])
                    .arg(&lower)
                    .arg(size.to_string())
                    .output()
                    .context("qemu-img")?;
                if !out.status.success() {
                    bail!("qemu-img create: {}", String::from_utf8_lossy(&out.stderr));
                }
            }
            let layers = [Layer {
                blob: "layer-0".into(),
                path: lower.clone(),
            }];
            let mut check = Vec::new();
            let mut create = Vec::new();
            for i in 0..opts.overlay_rounds {
                let t = Instant::now();
                let (checked, vsize) = check_chain("qemu-img", &layers)
                    .await
                    .map_err(anyhow::Error::msg)?;
                check.push(t.elapsed().as_secs_f64() * 1000.0);
                let overlay = dir.join(format!("overlay-{i}.qcow2"));
                let t = Instant::now();
                create_overlay("qemu-img", &checked[0], vsize, &overlay)
                    .await
                    .map_err(anyhow::Error::msg)?;
                create.push(t.elapsed().as_secs_f64() * 1000.0);
                std::fs::remove_file(&overlay)?;
            }
            print_ms(
                &format!("{name} sparse {format} lower: chain check (qemu-img info)"),
                &mut check,
            );
            print_ms(
                &format!("{name} sparse {format} lower: overlay (qemu-img create)"),
                &mut create,
            );
            std::fs::remove_file(&lower)?;
        }
    }
    Ok(())
}

/// The test guest as a direct-boot image with a two-layer qcow2 disk; its id.
fn image(opts: &Options, store: &Path, dir: &Path, mode: &str) -> anyhow::Result<String> {
    let s = LocalStore::new(store);
    let lower = dir.join("bench-lower.qcow2");
    let head = dir.join("bench-head.qcow2");
    if !head.exists() {
        qemu_img(&["create", "-q", "-f", "qcow2"], &lower, "64M")?;
        let (ld, _) = s.put_blob_file(&lower)?;
        let h = ld.to_string();
        let rel = format!("../../../{}/{}/{}/{h}", &h[0..2], &h[2..4], &h[4..6]);
        qemu_img(
            &[
                "create", "-q", "-f", "qcow2", "-u", "-F", "qcow2", "-b", &rel,
            ],
            &head,
            "64M",
        )?;
    }
    let cmdline = format!("{CMDLINE} paddock.test={mode}");
    let mut m = format!(
        "manifest_version = 0\nmanifest_extensions = [\"org.tockos.treadmill.manifest-ext.base\"]\n\
         \"org.tockos.treadmill.manifest-ext.base.label\" = \"bench-{mode}\"\n\
         \"org.tockos.treadmill.manifest-ext.base.revision\" = 1\n\
         \"org.tockos.treadmill.manifest-ext.base.description\" = \"paddock-bench qemu\"\n\n\
         [\"org.tockos.treadmill.manifest-ext.base.attrs\"]\n\
         {ATTR_KERNEL:?} = \"kernel\"\n{ATTR_INITRD:?} = \"initrd\"\n{ATTR_CMDLINE:?} = {cmdline:?}\n\
         {ATTR_LAYERED_HEAD:?} = \"layer-1\"\n"
    );
    let blobs: [(&str, &Path, Option<&str>); 4] = [
        ("kernel", &opts.kernel, None),
        ("initrd", &opts.initrd, None),
        ("layer-0", &lower, None),
        ("layer-1", &head, Some("layer-0")),
    ];
    for (name, path, lower) in blobs {
        let (d, size) = s.put_blob_file(path)?;
        m.push_str(&format!(
            "\n[\"org.tockos.treadmill.manifest-ext.base.blobs\".{name}]\n\
             \"org.tockos.treadmill.manifest-ext.base.sha256-digest\" = \"{d}\"\n\
             \"org.tockos.treadmill.manifest-ext.base.size\" = {size}\n\
             [\"org.tockos.treadmill.manifest-ext.base.blobs\".{name}.\"org.tockos.treadmill.manifest-ext.base.attrs\"]\n"
        ));
        if let Some(l) = lower {
            m.push_str(&format!("{ATTR_LAYERED_LOWER:?} = {l:?}\n"));
        }
    }
    Ok(s.put_manifest(m.as_bytes())?.to_string())
}

fn qemu_img(args: &[&str], file: &Path, size: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .arg(file)
        .arg(size)
        .output()
        .context("qemu-img")?;
    if !out.status.success() {
        bail!(
            "qemu-img {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A scripted switchboard: one supervisor's WebSocket.
struct Peer {
    tx: SplitSink<WebSocketStream<TcpStream>, Message>,
    states: mpsc::UnboundedReceiver<(SystemTime, JobId, ExecutionState)>,
}

impl Peer {
    // The handshake callback's error type is tungstenite's (an HTTP response).
    #[allow(clippy::result_large_err)]
    async fn accept(listener: &TcpListener) -> anyhow::Result<Peer> {
        let (tcp, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
            .await
            .context("no supervisor connected")??;
        tcp.set_nodelay(true)?;
        let callback = |_: &Request, mut resp: Response| {
            resp.headers_mut().insert(
                "sec-websocket-protocol",
                tokio_tungstenite::tungstenite::http::HeaderValue::from_static("paddock.v1"),
            );
            Ok(resp)
        };
        let ws = tokio_tungstenite::accept_hdr_async(tcp, callback).await?;
        let (tx, mut rx) = ws.split();
        let (states_tx, states) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = rx.next().await {
                let Message::Text(t) = frame else { continue };
                if let Ok(SupervisorMessage::JobState {
                    job_id,
                    execution_state: Some(state),
                    ..
                }) = serde_json::from_str::<SupervisorMessage>(t.as_str())
                {
                    let _ = states_tx.send((SystemTime::now(), job_id, state));
                }
            }
        });
        let mut peer = Peer { tx, states };
        peer.send(SwitchboardMessage::Welcome {
            supervisor_id: SupervisorId::new(),
            heartbeat_interval_s: 3600,
        })
        .await?;
        Ok(peer)
    }

    async fn send(&mut self, m: SwitchboardMessage) -> anyhow::Result<()> {
        self.tx
            .send(Message::Text(serde_json::to_string(&m)?.into()))
            .await?;
        Ok(())
    }

    async fn start(&mut self, job: JobId, image: &str) -> anyhow::Result<()> {
        self.send(SwitchboardMessage::StartJob(StartJob {
            job_id: job,
            image_id: image.parse()?,
            parameters: Default::default(),
            ssh_keys: vec![],
            timeout_s: 3600,
        }))
        .await
    }

    /// Waits for the job to report `state`; when it was received.
    async fn until(&mut self, job: JobId, state: ExecutionState) -> anyhow::Result<SystemTime> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        loop {
            let Ok(Some((at, j, s))) = tokio::time::timeout_at(deadline, self.states.recv()).await
            else {
                bail!("job {job} did not reach {state:?}");
            };
            if j != job {
                continue;
            }
            if s == state {
                return Ok(at);
            }
            if s == ExecutionState::Terminated {
                bail!("job {job} terminated before {state:?}");
            }
        }
    }
}

fn stamp_count(stamps: &Path) -> usize {
    std::fs::read_to_string(stamps).map_or(0, |s| s.lines().count())
}

/// The exec stamp written after the first `seen` ones.
fn new_stamp(stamps: &Path, seen: usize) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(stamps).context("the wrapper's stamps")?;
    let line = text
        .lines()
        .nth(seen)
        .context("QEMU's wrapper wrote no stamp")?;
    line.trim()
        .parse()
        .with_context(|| format!("stamp {line:?}"))
}

fn epoch_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn print_ms(what: &str, v: &mut [f64]) {
    v.sort_by(f64::total_cmp);
    println!(
        "{what}: n={} p50 {:.1} ms, p99 {:.1} ms, min {:.1}, max {:.1}",
        v.len(),
        percentile(v, 0.5),
        percentile(v, 0.99),
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    );
}

/// QEMUs whose command line names a path under `work`.
fn qemu_pids(work: &Path) -> Vec<u32> {
    let mut needle = work.as_os_str().as_encoded_bytes().to_vec();
    needle.push(b'/');
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            cmdline
                .windows(needle.len())
                .any(|w| w == needle.as_slice())
                .then_some(pid)
        })
        .filter(|pid| *pid != std::process::id())
        .collect()
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

fn write_exec(p: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}
