//! The test guest for the QEMU driver's tests: Debian's cloud kernel and a busybox initramfs,
//! built from Debian packages at test time (`apt-get download` + `dpkg -x`; nothing is
//! installed on this machine) and cached under the target directory, so the tests of one run
//! (and later runs) share it.
//!
//! The guest's `/init` mounts /proc, /sys and /dev, prints [`MARKER`] on the serial console and
//! powers off. The kernel command line chooses more:
//! - `paddock.test=sleep`: it keeps running instead (it ignores ACPI power-down requests: the
//!   button driver is a module it does not load) and never reports;
//! - `paddock.test=puppet-ready`, `puppet-success`, `puppet-error`: it loads `virtio_console`
//!   (and `virtio_pci`: modules in Debian's cloud kernel) with their dependencies, links the
//!   puppet port to `/dev/virtio-ports/org.paddock.puppet.0` (what udev does in a real
//!   system), runs `paddock-puppet ready`, then `paddock-puppet exit success` or `exit error`
//!   (not for `puppet-ready`), and powers off;
//! - `paddock.test=puppet-stay`: as `puppet-ready`, but it then keeps running (a job's host
//!   that stays up until stopped; like `sleep`, it ignores ACPI power-down requests);
//! - `paddock.test=puppet-stay-acpi`: the same, but it powers off when the ACPI power button
//!   is pressed (QMP `system_powerdown`): it watches the button's input device (the modules
//!   `button` and `evdev`) and prints `PADDOCK-GUEST-POWERING-DOWN` first;
//! - `paddock.test=guest-daemon`: the same port, then the guest puppet
//!   (`paddock-puppet guest --ssh-user paddock --ready-command 'test -e /tmp/checked'`) in the
//!   background. Once `/run/paddock/job-id` is there, the init checks the job's data against
//!   the job's public parameters `token_sha256` (the sha256 of the secret parameter `token`)
//!   and `ssh_key` (the job's one SSH key): `token` at mode 0600 with that digest, the public
//!   parameters at 0644, `authorized_keys.d/paddock` holding the key. It then lets the guest
//!   puppet report ready (`touch /tmp/checked`), waits until it has, and reports the verdict
//!   with `paddock-puppet exit success|error --message "job <id>:<failures>"`, through the
//!   guest puppet's relay socket (the guest puppet holds the port). The secret is never
//!   printed.
//!
//! - `paddock.test=ssh`: the same port, then the guest puppet (`--ssh-user root
//!   --ready-command 'test -e /tmp/sshd-up'`) in the background. Once `/run/paddock/job-id`
//!   is there, the init copies `authorized_keys` (the job's keys) to root's `~/.ssh`, prints
//!   [`UNAME_MARKER`] and the kernel's `uname -r`, sets up the network QEMU's user-mode
//!   network gives (`eth0` 10.0.2.15/24, gateway 10.0.2.2: the address QEMU's DHCP would
//!   hand out and its `hostfwd` forwards to; set statically, so no DHCP client script is
//!   needed), starts dropbear on port 22 (public keys only), lets the guest puppet report
//!   ready (`touch /tmp/sshd-up`) and keeps running until it is stopped.
//!
//! - `paddock.test=console-echo`: the same port; it opens the serial port `/dev/ttyS0` (before
//!   reporting: the UART's FIFO is cleared when the port is opened), runs `paddock-puppet
//!   ready`, reads one line from the serial port (at most 60 s) and reports it with
//!   `paddock-puppet exit success --message "got: <line>"`: console input, end to end.
//!
//! `paddock-puppet` is the `guest-puppet` example of this crate (the same
//! `paddock_puppet::cli::main` as the installed binary), which `cargo test` builds with the
//! tests; `<profile>/paddock-puppet` serves too (`cargo build -p paddock-cli`). It is copied in
//! with the shared libraries `ldd` names and the dynamic loader. The kernel, busybox and the
//! modules are cached under the target directory, as are dropbear (Debian's `dropbear-bin`) and
//! the libraries it needs that this machine lacks (`libtomcrypt1`, `libtommath1`); the initramfs is rebuilt once per test run,
//! so it always holds the puppet just built.
//!
//! Without `qemu-system-x86_64` the tests print SKIPPED and pass, unless `CI` is set: then
//! they fail, as they do when the guest cannot be built.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const MARKER: &str = "PADDOCK-GUEST-UP";
/// Printed by the guest after `paddock-puppet ready` succeeded.
pub const READY_MARKER: &str = "PADDOCK-PUPPET-READY-OK";
/// Printed by the guest of `paddock.test=ssh` before its kernel's `uname -r`, on one line.
pub const UNAME_MARKER: &str = "PADDOCK-GUEST-UNAME:";
/// The modules the guest loads, with their dependencies: the puppet port, the network card,
/// and (`button`, `evdev`) the ACPI power button as an input device, for `puppet-stay-acpi`.
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_console",
    "virtio_net",
    "button",
    "evdev",
];
/// Packages whose files the guest takes: dropbear and the libraries it needs beyond the
/// puppet's.
const SSH_PACKAGES: &[&str] = &["dropbear-bin", "libtomcrypt1", "libtommath1"];
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
    match GUEST.get_or_init(|| build().and_then(|base| initramfs(&base))) {
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

/// The cached part: the kernel, busybox and the modules (`modules/<name>.ko` and
/// `modules/order`, the load order).
struct Base {
    dir: PathBuf,
}

fn build() -> Result<Base, String> {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("qemu-guest-v4");
    let base = Base { dir: cache.clone() };
    if ["vmlinuz", "busybox", "modules/order", "dropbear/dropbear"]
        .iter()
        .all(|f| cache.join(f).is_file())
    {
        return Ok(base);
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
        .args(SSH_PACKAGES)
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
    let out = work.join("out");
    std::fs::create_dir_all(out.join("modules")).map_err(|e| e.to_string())?;
    std::fs::copy(&vmlinuz, out.join("vmlinuz")).map_err(|e| e.to_string())?;
    std::fs::copy(root.join("bin/busybox"), out.join("busybox")).map_err(|e| e.to_string())?;
    // dropbear and the libraries of its packages (`dropbear/lib/`).
    std::fs::create_dir_all(out.join("dropbear/lib")).map_err(|e| e.to_string())?;
    std::fs::copy(
        root.join("usr/sbin/dropbear"),
        out.join("dropbear/dropbear"),
    )
    .map_err(|e| format!("dropbear-bin: usr/sbin/dropbear: {e}"))?;
    for d in ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"] {
        let Ok(entries) = std::fs::read_dir(root.join(d)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("libtom") && name.contains(".so") {
                // Links (`libtomcrypt.so.1` → the versioned file) are copied as files.
                std::fs::copy(e.path(), out.join("dropbear/lib").join(&name))
                    .map_err(|e| format!("{name}: {e}"))?;
            }
        }
    }
    // The modules and their dependencies (`depends=` in each module's .modinfo), in load order.
    let mut found = std::collections::BTreeMap::new();
    find_modules(&root.join("lib/modules"), &mut found)?;
    if found.is_empty() {
        find_modules(&root.join("usr/lib/modules"), &mut found)?;
    }
    let mut order: Vec<String> = Vec::new();
    for m in MODULES {
        add_module(m, &found, &out.join("modules"), &mut order, 0)?;
    }
    std::fs::write(out.join("modules/order"), order.join("\n") + "\n")
        .map_err(|e| e.to_string())?;
    // Another test binary may have finished first: either result serves.
    if std::fs::rename(&out, &cache).is_err() && !cache.join("modules/order").is_file() {
        return Err(format!("could not publish {}", cache.display()));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(base)
}

/// Module name (`-` as `_`) → its file, under `dir`.
fn find_modules(
    dir: &Path,
    found: &mut std::collections::BTreeMap<String, PathBuf>,
) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            find_modules(&p, found)?;
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        for ext in [".ko", ".ko.xz", ".ko.zst"] {
            if let Some(stem) = name.strip_suffix(ext) {
                found.insert(stem.replace('-', "_"), p.clone());
            }
        }
    }
    Ok(())
}

/// Copies `name` (uncompressed) after its dependencies; a module the kernel has built in is
/// simply absent from the package and skipped.
fn add_module(
    name: &str,
    found: &std::collections::BTreeMap<String, PathBuf>,
    out: &Path,
    order: &mut Vec<String>,
    depth: usize,
) -> Result<(), String> {
    if order.iter().any(|o| o == name) || depth > 16 {
        return Ok(());
    }
    let Some(path) = found.get(name) else {
        return Ok(());
    };
    let p = path.to_string_lossy();
    let bytes = if p.ends_with(".xz") {
        Command::new("xz")
            .arg("-dc")
            .arg(path)
            .output()
            .map(|o| o.stdout)
    } else if p.ends_with(".zst") {
        Command::new("zstd")
            .arg("-dc")
            .arg(path)
            .output()
            .map(|o| o.stdout)
    } else {
        std::fs::read(path)
    }
    .map_err(|e| format!("{p}: {e}"))?;
    let depends = bytes
        .split(|b| *b == 0)
        .find_map(|s| s.strip_prefix(b"depends="))
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default();
    for d in depends.split(',').filter(|d| !d.is_empty()) {
        add_module(&d.replace('-', "_"), found, out, order, depth + 1)?;
    }
    std::fs::write(out.join(format!("{name}.ko")), bytes).map_err(|e| e.to_string())?;
    order.push(name.to_string());
    Ok(())
}

/// The `paddock-puppet` this test run built (see the module documentation).
fn puppet_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // <target>/<profile>/deps/<test binary>
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no profile directory above the test binary")?;
    [
        profile.join("examples/guest-puppet"),
        profile.join("paddock-puppet"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or_else(|| {
        format!(
            "no {}/examples/guest-puppet: `cargo test -p paddock-supervisor` builds it \
             (or `cargo build -p paddock-supervisor --example guest-puppet`)",
            profile.display()
        )
    })
}

/// The initramfs: busybox, /init, the modules, paddock-puppet and its libraries.
fn initramfs(base: &Base) -> Result<Guest, String> {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let ir = tmp.join(format!("qemu-initramfs.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ir);
    for d in [
        "bin",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "lib/modules",
        "etc/dropbear",
        "root",
    ] {
        std::fs::create_dir_all(ir.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(base.dir.join("busybox"), ir.join("bin/busybox")).map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(base.dir.join("modules"))
        .map_err(|e| e.to_string())?
        .flatten()
    {
        std::fs::copy(e.path(), ir.join("lib/modules").join(e.file_name()))
            .map_err(|e| e.to_string())?;
    }
    let puppet = puppet_binary()?;
    let dest = ir.join("bin/paddock-puppet");
    // Stripped when `strip` is there: a smaller initramfs boots faster under TCG.
    let stripped = have("strip")
        && Command::new("strip")
            .arg("-o")
            .arg(&dest)
            .arg(&puppet)
            .status()
            .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(&puppet, &dest).map_err(|e| e.to_string())?;
    }
    // dropbear, with its own libraries in the loader's default directory and the system's
    // (libc, libcrypt, zlib) below.
    let dropbear = base.dir.join("dropbear/dropbear");
    std::fs::copy(&dropbear, ir.join("bin/dropbear")).map_err(|e| e.to_string())?;
    let libdir = ir.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&libdir).map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(base.dir.join("dropbear/lib"))
        .map_err(|e| e.to_string())?
        .flatten()
    {
        std::fs::copy(e.path(), libdir.join(e.file_name())).map_err(|e| e.to_string())?;
    }
    let dropbear_libs = run(Command::new("ldd")
        .arg(&dropbear)
        .env("LD_LIBRARY_PATH", base.dir.join("dropbear/lib")))?;
    if let Some(l) = dropbear_libs.lines().find(|l| l.contains("not found")) {
        return Err(format!(
            "dropbear needs a library this machine lacks: {}",
            l.trim()
        ));
    }
    let libs = run(Command::new("ldd").arg(&puppet))? + &dropbear_libs;
    for lib in libs
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
        .filter(|l| !Path::new(l).starts_with(&base.dir))
    {
        let inside = ir.join(lib.trim_start_matches('/'));
        if let Some(d) = inside.parent() {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        std::fs::copy(lib, &inside).map_err(|e| format!("{lib}: {e}"))?;
    }
    let init = format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo {MARKER}
mode=
case "$(cat /proc/cmdline)" in
*paddock.test=sleep*) while true; do sleep 1000; done;;
*paddock.test=puppet-success*) mode=success;;
*paddock.test=puppet-error*) mode=error;;
*paddock.test=puppet-ready*) mode=ready;;
*paddock.test=puppet-stay-acpi*) mode=stayacpi;;
*paddock.test=puppet-stay*) mode=stay;;
*paddock.test=guest-daemon*) mode=guest;;
*paddock.test=guest-never-ready*) mode=never;;
*paddock.test=ssh*) mode=ssh;;
*paddock.test=console-echo*) mode=echo;;
esac
if [ -n "$mode" ]; then
  for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko; done
  port=
  i=0
  while [ -z "$port" ] && [ $i -lt 300 ]; do
    for n in /sys/class/virtio-ports/*/name; do
      [ -f "$n" ] && [ "$(cat $n)" = org.paddock.puppet.0 ] && port=$(basename $(dirname $n))
    done
    [ -z "$port" ] && sleep 0.1
    i=$((i+1))
  done
  mkdir -p /dev/virtio-ports
  ln -s /dev/$port /dev/virtio-ports/org.paddock.puppet.0
  [ $mode = never ] && paddock-puppet guest --ready-command false
  if [ $mode = ssh ]; then
    paddock-puppet guest --ssh-user root --ready-command 'test -e /tmp/sshd-up' &
    i=0
    while [ ! -f /run/paddock/job-id ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
    echo 'root::0:0:root:/root:/bin/sh' > /etc/passwd
    mkdir -p /root/.ssh /dev/pts
    mount -t devpts devpts /dev/pts
    cp /run/paddock/authorized_keys /root/.ssh/authorized_keys
    chmod 700 /root /root/.ssh
    chmod 600 /root/.ssh/authorized_keys
    echo "{UNAME_MARKER}$(uname -r)"
    ip link set lo up
    ip addr add 10.0.2.15/24 dev eth0
    ip link set eth0 up
    ip route add default via 10.0.2.2
    dropbear -R -s -p 22
    touch /tmp/sshd-up
    while true; do sleep 1000; done
  fi
  if [ $mode = guest ]; then
    paddock-puppet guest --ssh-user paddock --ready-command 'test -e /tmp/checked' 2>/tmp/guest.log &
    i=0
    while [ ! -f /run/paddock/job-id ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
    p=/run/paddock/parameters
    bad=
    [ "$(stat -c %a $p/token)" = 600 ] || bad="$bad token-mode-$(stat -c %a $p/token)"
    [ "$(sha256sum < $p/token | cut -d' ' -f1)" = "$(cat $p/token_sha256)" ] || bad="$bad token-digest"
    [ "$(stat -c %a $p/token_sha256)" = 644 ] || bad="$bad public-mode"
    [ "$(cat /run/paddock/authorized_keys.d/paddock)" = "$(cat $p/ssh_key)" ] || bad="$bad ssh-key"
    [ "$(stat -c %a /run/paddock/authorized_keys.d/paddock)" = 644 ] || bad="$bad ssh-key-mode"
    echo "PADDOCK-GUEST-CHECKED:$bad"
    touch /tmp/checked
    i=0
    while ! grep -q "reported ready" /tmp/guest.log && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
    cat /tmp/guest.log
    verdict=success
    [ -n "$bad" ] && verdict=error
    paddock-puppet exit $verdict --message "job $(cat /run/paddock/job-id):$bad" && echo PADDOCK-GUEST-EXIT-OK
    poweroff -f
  fi
  if [ $mode = echo ]; then
    exec 3</dev/ttyS0
    paddock-puppet ready && echo {READY_MARKER}
    line=
    read -t 60 -r line <&3
    paddock-puppet exit success --message "got: $line"
    poweroff -f
  fi
  paddock-puppet ready && echo {READY_MARKER}
  if [ $mode = stayacpi ]; then
    for n in /sys/class/input/event*/device/name; do
      if [ -f "$n" ] && grep -q "Power Button" "$n"; then
        ev=$(basename $(dirname $(dirname $n)))
        echo "PADDOCK-GUEST-POWER-BUTTON:$ev"
        (head -c 1 /dev/input/$ev >/dev/null && echo PADDOCK-GUEST-POWERING-DOWN && poweroff -f) &
      fi
    done
  fi
  case $mode in stay|stayacpi) while true; do sleep 1000; done;; esac
  case $mode in
  success) paddock-puppet exit success --message "all 3 tests passed";;
  error) paddock-puppet exit error --message "2 tests failed";;
  esac
fi
poweroff -f
"#
    );
    write_exec(&ir.join("init"), &init)?;
    let out = tmp.join(format!("qemu-initrd-{}.gz", std::process::id()));
    run(Command::new("sh")
        .arg("-c")
        .arg("find . | cpio -o -H newc --quiet | gzip -1 > \"$0\"")
        .arg(&out)
        .current_dir(&ir))?;
    let _ = std::fs::remove_dir_all(&ir);
    let initrd = tmp.join("qemu-initrd.gz");
    std::fs::rename(&out, &initrd).map_err(|e| e.to_string())?;
    Ok(Guest {
        kernel: base.dir.join("vmlinuz"),
        initrd,
    })
}

fn write_exec(p: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text).map_err(|e| e.to_string())?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())
}
