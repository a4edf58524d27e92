//! `accel = "auto"`: whether KVM runs a guest here. QEMU starts its firmware under KVM with no
//! disk, and the probe waits (bounded) for the firmware's debug console to say it reached its
//! boot stage. On some machines `/dev/kvm` opens but a KVM guest never gets that far (nested
//! virtualisation without the features a guest needs): then, or when QEMU fails, or when
//! nothing arrives in time, the driver uses TCG. The probe's QEMU is killed in every case.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::config::Accel;

/// How long the probe waits for the firmware.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the firmware's debug console prints once it reaches the boot stage.
const MARKERS: [&str; 2] = ["Booting from", "No bootable device"];

/// The accelerator to use: `kvm` or `tcg`; `auto` is probed (at most [`PROBE_TIMEOUT`] and
/// the time to kill QEMU). Logs the choice once.
pub async fn choose(accel: Accel, qemu: &str, machine: &str) -> Accel {
    match accel {
        Accel::Kvm | Accel::Tcg => {
            tracing::info!(accel = accel.as_str(), "QEMU accelerator (configured)");
            accel
        }
        Accel::Auto => {
            let started = Instant::now();
            match probe_kvm(qemu, machine).await {
                Ok(()) => {
                    tracing::info!(
                        accel = "kvm",
                        probe_ms = started.elapsed().as_millis() as u64,
                        "QEMU accelerator: KVM runs a guest here"
                    );
                    Accel::Kvm
                }
                Err(why) => {
                    tracing::info!(
                        accel = "tcg",
                        %why,
                        probe_ms = started.elapsed().as_millis() as u64,
                        "QEMU accelerator: falling back to TCG"
                    );
                    Accel::Tcg
                }
            }
        }
    }
}

/// Runs the firmware under KVM for at most [`PROBE_TIMEOUT`].
pub async fn probe_kvm(qemu: &str, machine: &str) -> Result<(), String> {
    if std::fs::metadata("/dev/kvm").is_err() {
        return Err("/dev/kvm is missing".into());
    }
    let mut cmd = Command::new(qemu);
    cmd.args([
        "-machine",
        machine,
        "-accel",
        "kvm",
        "-nodefaults",
        "-no-user-config",
    ])
    .args([
        "-display", "none", "-m", "32", "-monitor", "none", "-serial", "none",
    ])
    .args(["-chardev", "stdio,id=dbg,signal=off"])
    .args(["-device", "isa-debugcon,iobase=0x402,chardev=dbg"])
    .env_clear()
    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("starting {qemu}: {e}"))?;
    let mut out = child.stdout.take();
    let result = tokio::time::timeout(PROBE_TIMEOUT, async {
        let Some(out) = out.as_mut() else {
            return Err("no output pipe".to_string());
        };
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = out
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading the probe: {e}"))?;
            if n == 0 {
                return Err("QEMU ended before the firmware reached its boot stage".into());
            }
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if MARKERS.iter().any(|m| text.contains(m)) {
                return Ok(());
            }
            if seen.len() > 1 << 20 {
                return Err("the firmware printed too much".into());
            }
        }
    })
    .await;
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = tokio::time::timeout(Duration::from_millis(500), e.read_to_string(&mut err)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            let err = err.trim();
            Err(if err.is_empty() {
                e
            } else {
                format!("{e}: {}", err.chars().take(500).collect::<String>())
            })
        }
        Err(_) => Err(format!(
            "the KVM guest did not reach its firmware's boot stage within {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}
