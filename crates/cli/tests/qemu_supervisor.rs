//! End to end with real processes and real QEMU (TCG): `paddock-switchboard serve` and
//! `paddock-supervisor run` with `driver.kind = "qemu"`, the test guest of the supervisor's
//! QEMU tests (`crates/supervisor/tests/support/guest.rs`: Debian's cloud kernel and a busybox
//! initramfs with this build's `paddock-puppet`, built at test time) booted from a layered
//! image (`qemu_layered_v0`: a head qcow2 over a lower one, so every job has an overlay).
//!
//! Without `qemu-system-x86_64` the tests print SKIPPED and pass, unless `CI` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../supervisor/tests/support/guest.rs"]
mod guest;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use guest::{CMDLINE, Guest};
use paddock_supervisor::driver::qemu::image::{
    ATTR_CMDLINE, ATTR_INITRD, ATTR_KERNEL, ATTR_LAYERED_HEAD, ATTR_LAYERED_LOWER,
};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Lab, LabOptions, alive, gone, read_pid};

/// The driver's grace between the ACPI power-down request and SIGKILL.
const STOP_GRACE_S: u64 = 5;

fn qemu_lab_options() -> LabOptions {
    LabOptions {
        driver_toml: format!(
            "kind = \"qemu\"\naccel = \"tcg\"\nmemory_mib = 256\nstop_grace_s = {STOP_GRACE_S}\nboot_timeout_s = 120\n"
        ),
        ..LabOptions::default()
    }
}

fn qemu_img(args: &[&str]) {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Puts a direct-boot image of the test guest (`paddock.test=<mode>` on its command line)
/// with a two-layer disk into the lab's store; its id.
fn vm_image(lab: &Lab, label: &str, mode: &str, g: &Guest) -> String {
    let s = &lab.store;
    let tmp = lab.path().join(format!("{label}-layers"));
    std::fs::create_dir_all(&tmp).unwrap();
    let lower = tmp.join("lower.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        lower.to_str().unwrap(),
        "64M",
    ]);
    let (ld, _) = s.put_blob_file(&lower).unwrap();
    let h = ld.to_string();
    // Relative to the head's own place in the book's layout (blobs/aa/bb/cc/<sha256>).
    let rel = format!("../../../{}/{}/{}/{h}", &h[0..2], &h[2..4], &h[4..6]);
    let head = tmp.join("head.qcow2");
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
        head.to_str().unwrap(),
        "64M",
    ]);
    let cmdline = format!("{CMDLINE} paddock.test={mode}");
    let mut m = format!(
        "manifest_version = 0\nmanifest_extensions = [\"org.tockos.treadmill.manifest-ext.base\"]\n\
         \"org.tockos.treadmill.manifest-ext.base.label\" = \"{label}\"\n\
         \"org.tockos.treadmill.manifest-ext.base.revision\" = 1\n\
         \"org.tockos.treadmill.manifest-ext.base.description\" = \"qemu test\"\n\n\
         [\"org.tockos.treadmill.manifest-ext.base.attrs\"]\n\
         {ATTR_KERNEL:?} = \"kernel\"\n{ATTR_INITRD:?} = \"initrd\"\n{ATTR_CMDLINE:?} = {cmdline:?}\n\
         {ATTR_LAYERED_HEAD:?} = \"layer-1\"\n"
    );
    let blobs: [(&str, &Path, Option<&str>); 4] = [
        ("kernel", &g.kernel, None),
        ("initrd", &g.initrd, None),
        ("layer-0", &lower, None),
        ("layer-1", &head, Some("layer-0")),
    ];
    for (name, path, lower) in blobs {
        let (d, size) = s.put_blob_file(path).unwrap();
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
    s.put_manifest(m.as_bytes()).unwrap().to_string()
}

/// The processes (pids) whose command line names a path under `work`: the supervisor's QEMUs.
fn processes_naming(work: &Path) -> Vec<i32> {
    let mut needle = work.as_os_str().as_encoded_bytes().to_vec();
    needle.push(b'/');
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if alive(pid)
            && cmdline
                .windows(needle.len())
                .any(|w| w == needle.as_slice())
        {
            found.push(pid);
        }
    }
    found
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Kills (SIGKILL) what still names these work directories when a test ends, failed or not:
/// a QEMU outlives the supervisor that started it.
struct KillLeftovers(Vec<PathBuf>);

impl Drop for KillLeftovers {
    fn drop(&mut self) {
        for w in &self.0 {
            for pid in processes_naming(w) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

async fn events(lab: &Lab, id: &str) -> Vec<Value> {
    let (_, v) = lab
        .call(Method::GET, &format!("/jobs/{id}/events"), Value::Null)
        .await;
    v["events"].as_array().cloned().unwrap_or_default()
}

fn at_ms(event: &Value) -> i64 {
    let at = event["at"].as_str().unwrap();
    humantime_ms(at)
}

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp (`2026-11-27T20:01:02.345Z`).
fn humantime_ms(at: &str) -> i64 {
    let (date, time) = at.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let millis: i64 = format!("{frac:0<3}")[..3].parse().unwrap();
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    ((days * 86400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1000) + millis
}

/// `kill -9` of a `qemu` supervisor while its VM runs: QEMU (in its own process group)
/// survives the supervisor, the switchboard drops the job after its grace as for the local
/// driver, and the restarted supervisor kills that QEMU and removes its overlay and sockets
/// before it connects (takes work), then runs a new VM job to success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qemu_supervisor_killed_mid_vm_leaves_no_qemu_after_restart_and_takes_new_work() {
    let Some(g) = guest::guest("qemu_supervisor_killed_mid_vm") else {
        return;
    };
    let mut lab = Lab::start_opts(&[], qemu_lab_options()).await;
    let s = lab.add_supervisor("vm1", &["board:vm"]).await;
    let _guard = KillLeftovers(vec![lab.sups[s].work.clone()]);
    let stays = vm_image(&lab, "stays", "puppet-stay", &g);
    let succeeds = vm_image(&lab, "succeeds", "puppet-success", &g);
    let work = lab.sups[s].work.clone();

    let id = lab
        .enqueue(json!({"image": stays, "tags": "board:vm", "timeout_s": 600}))
        .await;
    lab.wait_state(&id, "ready", Duration::from_secs(120)).await;
    let job_dir = work.join("qemu").join(&id);
    let overlay = job_dir.join("overlay.qcow2");
    assert!(overlay.is_file(), "the job's overlay {}", overlay.display());
    let pid = read_pid(&job_dir.join("qemu.pid")).await;
    assert!(alive(pid));
    assert_eq!(processes_naming(&work), [pid], "one QEMU for the job");
    assert!(!entries(&work.join("qemu-sockets")).is_empty());

    lab.kill_supervisor(s);
    // The switchboard waits out the grace period (3 s here), then gives the job up.
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "supervisor_dropped_job", "{job}");
    assert!(
        alive(pid),
        "kill -9 leaves QEMU behind for the restart to clean (else this test proves nothing)"
    );
    assert!(overlay.is_file());

    // `start_supervisor` returns once the switchboard sees it connected: the clean-up is done
    // by then (it runs before the connection).
    lab.start_supervisor(s).await;
    assert!(
        !job_dir.exists(),
        "the earlier run's job directory (overlay) is still there once connected"
    );
    assert!(
        gone(pid).await,
        "the restarted supervisor did not kill QEMU {pid}"
    );
    assert!(
        processes_naming(&work).is_empty(),
        "a QEMU of the earlier run remains: {:?}",
        processes_naming(&work)
    );
    assert!(entries(&work.join("qemu")).is_empty());
    assert!(
        entries(&work.join("qemu-sockets")).is_empty(),
        "{:?}",
        entries(&work.join("qemu-sockets"))
    );
    assert!(
        lab.logs()
            .contains("killed the QEMU processes of an earlier run"),
        "the restart says what it killed"
    );

    // And it takes new work.
    let id = lab
        .enqueue(json!({"image": succeeds, "tags": "board:vm"}))
        .await;
    let job = lab
        .wait_state(&id, "terminated", Duration::from_secs(120))
        .await;
    assert_eq!(job["exit_status"], "workload_finished_success", "{job}");
    assert_eq!(job["status_message"], "all 3 tests passed", "{job}");
    assert!(processes_naming(&work).is_empty());
    assert!(entries(&work.join("qemu")).is_empty());
}

/// The switchboard's job timeout stops running VMs: `stop_job`, then the driver asks the guest
/// to power down over QMP (ACPI power button). A guest that obeys powers off within the grace;
/// one that ignores the button is killed after the driver's `stop_grace_s`. Either way the
/// supervisor confirms the end itself (before the switchboard's own stop grace), and QEMU and
/// the overlay are gone. Two supervisors, one VM each, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_timeout_stops_running_vms_powerdown_then_kill_after_the_grace() {
    let Some(g) = guest::guest("qemu_job_timeout") else {
        return;
    };
    let mut lab = Lab::start_opts(&[], qemu_lab_options()).await;
    let ignores = lab.add_supervisor("vm-ignores", &["board:ignores"]).await;
    let obeys = lab.add_supervisor("vm-obeys", &["board:obeys"]).await;
    let _guard = KillLeftovers(vec![
        lab.sups[ignores].work.clone(),
        lab.sups[obeys].work.clone(),
    ]);
    let deaf = vm_image(&lab, "deaf", "puppet-stay", &g);
    let polite = vm_image(&lab, "polite", "puppet-stay-acpi", &g);

    let timeout_s = 45;
    let mut jobs = Vec::new();
    for (s, image, tag) in [
        (ignores, &deaf, "board:ignores"),
        (obeys, &polite, "board:obeys"),
    ] {
        let id = lab
            .enqueue(json!({"image": image, "tags": tag, "timeout_s": timeout_s}))
            .await;
        jobs.push((s, id));
    }
    let mut pids = Vec::new();
    for (s, id) in &jobs {
        lab.wait_state(id, "ready", Duration::from_secs(timeout_s))
            .await;
        let job_dir = lab.sups[*s].work.join("qemu").join(id);
        assert!(job_dir.join("overlay.qcow2").is_file());
        let pid = read_pid(&job_dir.join("qemu.pid")).await;
        assert!(alive(pid));
        pids.push(pid);
    }

    let mut took = Vec::new();
    for ((s, id), pid) in jobs.iter().zip(&pids) {
        let work = &lab.sups[*s].work;
        let job = lab
            .wait_state(id, "terminated", Duration::from_secs(timeout_s + 30))
            .await;
        assert_eq!(job["exit_status"], "job_timeout", "{job}");
        assert!(!alive(*pid), "QEMU {pid} outlived the job");
        assert!(processes_naming(work).is_empty());
        assert!(
            !work.join("qemu").join(id).exists(),
            "the overlay outlived the job"
        );
        assert!(entries(&work.join("qemu-sockets")).is_empty());
        let events = events(&lab, id).await;
        let find = |state: &str| {
            events
                .iter()
                .find(|e| e["to_state"] == state)
                .unwrap_or_else(|| panic!("no {state} event: {events:#?}"))
                .clone()
        };
        let (terminating, terminated) = (find("terminating"), find("terminated"));
        assert_eq!(terminating["actor"], "supervisor", "{events:#?}");
        assert_eq!(
            terminated["actor"], "supervisor",
            "the supervisor confirmed the stop itself: {events:#?}"
        );
        took.push(at_ms(&terminated) - at_ms(&terminating));
    }
    let grace_ms = (STOP_GRACE_S * 1000) as i64;
    // Ignoring the button: the request was made and its grace waited out (a failed request
    // kills at once), then QEMU was killed.
    assert!(
        took[0] >= grace_ms - 100 && took[0] < grace_ms + 5000,
        "stopping the guest that ignores the button took {} ms, the grace is {STOP_GRACE_S} s",
        took[0]
    );
    // Obeying: the guest got the button press and powered off before the grace ended.
    assert!(
        took[1] < grace_ms - 1000,
        "stopping the guest that obeys the button took {} ms (was it asked?)",
        took[1]
    );
    let console = lab.console(&jobs[1].1).await;
    assert!(console.contains("PADDOCK-GUEST-POWER-BUTTON:"), "{console}");
    assert!(console.contains("PADDOCK-GUEST-POWERING-DOWN"), "{console}");
    let logs = lab.logs();
    assert!(
        logs.contains("still running after the power-down request; killing QEMU"),
        "the supervisor's log"
    );
    assert!(
        logs.contains("the guest powered off when asked"),
        "the supervisor's log"
    );
    assert!(!logs.contains("QMP system_powerdown"), "the request failed");
}

/// A lower layer whose bytes no longer match its digest: the job ends
/// `supervisor_host_start_error` naming the layer's digest and the mismatch, before QEMU or
/// an overlay exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_lower_layer_is_a_host_start_error_leaving_nothing() {
    let Some(g) = guest::guest("qemu_corrupted_layer") else {
        return;
    };
    let mut lab = Lab::start_opts(&[], qemu_lab_options()).await;
    let s = lab.add_supervisor("vm1", &["board:vm"]).await;
    let image = vm_image(&lab, "corrupt", "puppet-success", &g);
    let work = lab.sups[s].work.clone();
    let _guard = KillLeftovers(vec![work.clone()]);
    let verified = lab.store.verified_image(&image.parse().unwrap()).unwrap();
    let (lower_digest, lower_path) = verified
        .blobs
        .iter()
        .find(|(name, _)| name == "layer-0")
        .map(|(_, p)| {
            let digest = p.file_name().unwrap().to_string_lossy().into_owned();
            (digest, p.clone())
        })
        .unwrap();
    // One byte changed, the size kept: only the digest tells.
    let mut bytes = std::fs::read(&lower_path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&lower_path, bytes).unwrap();

    let id = lab
        .enqueue(json!({"image": image, "tags": "board:vm"}))
        .await;
    let job = lab.terminated(&id).await;
    assert_eq!(job["exit_status"], "supervisor_host_start_error", "{job}");
    let message = job["status_message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&lower_digest) && message.contains("corrupt"),
        "the message names the layer's digest and the mismatch: {message}"
    );
    assert!(
        !events(&lab, &id)
            .await
            .iter()
            .any(|e| e["to_state"] == "ready")
    );
    assert!(processes_naming(&work).is_empty());
    assert!(entries(&work.join("qemu")).is_empty());
    assert!(entries(&work.join("qemu-sockets")).is_empty());
    let logs = lab.logs();
    assert!(!logs.contains("starting QEMU"), "QEMU was started");
}
