//! The QEMU driver with real QEMU under TCG and a real Debian kernel (see `support/guest.rs`).
//! Each VM test boots the small test guest in a few seconds; they run in parallel.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    clippy::result_large_err
)]

mod support {
    pub mod guest;
}

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use paddock_core::JobId;
use paddock_core::manifest::sha256_id;
use paddock_core::puppet::PuppetRequest;
use paddock_imagestore::{LocalStore, VerifiedImage};
use paddock_supervisor::config::{Accel, QemuDriverConfig};
use paddock_supervisor::driver::qemu::image::{
    ATTR_CMDLINE, ATTR_INITRD, ATTR_KERNEL, ATTR_LAYERED_HEAD, ATTR_LAYERED_LOWER,
};
use paddock_supervisor::driver::qemu::{QemuDriver, accel};
use paddock_supervisor::driver::{Host, HostDriver, HostError, HostEvent, HostJob};
use support::guest::{self, CMDLINE, Guest, MARKER, READY_MARKER};
use tokio::sync::mpsc;

type Blob<'a> = (&'a str, &'a Path, &'a [(&'a str, &'a str)]);

/// Puts the blobs and a manifest with `attrs` into the store; the verified image.
fn image(store: &Path, label: &str, attrs: &[(&str, &str)], blobs: &[Blob]) -> VerifiedImage {
    let s = LocalStore::new(store);
    let mut m = format!(
        "manifest_version = 0\nmanifest_extensions = [\"org.tockos.treadmill.manifest-ext.base\"]\n\
         \"org.tockos.treadmill.manifest-ext.base.label\" = \"{label}\"\n\
         \"org.tockos.treadmill.manifest-ext.base.revision\" = 1\n\
         \"org.tockos.treadmill.manifest-ext.base.description\" = \"qemu test\"\n\n\
         [\"org.tockos.treadmill.manifest-ext.base.attrs\"]\n"
    );
    for (k, v) in attrs {
        m.push_str(&format!("{k:?} = {v:?}\n"));
    }
    for (name, path, battrs) in blobs {
        let (d, size) = s.put_blob_file(path).unwrap();
        m.push_str(&format!(
            "\n[\"org.tockos.treadmill.manifest-ext.base.blobs\".{name}]\n\
             \"org.tockos.treadmill.manifest-ext.base.sha256-digest\" = \"{d}\"\n\
             \"org.tockos.treadmill.manifest-ext.base.size\" = {size}\n\
             [\"org.tockos.treadmill.manifest-ext.base.blobs\".{name}.\"org.tockos.treadmill.manifest-ext.base.attrs\"]\n"
        ));
        for (k, v) in *battrs {
            m.push_str(&format!("{k:?} = {v:?}\n"));
        }
    }
    let id = s.put_manifest(m.as_bytes()).unwrap();
    s.verified_image(&id).unwrap()
}

fn config() -> QemuDriverConfig {
    QemuDriverConfig {
        accel: Accel::Tcg,
        memory_mib: 256,
        stop_grace_s: 2,
        boot_timeout_s: 60,
        ..QemuDriverConfig::default()
    }
}

fn job(image: VerifiedImage) -> HostJob {
    HostJob {
        job_id: JobId::new(),
        supervisor_id: None,
        image,
        parameters: BTreeMap::new(),
        ssh_keys: vec![],
    }
}

fn direct_attrs(cmdline: &str) -> Vec<(&str, &str)> {
    vec![
        (ATTR_KERNEL, "kernel"),
        (ATTR_INITRD, "initrd"),
        (ATTR_CMDLINE, cmdline),
    ]
}

fn direct_blobs(g: &Guest) -> Vec<Blob<'_>> {
    vec![("kernel", &g.kernel, &[]), ("initrd", &g.initrd, &[])]
}

/// Collects events until the host ends (or `limit` passes); the console text and the end.
async fn until_end(
    rx: &mut mpsc::Receiver<HostEvent>,
    limit: Duration,
) -> (String, Option<HostEvent>, bool) {
    let mut console = String::new();
    let mut ready = false;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(HostEvent::Console { data, .. })) => console.push_str(&data),
            Ok(Some(HostEvent::Ready | HostEvent::Puppet(PuppetRequest::Ready))) => ready = true,
            Ok(Some(e @ (HostEvent::PoweredOff { .. } | HostEvent::Exited { .. }))) => {
                return (console, Some(e), ready);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return (console, None, ready),
        }
    }
}

fn alive(pid: i32) -> bool {
    paddock_supervisor::driver::process_group::process_running(pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_boot_streams_the_console_and_a_guest_power_off_ends_the_host() {
    let Some(g) = guest::guest("direct_boot") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = image(
        &dir.path().join("store"),
        "direct",
        &direct_attrs(&format!("{CMDLINE} paddock.test=puppet-ready")),
        &direct_blobs(&g),
    );
    let driver = QemuDriver::new(config(), &dir.path().join("work"))
        .await
        .unwrap();
    let job = job(img);
    let id = job.job_id;
    let (tx, mut rx) = mpsc::channel(64);
    let t = Instant::now();
    let mut host = driver.start(job, tx).await.unwrap();
    let pid = host.pid();
    let (console, end, ready) = until_end(&mut rx, Duration::from_secs(90)).await;
    eprintln!("guest booted and powered off in {:?}", t.elapsed());
    // The guest's paddock-puppet reported over the virtio-serial port, and got its answer.
    assert!(ready, "the puppet's ready came first; console: {console}");
    assert!(console.contains(MARKER), "console: {console}");
    assert!(console.contains(READY_MARKER), "console: {console}");
    assert!(
        matches!(end, Some(HostEvent::PoweredOff { .. })),
        "{end:?}; console: {console}"
    );
    assert!(!host.is_running());
    host.stop().await.unwrap();
    assert!(!alive(pid));
    assert!(!driver.job_dir(&id).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layered_image_with_relative_backing_names_runs_over_its_own_overlay() {
    let Some(g) = guest::guest("layered") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // The lower layer in the store first, then the head naming it relative to the head's own
    // place in the book's layout (blobs/aa/bb/cc/<sha256>).
    let lower = dir.path().join("lower.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", path(&lower), "64M"]);
    let (ld, _) = LocalStore::new(&store).put_blob_file(&lower).unwrap();
    let h = ld.to_string();
    let rel = format!("../../../{}/{}/{}/{h}", &h[0..2], &h[2..4], &h[4..6]);
    let head = dir.path().join("head.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-u",
        "-F",
        "qcow2",
        "-b",
        &rel,
        path(&head),
        "64M",
    ]);
    let mut attrs = direct_attrs(CMDLINE);
    attrs.push((ATTR_LAYERED_HEAD, "layer-1"));
    let mut blobs = direct_blobs(&g);
    blobs.push(("layer-0", &lower, &[]));
    blobs.push(("layer-1", &head, &[(ATTR_LAYERED_LOWER, "layer-0")]));
    let img = image(&store, "layered", &attrs, &blobs);
    let id = img.id.clone();
    let driver = QemuDriver::new(config(), &dir.path().join("work"))
        .await
        .unwrap();
    let job = job(img);
    let jid = job.job_id;
    let (tx, mut rx) = mpsc::channel(64);
    let mut host = driver.start(job, tx).await.unwrap();
    let overlay = driver.job_dir(&jid).join("overlay.qcow2");
    let info = qemu_img(&["info", "-U", "--output=json", path(&overlay)]);
    assert!(
        info.contains("\"backing-filename-format\": \"qcow2\""),
        "{info}"
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", host.pid())).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("\"read-only\":true"),
        "the layers are opened read-only"
    );
    let (console, end, _) = until_end(&mut rx, Duration::from_secs(90)).await;
    assert!(console.contains(MARKER), "console: {console}");
    assert!(matches!(end, Some(HostEvent::PoweredOff { .. })), "{end:?}");
    host.stop().await.unwrap();
    assert!(
        !overlay.exists(),
        "the overlay is removed when the job ends"
    );
    assert!(!driver.job_dir(&jid).exists());
    // The layers are unchanged.
    LocalStore::new(&store).verified_image(&id).unwrap();
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn qemu_img(args: &[&str]) -> String {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_the_driver_cannot_run_is_refused_leaving_nothing() {
    let Some(g) = guest::guest("bad_manifest") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let lower = dir.path().join("lower.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", path(&lower), "16M"]);
    // A head whose backing name leads nowhere.
    let dangling = dir.path().join("dangling.qcow2");
    let nowhere = format!("../../../00/00/00/{}", sha256_id(b"nothing"));
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-u",
        "-F",
        "qcow2",
        "-b",
        &nowhere,
        path(&dangling),
        "16M",
    ]);
    // A head backed by a file of the machine rather than by its lower layer.
    let foreign = dir.path().join("foreign.qcow2");
    let other = dir.path().join("other.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", path(&other), "16M"]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        path(&other),
        path(&foreign),
        "16M",
    ]);
    let lower_attr: &[(&str, &str)] = &[(ATTR_LAYERED_LOWER, "layer-0")];
    let cases: Vec<(&str, VerifiedImage, &str)> = vec![
        (
            "not a qemu image",
            image(&store, "plain", &[], &[("workload", &g.initrd, &[])]),
            "not a QEMU image",
        ),
        (
            "head names a missing blob",
            image(
                &store,
                "missing",
                &[(ATTR_LAYERED_HEAD, "layer-9")],
                &[("layer-0", &lower, &[])],
            ),
            "layer-9",
        ),
        (
            "broken chain",
            image(
                &store,
                "dangling",
                &[(ATTR_LAYERED_HEAD, "layer-1")],
                &[("layer-0", &lower, &[]), ("layer-1", &dangling, lower_attr)],
            ),
            "backing chain",
        ),
        (
            "chain through a foreign file",
            image(
                &store,
                "foreign",
                &[(ATTR_LAYERED_HEAD, "layer-1")],
                &[("layer-0", &lower, &[]), ("layer-1", &foreign, lower_attr)],
            ),
            "not blob \"layer-0\"",
        ),
        (
            "manifest names a lower layer the head lacks",
            image(
                &store,
                "short",
                &[(ATTR_LAYERED_HEAD, "layer-1")],
                &[("layer-0", &lower, &[]), ("layer-1", &other, lower_attr)],
            ),
            "1 layer(s), the manifest names 2",
        ),
    ];
    let driver = QemuDriver::new(config(), &dir.path().join("work"))
        .await
        .unwrap();
    for (what, img, expect) in cases {
        let job = job(img);
        let jid = job.job_id;
        let (tx, _rx) = mpsc::channel(64);
        let e = match driver.start(job, tx).await {
            Ok(_) => panic!("{what}: started"),
            Err(e) => e,
        };
        assert!(matches!(e, HostError::Image(_)), "{what}: {e:?}");
        assert!(e.to_string().contains(expect), "{what}: {e}");
        assert!(!driver.job_dir(&jid).exists(), "{what}: left its directory");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path().join("work/qemu"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_during_boot_powers_down_then_kills_within_the_grace() {
    let Some(g) = guest::guest("stop_during_boot") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cmdline = format!("{CMDLINE} paddock.test=sleep");
    let img = image(
        &dir.path().join("store"),
        "sleeper",
        &direct_attrs(&cmdline),
        &direct_blobs(&g),
    );
    let driver = QemuDriver::new(config(), &dir.path().join("work"))
        .await
        .unwrap();
    let job = job(img);
    let jid = job.job_id;
    let (tx, _rx) = mpsc::channel(1024);
    let mut host = driver.start(job, tx).await.unwrap();
    let pid = host.pid();
    assert!(alive(pid));
    let t = Instant::now();
    host.stop().await.unwrap();
    let took = t.elapsed();
    eprintln!("stop took {took:?}");
    // The booting guest ignores the power-down request: killed after the 2 s grace.
    assert!(took < Duration::from_secs(2 + 3), "{took:?}");
    assert!(!alive(pid), "QEMU {pid} is still there");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!driver.job_dir(&jid).exists());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_crashed_run_are_killed_and_removed() {
    let Some(g) = guest::guest("leftovers") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cmdline = format!("{CMDLINE} paddock.test=sleep");
    let img = image(
        &dir.path().join("store"),
        "sleeper",
        &direct_attrs(&cmdline),
        &direct_blobs(&g),
    );
    let work = dir.path().join("work");
    let first = QemuDriver::new(config(), &work).await.unwrap();
    let job = job(img);
    let jid = job.job_id;
    let (tx, _rx) = mpsc::channel(1024);
    let mut host = first.start(job, tx).await.unwrap();
    let pid = host.pid();
    // A new supervisor on the same work directory, as after a kill -9 of the first.
    let second = QemuDriver::new(config(), &work).await.unwrap();
    second.cleanup_leftovers().await;
    for _ in 0..100 {
        if !alive(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid), "QEMU {pid} survived the clean-up");
    assert!(!second.job_dir(&jid).exists());
    host.stop().await.unwrap();
}

#[tokio::test]
async fn the_kvm_probe_ends_within_its_bound() {
    if !guest::have("qemu-system-x86_64") {
        eprintln!("SKIPPED the_kvm_probe_ends_within_its_bound: no qemu-system-x86_64");
        return;
    }
    let t = Instant::now();
    let chosen = accel::choose(Accel::Auto, "qemu-system-x86_64", "q35").await;
    let took = t.elapsed();
    eprintln!("accel auto chose {} in {took:?}", chosen.as_str());
    assert!(matches!(chosen, Accel::Kvm | Accel::Tcg));
    assert!(
        took < accel::PROBE_TIMEOUT + Duration::from_secs(3),
        "{took:?}"
    );
    // A QEMU that does not exist falls back at once.
    let t = Instant::now();
    assert_eq!(
        accel::choose(Accel::Auto, "/nonexistent/qemu", "q35").await,
        Accel::Tcg
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}

type States = Vec<(
    Option<paddock_core::ExecutionState>,
    Option<paddock_core::ExitStatus>,
    Option<String>,
)>;

/// One job through the whole supervisor with the QEMU driver, against a scripted switchboard
/// peer on a real WebSocket: the job states reported, the console, and whether the job's
/// directory and QEMU processes are gone at the end. `None` when QEMU is absent (skipped).
async fn run_job(test: &str, cmdline: &str, boot_timeout_s: u64) -> Option<(States, String)> {
    run_job_with(
        test,
        cmdline,
        boot_timeout_s,
        Default::default(),
        vec![],
        |_| None,
    )
    .await
}

/// [`run_job`] with the job's parameters and SSH keys; `on_ready` runs when the job reports
/// `ready`, given the supervisor's work directory; what it returns is sent to the job as
/// console input (`console_input`).
async fn run_job_with(
    test: &str,
    cmdline: &str,
    boot_timeout_s: u64,
    parameters: BTreeMap<String, paddock_core::protocol::JobParameter>,
    ssh_keys: Vec<String>,
    mut on_ready: impl FnMut(&Path) -> Option<String>,
) -> Option<(States, String)> {
    use futures_util::{SinkExt, StreamExt};
    use paddock_core::protocol::{StartJob, SupervisorMessage, SwitchboardMessage};
    use paddock_core::{ExecutionState, SupervisorId};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    let g = guest::guest(test)?;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let img = image(&store, "direct", &direct_attrs(cmdline), &direct_blobs(&g));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sup_id = SupervisorId::new();
    let settings = paddock_supervisor::Settings {
        link: paddock_supervisor::connection::LinkSettings {
            switchboard_url: format!("http://{addr}"),
            token: "pds_test".into(),
            supervisor_id: Some(sup_id),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(200),
            console_budget: paddock_supervisor::connection::CONSOLE_BUDGET,
        },
        stores: vec![store.clone()],
        urls: Vec::new(),
        cache_dir: dir.path().join("cache"),
        cache_max_bytes: 1 << 30,
    };
    let work = dir.path().join("work");
    let driver = QemuDriver::new(
        QemuDriverConfig {
            boot_timeout_s,
            ..config()
        },
        &work,
    )
    .await
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let supervisor = tokio::spawn(paddock_supervisor::run(settings, driver, stop_rx, None));

    let (tcp, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let callback = |_: &Request, mut resp: Response| {
        resp.headers_mut()
            .insert("sec-websocket-protocol", "paddock.v1".parse().unwrap());
        Ok(resp)
    };
    let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
        .await
        .unwrap();
    let send = |m: SwitchboardMessage| Message::Text(serde_json::to_string(&m).unwrap().into());
    ws.send(send(SwitchboardMessage::Welcome {
        supervisor_id: sup_id,
        heartbeat_interval_s: 60,
    }))
    .await
    .unwrap();
    let job = JobId::new();
    ws.send(send(SwitchboardMessage::StartJob(StartJob {
        job_id: job,
        image_id: img.id.clone(),
        parameters,
        ssh_keys,
        timeout_s: 120,
    })))
    .await
    .unwrap();
    let mut states = Vec::new();
    let mut console = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the job did not end")
            .unwrap()
            .unwrap();
        let Message::Text(t) = frame else { continue };
        match serde_json::from_str::<SupervisorMessage>(t.as_str()).unwrap() {
            SupervisorMessage::JobState {
                execution_state,
                exit_status,
                message,
                ..
            } => {
                states.push((execution_state, exit_status, message));
                if execution_state == Some(ExecutionState::Ready)
                    && let Some(data) = on_ready(&work)
                {
                    ws.send(send(SwitchboardMessage::ConsoleInput {
                        job_id: job,
                        data: paddock_core::protocol::ConsoleInput(data),
                    }))
                    .await
                    .unwrap();
                }
                if execution_state == Some(ExecutionState::Terminated) {
                    break;
                }
            }
            SupervisorMessage::Console { data, .. } => console.push_str(&data),
            _ => {}
        }
    }
    // Nothing left: no job directory, no QEMU naming it.
    assert!(!work.join("qemu").join(job.to_string()).exists());
    assert_eq!(
        paddock_supervisor::driver::qemu::kill_processes_using(&work.join("qemu")),
        0,
        "a QEMU was left running"
    );
    stop_tx.send_replace(true);
    drop(ws);
    let _ = tokio::time::timeout(Duration::from_secs(30), supervisor).await;
    Some((states, console))
}

fn sequence(states: &States) -> Vec<Option<paddock_core::ExecutionState>> {
    states.iter().map(|s| s.0).collect()
}

/// The guest's puppet reports `ready` then `exit success` over the virtio-serial port, and
/// powers off: `ready` comes from the puppet, the outcome and its message are the puppet's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_puppet_reports_ready_and_success() {
    use paddock_core::{ExecutionState, ExitStatus};
    let cmdline = format!("{CMDLINE} paddock.test=puppet-success");
    let Some((states, console)) = run_job("puppet_success", &cmdline, 60).await else {
        return;
    };
    assert_eq!(
        sequence(&states),
        [
            Some(ExecutionState::Initializing),
            Some(ExecutionState::Ready),
            Some(ExecutionState::Terminating),
            Some(ExecutionState::Terminated)
        ],
        "{states:?}; console: {console}"
    );
    assert_eq!(states[2].1, Some(ExitStatus::WorkloadFinishedSuccess));
    assert_eq!(states[2].2.as_deref(), Some("all 3 tests passed"));
    assert!(console.contains(READY_MARKER), "{console}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_puppet_reports_an_error() {
    use paddock_core::ExitStatus;
    let cmdline = format!("{CMDLINE} paddock.test=puppet-error");
    let Some((states, console)) = run_job("puppet_error", &cmdline, 60).await else {
        return;
    };
    assert_eq!(
        states[2].1,
        Some(ExitStatus::WorkloadFinishedError),
        "{states:?}; console: {console}"
    );
    assert_eq!(states[2].2.as_deref(), Some("2 tests failed"));
}

/// A guest that never reports: `boot_timeout_s` ends it `supervisor_host_start_error`, QEMU
/// killed, nothing left (checked by `run_job`), never `ready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_whose_puppet_never_reports_ready_is_a_host_start_error() {
    use paddock_core::{ExecutionState, ExitStatus};
    let cmdline = format!("{CMDLINE} paddock.test=sleep");
    let t = Instant::now();
    let Some((states, console)) = run_job("never_ready", &cmdline, 4).await else {
        return;
    };
    assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());
    assert_eq!(
        sequence(&states),
        [
            Some(ExecutionState::Initializing),
            Some(ExecutionState::Terminating),
            Some(ExecutionState::Terminated)
        ],
        "{states:?}; console: {console}"
    );
    assert_eq!(states[1].1, Some(ExitStatus::SupervisorHostStartError));
    let msg = states[1].2.as_deref().unwrap_or("");
    assert!(
        msg.contains("did not report ready") && msg.contains("boot_timeout_s = 4"),
        "{msg}"
    );
}

/// A guest whose puppet reported `ready` and then powers off without a result:
/// `workload_finished_unknown`, its console reaching the switchboard first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_guest_powering_off_without_a_result_ends_the_job_workload_finished_unknown() {
    use paddock_core::{ExecutionState, ExitStatus};
    let cmdline = format!("{CMDLINE} paddock.test=puppet-ready");
    let Some((states, console)) = run_job("job_outcome", &cmdline, 60).await else {
        return;
    };
    let seq = sequence(&states);
    assert_eq!(
        seq,
        [
            Some(ExecutionState::Initializing),
            Some(ExecutionState::Ready),
            Some(ExecutionState::Terminating),
            Some(ExecutionState::Terminated)
        ],
        "{states:?}"
    );
    assert_eq!(
        states[2].1,
        Some(ExitStatus::WorkloadFinishedUnknown),
        "{states:?}"
    );
    assert!(
        states[2].2.as_deref().unwrap_or("").contains("powered off"),
        "{states:?}"
    );
    assert!(console.contains(MARKER), "{console}");
}

/// Console input end to end through the supervisor: a `console_input` message for the job
/// reaches the guest's serial port (QEMU's standard input, `-chardev stdio`), where the guest
/// reads a line and reports it as its outcome's message. The text is in no log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_input_reaches_the_guest_s_serial_port() {
    use paddock_core::{ExecutionState, ExitStatus};
    let logs = captured_logs();
    let typed = format!("typed-{}", JobId::new());
    let cmdline = format!("{CMDLINE} paddock.test=console-echo");
    let Some((states, console)) = run_job_with(
        "console_echo",
        &cmdline,
        60,
        Default::default(),
        vec![],
        |_| Some(format!("{typed}\n")),
    )
    .await
    else {
        return;
    };
    assert_eq!(
        sequence(&states),
        [
            Some(ExecutionState::Initializing),
            Some(ExecutionState::Ready),
            Some(ExecutionState::Terminating),
            Some(ExecutionState::Terminated)
        ],
        "{states:?}; console: {console}"
    );
    assert_eq!(
        states[2].1,
        Some(ExitStatus::WorkloadFinishedSuccess),
        "{states:?}; console: {console}"
    );
    assert_eq!(
        states[2].2.as_deref(),
        Some(format!("got: {typed}").as_str()),
        "console: {console}"
    );
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logs.contains("console input written"),
        "the logs were not captured"
    );
    // The guest's own report holds what it read (`got: …`), and its puppet request is logged
    // at debug: that line is the guest's word, not the input's path.
    let leaks: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(&typed) && !l.contains("puppet request"))
        .collect();
    assert!(
        leaks.is_empty(),
        "the console input reached a log: {leaks:#?}"
    );
}

/// Everything logged in this test binary (every level, every test, through the caps the
/// service binaries put on libraries that log message contents,
/// `paddock_core::logging::allowed`): for the check that no secret reaches a log.
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    use std::sync::{Mutex, OnceLock};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter::filter_fn, fmt};
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        struct W(&'static Mutex<Vec<u8>>);
        impl std::io::Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        tracing_subscriber::registry()
            .with(
                fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || W(logs))
                    .with_filter(filter_fn(paddock_core::logging::allowed)),
            )
            .try_init()
            .expect("no other subscriber in this test binary");
        logs
    })
}

/// The command lines and environments of the processes whose command line names `dir`.
fn processes_naming(dir: &Path) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    let needle = dir.as_os_str().as_encoded_bytes().to_vec();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline
            .windows(needle.len())
            .any(|w| w == needle.as_slice())
        {
            let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
            found.push((pid, cmdline, environ));
        }
    }
    found
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The guest puppet (`paddock-puppet guest`) fetches the job's data over the port and writes
/// /run/paddock: the guest finds the secret parameter at 0600 with the right digest and the
/// job's SSH key for its job user; the guest puppet reports ready once its readiness command
/// succeeds, and `paddock-puppet exit` inside the guest, through the guest puppet's relay,
/// ends the job with its outcome and message. The secret is nowhere else: not in QEMU's
/// command line or environment (read while the VM runs), not in any log of the supervisor
/// (every level captured), not on the console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_puppet_writes_the_jobs_data_and_relays_exit() {
    use paddock_core::protocol::JobParameter;
    use paddock_core::{ExecutionState, ExitStatus};
    let logs = captured_logs();
    let secret = format!("pdk-secret-{}", JobId::new());
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKey paddock-test".to_string();
    let param = |value: &str, secret| JobParameter {
        value: value.into(),
        secret,
    };
    let parameters = BTreeMap::from([
        ("token".to_string(), param(&secret, true)),
        (
            "token_sha256".to_string(),
            param(&sha256_id(secret.as_bytes()).to_string(), false),
        ),
        ("ssh_key".to_string(), param(&key, false)),
    ]);
    let cmdline = format!("{CMDLINE} paddock.test=guest-daemon");
    let mut seen_qemu = Vec::new();
    let Some((states, console)) = run_job_with(
        "guest_daemon",
        &cmdline,
        60,
        parameters,
        vec![key.clone()],
        |work| {
            seen_qemu = processes_naming(work);
            None
        },
    )
    .await
    else {
        return;
    };
    assert_eq!(
        sequence(&states),
        [
            Some(ExecutionState::Initializing),
            Some(ExecutionState::Ready),
            Some(ExecutionState::Terminating),
            Some(ExecutionState::Terminated)
        ],
        "{states:?}; console: {console}"
    );
    let message = states[2].2.clone().unwrap_or_default();
    assert_eq!(
        states[2].1,
        Some(ExitStatus::WorkloadFinishedSuccess),
        "the guest's checks: {message}; console: {console}"
    );
    // `job <id>:` with no failure after the colon; the id is the job's.
    let id = message
        .strip_prefix("job ")
        .and_then(|m| m.strip_suffix(':'))
        .unwrap_or_default();
    assert!(id.parse::<JobId>().is_ok(), "{message}");
    assert!(
        console.contains("PADDOCK-GUEST-CHECKED:\n")
            || console.contains("PADDOCK-GUEST-CHECKED:\r\n"),
        "{console}"
    );
    assert!(console.contains("reported ready"), "{console}");

    assert!(
        !seen_qemu.is_empty(),
        "QEMU was not found while the job ran"
    );
    for (pid, cmdline, environ) in &seen_qemu {
        assert!(
            !contains(cmdline, &secret),
            "the secret is in /proc/{pid}/cmdline"
        );
        assert!(
            !contains(environ, &secret),
            "the secret is in /proc/{pid}/environ"
        );
    }
    assert!(!console.contains(&secret), "the secret reached the console");
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logs.contains("sent the job's data to the guest"),
        "the logs were not captured"
    );
    let leaks: Vec<String> = logs
        .lines()
        .filter(|l| l.contains(&secret))
        .map(|l| l.replace(&secret, "<THE SECRET>"))
        .collect();
    assert!(leaks.is_empty(), "the secret reached a log: {leaks:#?}");
}

/// Fetching the job's data is not a report: a guest puppet whose readiness command never
/// succeeds still ends the job `supervisor_host_start_error` at `boot_timeout_s`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_puppet_that_fetched_its_data_but_never_got_ready_is_a_host_start_error() {
    use paddock_core::ExitStatus;
    let cmdline = format!("{CMDLINE} paddock.test=guest-never-ready");
    let Some((states, console)) = run_job("guest_never_ready", &cmdline, 20).await else {
        return;
    };
    assert!(
        console.contains("wrote 0 parameter(s)"),
        "the guest puppet fetched the data; console: {console}"
    );
    assert_eq!(
        states.iter().map(|s| s.1).find(|s| s.is_some()).flatten(),
        Some(ExitStatus::SupervisorHostStartError),
        "{states:?}; console: {console}"
    );
    assert!(
        !states
            .iter()
            .any(|s| s.0 == Some(paddock_core::ExecutionState::Ready)),
        "{states:?}"
    );
}

// Interactive access: the guest's sshd forwarded to a per-job port (`network = "user"`).

/// A fresh ed25519 key pair in `dir` (no passphrase): the private key's path and the public
/// key's line.
fn ssh_key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// Runs `ssh` with `key` to the endpoint, `command` in the guest; (success, stdout, stderr).
fn ssh_run(
    access: &paddock_core::protocol::AccessEndpoint,
    key: &Path,
    command: &str,
) -> (bool, String, String) {
    let out = std::process::Command::new("ssh")
        .args(["-F", "none", "-p", &access.port.to_string(), "-i"])
        .arg(key)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=20",
            "-l",
            &access.user,
            &access.host,
            command,
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guests_sshd_is_reachable_on_the_jobs_port_with_the_jobs_key() {
    let Some(g) = guest::guest("ssh") else {
        return;
    };
    if !guest::have("ssh") || !guest::have("ssh-keygen") {
        assert!(
            std::env::var_os("CI").is_none(),
            "ssh and ssh-keygen are needed in CI (openssh-client)"
        );
        eprintln!("SKIPPED ssh: openssh-client is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_key(dir.path(), "job-key");
    let (other, _) = ssh_key(dir.path(), "other-key");
    let img = image(
        &dir.path().join("store"),
        "ssh",
        &direct_attrs(&format!("{CMDLINE} paddock.test=ssh")),
        &direct_blobs(&g),
    );
    let config = QemuDriverConfig {
        ssh_user: "root".into(),
        boot_timeout_s: 120,
        ..config()
    };
    let range = paddock_supervisor::config::parse_port_range(&config.ssh_ports).unwrap();
    let driver = QemuDriver::new(config, &dir.path().join("work"))
        .await
        .unwrap();
    let mut job = job(img);
    job.ssh_keys = vec![public];
    let id = job.job_id;
    let (tx, mut rx) = mpsc::channel(64);
    let mut host = driver.start(job, tx).await.unwrap();
    let access = host.access().expect("user networking gives an endpoint");
    assert_eq!(
        (access.host.as_str(), access.user.as_str()),
        ("127.0.0.1", "root")
    );
    assert!(range.contains(&access.port), "{access:?}");
    // QEMU holds the port: it cannot be bound now.
    assert!(std::net::TcpListener::bind(("127.0.0.1", access.port)).is_err());

    // Ready once dropbear runs (the guest puppet's readiness command).
    let mut console = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(HostEvent::Console { data, .. })) => console.push_str(&data),
            Ok(Some(HostEvent::Ready | HostEvent::Puppet(PuppetRequest::Ready))) => break,
            Ok(Some(HostEvent::Puppet(_))) => {}
            other => panic!("{other:?} before ready; console: {console}"),
        }
    }
    // Keep reading the console meanwhile (the guest blocks on a full pipe otherwise).
    let console = std::sync::Arc::new(std::sync::Mutex::new(console));
    let reader = {
        let console = console.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if let HostEvent::Console { data, .. } = ev {
                    console.lock().unwrap().push_str(&data);
                }
            }
        })
    };
    let uname = {
        let c = console.lock().unwrap();
        c.lines()
            .find_map(|l| l.trim().strip_prefix(guest::UNAME_MARKER))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {} line; console: {c}", guest::UNAME_MARKER))
    };
    assert!(!uname.is_empty());

    // The job's key runs a command in the guest (dropbear may need a moment under TCG).
    let (a, k) = (access.clone(), key.clone());
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        loop {
            let r = ssh_run(&a, &k, "uname -r");
            if r.0 || t.elapsed() > Duration::from_secs(60) {
                return r;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .await
    .unwrap();
    assert!(
        ok,
        "ssh failed: {err}; console: {}",
        console.lock().unwrap()
    );
    assert_eq!(out.trim(), uname, "stderr: {err}");

    // Another key is refused.
    let a = access.clone();
    let (ok, _, err) = tokio::task::spawn_blocking(move || ssh_run(&a, &other, "true"))
        .await
        .unwrap();
    assert!(!ok, "a key not of the job logged in: {err}");

    host.stop().await.unwrap();
    reader.abort();
    assert!(!driver.job_dir(&id).exists());
    // The port is free again once the VM is gone.
    assert!(std::net::TcpListener::bind(("127.0.0.1", access.port)).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_without_a_free_ssh_port_fails_leaving_nothing() {
    let Some(g) = guest::guest("no_free_port") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = image(
        &dir.path().join("store"),
        "noport",
        &direct_attrs(&format!("{CMDLINE} paddock.test=sleep")),
        &direct_blobs(&g),
    );
    // The range's one port is taken by another process.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let busy = QemuDriverConfig {
        ssh_ports: format!("{port}-{port}"),
        ..config()
    };
    let driver = QemuDriver::new(busy, &dir.path().join("work"))
        .await
        .unwrap();
    let first = job(img);
    let id = first.job_id;
    let (tx, _rx) = mpsc::channel(64);
    let e = driver.start(first, tx).await.unwrap_err().to_string();
    assert!(e.contains("no free port in ssh_ports"), "{e}");
    assert!(!driver.job_dir(&id).exists());

    // Without networking, the same driver settings start a VM with no endpoint.
    let img = image(
        &dir.path().join("store"),
        "nonet",
        &direct_attrs(&format!("{CMDLINE} paddock.test=sleep")),
        &direct_blobs(&g),
    );
    let none = QemuDriverConfig {
        ssh_ports: format!("{port}-{port}"),
        network: paddock_supervisor::config::Network::None,
        ..config()
    };
    let driver = QemuDriver::new(none, &dir.path().join("work2"))
        .await
        .unwrap();
    let (tx, _rx) = mpsc::channel(64);
    let mut host = driver.start(job(img), tx).await.unwrap();
    assert!(host.access().is_none());
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", host.pid())).unwrap();
    assert!(
        !contains(&cmdline, "hostfwd"),
        "no network device without networking"
    );
    host.stop().await.unwrap();
}

/// A "QEMU" that fails the way QEMU does when its forwarded port was taken after the probe,
/// `failures` times, then runs the real one; it counts its runs in `dir/runs`.
fn qemu_losing_its_port(dir: &Path, failures: u32) -> String {
    let script = dir.join("qemu-losing-port");
    let runs = dir.join("runs");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nn=$(cat {runs:?} 2>/dev/null || echo 0)\necho $((n+1)) > {runs:?}\n\
             if [ \"$n\" -lt {failures} ]; then\n\
             echo \"qemu-system-x86_64: -netdev user,id=paddock-net,hostfwd=tcp:127.0.0.1:1-:22: \
             Could not set up host forwarding rule 'tcp:127.0.0.1:1-:22'\" >&2\nexit 1\nfi\n\
             exec qemu-system-x86_64 \"$@\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_between_the_probe_and_qemu_is_retried_with_another() {
    let Some(g) = guest::guest("port_retry") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let cmdline = format!("{CMDLINE} paddock.test=puppet-ready");
    // Twice taken, then QEMU gets its port: the job runs, on the third port tried.
    let twice = QemuDriverConfig {
        qemu: qemu_losing_its_port(dir.path(), 2),
        ..config()
    };
    let driver = QemuDriver::new(twice, &dir.path().join("work"))
        .await
        .unwrap();
    let img = image(&store, "retry", &direct_attrs(&cmdline), &direct_blobs(&g));
    let (tx, mut rx) = mpsc::channel(64);
    let mut host = driver.start(job(img), tx).await.unwrap();
    assert!(host.access().is_some());
    let (console, end, ready) = until_end(&mut rx, Duration::from_secs(90)).await;
    assert!(ready, "console: {console}");
    // The failed attempts' QEMUs are not the host's end: the guest's power-off is.
    assert!(
        matches!(end, Some(HostEvent::PoweredOff { .. })),
        "{end:?}; console: {console}"
    );
    host.stop().await.unwrap();
    let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
    assert_eq!(runs.trim(), "3");

    // Always taken: the start fails after PORT_ATTEMPTS tries, leaving nothing.
    let _ = std::fs::remove_file(dir.path().join("runs"));
    let always = QemuDriverConfig {
        qemu: qemu_losing_its_port(dir.path(), 1000),
        ..config()
    };
    let driver = QemuDriver::new(always, &dir.path().join("work2"))
        .await
        .unwrap();
    let img = image(&store, "retry", &direct_attrs(&cmdline), &direct_blobs(&g));
    let j = job(img);
    let id = j.job_id;
    let (tx, _rx) = mpsc::channel(64);
    let e = driver.start(j, tx).await.unwrap_err().to_string();
    assert!(
        e.contains("could not bind an SSH port in 5 attempts")
            && e.contains("Could not set up host forwarding rule"),
        "{e}"
    );
    let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
    assert_eq!(
        runs.trim(),
        paddock_supervisor::driver::qemu::PORT_ATTEMPTS.to_string()
    );
    assert!(!driver.job_dir(&id).exists());
}
