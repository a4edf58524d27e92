//! The test guest for the QEMU driver's tests: Debian's cloud kernel and a busybox initramfs,
//! built from Debian packages at test time (`apt-get download` + `dpkg -x`; nothing is
//! installed on this machine) and cached under the target directory, so the tests of one run
//! (and later runs) share it.
//!
//! The guest's `/init` mounts /proc and /sys, prints [`MARKER`] on the serial console and
//! powers off; with `paddock.test=sleep` on the kernel command line it keeps running instead
//! (it ignores ACPI power-down requests: the button driver is a module it does not load).
//!
//! Without `qemu-system-x86_64` the tests print SKIPPED and pass, unless `CI` is set: then
//! they fail, as they do when the guest cannot be built.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const MARKER: &str = "PADDOCK-GUEST-UP";
/// The kernel command line of the test guest.
pub const CMDLINE: &str = "console=ttyS0 panic=-1 quiet";

#[derive(Debug, Clone)]
pub struct Guest {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

/// The guest, or `None` (after printing SKIPPED) when QEMU is absent outside CI.
pub fn guest(test: &str) -> Option<Guest> {
    if !have("qemu-system-x86_64") || !have("qemu-img") {
        if in_ci() {
            panic!(
                "{test}: qemu-system-x86_64 and qemu-img are needed in CI (apt-get install qemu-system-x86 qemu-utils)"
            );
        }
        eprintln!(
            "SKIPPED {test}: qemu-system-x86_64 or qemu-img is not installed (apt-get install qemu-system-x86 qemu-utils)"
        );
        return None;
    }
    static GUEST: OnceLock<Result<Guest, String>> = OnceLock::new();
    match GUEST.get_or_init(build) {
        Ok(g) => Some(g.clone()),
        Err(e) => panic!("{test}: building the test guest: {e}"),
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn build() -> Result<Guest, String> {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("qemu-guest");
    let guest = Guest {
        kernel: cache.join("vmlinuz"),
        initrd: cache.join("initrd.gz"),
    };
    if guest.kernel.is_file() && guest.initrd.is_file() {
        return Ok(guest);
    }
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("qemu-guest.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    // The meta package only depends on the versioned kernel package.
    let depends = run(Command::new("apt-cache").args(["depends", "linux-image-cloud-amd64"]))?;
    let kernel_pkg = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .ok_or_else(|| format!("no kernel package in: {depends}"))?
        .to_string();
    run(Command::new("apt-get")
        .args(["download", "-q", &kernel_pkg, "busybox-static"])
        .current_dir(&work))
    .map_err(|e| format!("{e} (has `apt-get update` run?)"))?;
    let root = work.join("x");
    for deb in std::fs::read_dir(&work)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        if deb.path().extension().is_some_and(|e| e == "deb") {
            run(Command::new("dpkg").arg("-x").arg(deb.path()).arg(&root))?;
        }
    }
    let vmlinuz = std::fs::read_dir(root.join("boot"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or("no vmlinuz in the kernel package")?;
    let ir = work.join("initramfs");
    for d in ["bin", "proc", "sys", "dev"] {
        std::fs::create_dir_all(ir.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(root.join("bin/busybox"), ir.join("bin/busybox")).map_err(|e| e.to_string())?;
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox mount -t proc proc /proc\n\
         /bin/busybox mount -t sysfs sys /sys\n\
         echo {MARKER}\n\
         case \"$(/bin/busybox cat /proc/cmdline)\" in\n\
         *paddock.test=sleep*) while true; do /bin/busybox sleep 1000; done;;\n\
         esac\n\
         /bin/busybox poweroff -f\n"
    );
    write_exec(&ir.join("init"), &init)?;
    let out = work.join("out");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    std::fs::copy(&vmlinuz, out.join("vmlinuz")).map_err(|e| e.to_string())?;
    run(Command::new("sh")
        .arg("-c")
        .arg("find . | cpio -o -H newc --quiet | gzip -1 > \"$0\"")
        .arg(out.join("initrd.gz"))
        .current_dir(&ir))?;
    // Another test binary may have finished first: either result serves.
    if std::fs::rename(&out, &cache).is_err() && !guest.kernel.is_file() {
        return Err(format!("could not publish {}", cache.display()));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(guest)
}

fn write_exec(p: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text).map_err(|e| e.to_string())?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())
}
