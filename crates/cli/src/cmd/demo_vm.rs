//! `paddock up --qemu`'s demo VM image, `hello-vm`: a direct-boot image (kernel, initramfs,
//! command line) whose guest runs the guest puppet (`paddock-puppet guest`), prints a greeting
//! and the job's public parameters on its console, reports success and powers off.
//!
//! When the job has SSH keys (`paddock job enqueue --ssh-key`), the guest also brings up its
//! network (QEMU's user networking: 10.0.2.15, gateway 10.0.2.2) and dropbear on port 22 for
//! the job user `paddock` with those keys, before it reports ready, so `paddock job ssh` works. With the
//! parameter `hold` it keeps running after its greeting until the job is canceled (or times
//! out) instead of reporting success.
//!
//! It is built once from Debian packages: Debian's cloud kernel (`linux-image-cloud-amd64`),
//! `busybox-static` and dropbear (`dropbear-bin`, with `libtomcrypt1` and `libtommath1`),
//! fetched with `apt-get download` (nothing is installed) and kept in
//! `$XDG_CACHE_HOME/paddock/demo-vm-v2` (else `~/.cache/…`), plus the `paddock-puppet`
//! installed beside `paddock` (or on `PATH`) with the shared libraries it needs. The initramfs
//! loads `virtio_pci`, `virtio_console` (the puppet's port) and `virtio_net` (modules of the
//! cloud kernel).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use paddock_imagestore::LocalStore;
use paddock_imagestore::import::AssembleOptions;
use paddock_supervisor::driver::qemu::image::{ATTR_CMDLINE, ATTR_INITRD, ATTR_KERNEL};

/// The demo image's label.
pub const LABEL: &str = "hello-vm";
/// The kernel modules the puppet's port needs, loaded with their dependencies.
const MODULES: &[&str] = &["virtio_pci", "virtio_console", "virtio_net"];
/// dropbear and the libraries it needs beyond what a Debian system has.
const SSH_PACKAGES: &[&str] = &["dropbear-bin", "libtomcrypt1", "libtommath1"];
/// The files of the cached base, all there when it is whole.
const BASE_FILES: &[&str] = &["vmlinuz", "busybox", "modules/order", "dropbear/dropbear"];
/// The Debian package whose kernel the demo boots (a meta package naming the versioned one).
const KERNEL_META: &str = "linux-image-cloud-amd64";
/// A module found at most this deep in dependencies (a loop in `depends=` ends there).
const MAX_MODULE_DEPTH: usize = 16;

/// Checks that QEMU is there, naming the packages to install when it is not.
pub fn check_qemu(qemu: &str, qemu_img: &str) -> anyhow::Result<()> {
    let missing: Vec<&str> = [qemu, qemu_img]
        .into_iter()
        .filter(|p| which(p).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "--qemu needs {} on PATH: install QEMU (Debian/Ubuntu: apt-get install \
             qemu-system-x86 qemu-utils; NixOS: add pkgs.qemu to environment.systemPackages)",
            missing.join(" and ")
        );
    }
    Ok(())
}

/// Imports `hello-vm` into `store` unless it has an image with that label. `tmp` is scratch
/// space (emptied after).
pub fn ensure(store: &LocalStore, tmp: &Path) -> anyhow::Result<()> {
    if store.list()?.iter().any(|i| i.label == LABEL) {
        return Ok(());
    }
    let base = base_files().context("preparing the demo VM's kernel and busybox")?;
    let puppet = puppet_binary()?;
    let work = tmp.join("demo-vm");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let initrd = initramfs(&base, &puppet, &work).context("building the demo VM's initramfs")?;
    let mut blobs = BTreeMap::new();
    blobs.insert(
        "kernel".to_string(),
        (base.join("vmlinuz"), BTreeMap::new()),
    );
    blobs.insert("initrd".to_string(), (initrd, BTreeMap::new()));
    let attrs = BTreeMap::from([
        (ATTR_KERNEL.to_string(), "kernel".to_string()),
        (ATTR_INITRD.to_string(), "initrd".to_string()),
        (
            ATTR_CMDLINE.to_string(),
            "console=ttyS0 panic=-1 quiet".to_string(),
        ),
    ]);
    let id = store.assemble(&AssembleOptions {
        label: LABEL.into(),
        revision: 1,
        description: "Paddock demo VM: boots, prints the job's parameters, reports success".into(),
        attrs,
        blobs,
    })?;
    let _ = std::fs::remove_dir_all(&work);
    eprintln!("paddock up: imported the demo VM image {LABEL} ({id})");
    Ok(())
}

/// `name` as found on `PATH` (or itself when it is a path to a file).
fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd`; its stdout, or an error naming it with its stderr.
fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where the kernel, busybox and modules are kept between runs.
fn cache_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".cache"),
            None => {
                bail!("neither XDG_CACHE_HOME nor HOME is set: no place for the demo VM's files")
            }
        },
    };
    Ok(base.join("paddock").join("demo-vm-v2"))
}

/// The cached `vmlinuz`, `busybox` and `modules/` (with `modules/order`): fetched and
/// unpacked from Debian's packages the first time.
fn base_files() -> anyhow::Result<PathBuf> {
    let cache = cache_dir()?;
    if BASE_FILES.iter().all(|f| cache.join(f).is_file()) {
        return Ok(cache);
    }
    for tool in ["apt-get", "apt-cache", "dpkg"] {
        if which(tool).is_none() {
            bail!(
                "{tool} is not on PATH: the demo VM is built from Debian's {KERNEL_META} and \
                 busybox-static packages; on another system, import a VM image of your own \
                 (docs/images.md, `paddock image assemble`)"
            );
        }
    }
    let parent = cache
        .parent()
        .context("the cache directory has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let work = parent.join(format!("demo-vm.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let r = fetch_into(&work);
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&work);
    }
    let out = r?;
    // Another `paddock up` may have finished first: either result serves.
    if std::fs::rename(&out, &cache).is_err() && !BASE_FILES.iter().all(|f| cache.join(f).is_file())
    {
        bail!("could not move the demo VM's files to {}", cache.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(cache)
}

/// Downloads and unpacks the packages in `work`; the directory holding the files.
fn fetch_into(work: &Path) -> anyhow::Result<PathBuf> {
    let depends = run(Command::new("apt-cache").args(["depends", KERNEL_META]))
        .context("has `apt-get update` run?")?;
    let kernel_pkg = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .with_context(|| format!("apt-cache names no kernel package for {KERNEL_META}"))?
        .to_string();
    eprintln!(
        "paddock up: fetching {kernel_pkg}, busybox-static and dropbear for the demo VM \
         (apt-get download, once; kept in {})",
        cache_dir()?.display()
    );
    run(Command::new("apt-get")
        .args(["download", "-q", &kernel_pkg, "busybox-static"])
        .args(SSH_PACKAGES)
        .current_dir(work))
    .context("downloading the packages (has `apt-get update` run?)")?;
    let root = work.join("x");
    for deb in std::fs::read_dir(work)?.flatten() {
        if deb.path().extension().is_some_and(|e| e == "deb") {
            run(Command::new("dpkg").arg("-x").arg(deb.path()).arg(&root))?;
        }
    }
    let vmlinuz = std::fs::read_dir(root.join("boot"))
        .context("the kernel package has no /boot")?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .context("no vmlinuz in the kernel package")?;
    let out = work.join("out");
    std::fs::create_dir_all(out.join("modules"))?;
    std::fs::copy(&vmlinuz, out.join("vmlinuz"))?;
    std::fs::copy(root.join("bin/busybox"), out.join("busybox"))
        .context("no bin/busybox in busybox-static")?;
    // dropbear and the libraries of its packages (`dropbear/lib/`; links copied as files).
    std::fs::create_dir_all(out.join("dropbear/lib"))?;
    std::fs::copy(
        root.join("usr/sbin/dropbear"),
        out.join("dropbear/dropbear"),
    )
    .context("no usr/sbin/dropbear in dropbear-bin")?;
    for d in ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"] {
        let Ok(entries) = std::fs::read_dir(root.join(d)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("libtom") && name.contains(".so") {
                std::fs::copy(e.path(), out.join("dropbear/lib").join(&name))
                    .with_context(|| format!("copying {name}"))?;
            }
        }
    }
    let mut found = BTreeMap::new();
    for dir in ["lib/modules", "usr/lib/modules"] {
        find_modules(&root.join(dir), &mut found, 0);
    }
    let mut order = Vec::new();
    for m in MODULES {
        add_module(m, &found, &out.join("modules"), &mut order, 0)?;
    }
    std::fs::write(out.join("modules/order"), order.join("\n") + "\n")?;
    Ok(out)
}

/// Module name (`-` as `_`) → its file, under `dir`.
fn find_modules(dir: &Path, found: &mut BTreeMap<String, PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if depth < 16 {
                find_modules(&p, found, depth + 1);
            }
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        for ext in [".ko", ".ko.xz", ".ko.zst"] {
            if let Some(stem) = name.strip_suffix(ext) {
                found.insert(stem.replace('-', "_"), p.clone());
            }
        }
    }
}

/// Writes module `name` (uncompressed) into `out` after its dependencies (`depends=` in its
/// `.modinfo`); a module the kernel has built in is absent from the package and skipped.
fn add_module(
    name: &str,
    found: &BTreeMap<String, PathBuf>,
    out: &Path,
    order: &mut Vec<String>,
    depth: usize,
) -> anyhow::Result<()> {
    if order.iter().any(|o| o == name) || depth > MAX_MODULE_DEPTH {
        return Ok(());
    }
    let Some(path) = found.get(name) else {
        return Ok(());
    };
    let p = path.to_string_lossy();
    let bytes = match [(".xz", "xz"), (".zst", "zstd")]
        .into_iter()
        .find(|(ext, _)| p.ends_with(ext))
    {
        Some((_, tool)) => {
            let out = Command::new(tool)
                .arg("-dc")
                .arg(path)
                .output()
                .with_context(|| format!("running {tool} -dc {p}"))?;
            if !out.status.success() {
                bail!("{tool} -dc {p} failed ({})", out.status);
            }
            out.stdout
        }
        None => std::fs::read(path).with_context(|| format!("reading {p}"))?,
    };
    let depends = bytes
        .split(|b| *b == 0)
        .find_map(|s| s.strip_prefix(b"depends="))
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default();
    for d in depends.split(',').filter(|d| !d.is_empty()) {
        add_module(&d.replace('-', "_"), found, out, order, depth + 1)?;
    }
    std::fs::write(out.join(format!("{name}.ko")), bytes)?;
    order.push(name.to_string());
    Ok(())
}

/// The `paddock-puppet` installed beside this `paddock`, else the one on `PATH`.
fn puppet_binary() -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("paddock-puppet")))
        .filter(|p| p.is_file());
    beside.or_else(|| which("paddock-puppet")).context(
        "no paddock-puppet beside paddock or on PATH: the demo VM's guest runs it (it is \
         installed with paddock; in a checkout: cargo build --bin paddock-puppet)",
    )
}

/// The guest's `/init`: the puppet's port, the guest puppet, the demo workload.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko; done
# What udev does on a full system: the puppet's port under its name.
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
# The guest puppet fetches the job's data and writes /run/paddock; it reports ready once
# /tmp/ready exists (after sshd is up, when the job has keys).
paddock-puppet guest --ssh-user paddock --ready-command 'test -e /tmp/ready' &
i=0
while [ ! -f /run/paddock/job-id ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
echo "hello from a Paddock VM: job $(cat /run/paddock/job-id), kernel $(uname -r)"
for p in /run/paddock/parameters/*; do
  [ -f "$p" ] || continue
  if [ "$(stat -c %a $p)" = 600 ]; then
    echo "parameter $(basename $p): (secret, not shown)"
  else
    echo "parameter $(basename $p) = $(cat $p)"
  fi
done
if [ -s /run/paddock/authorized_keys ]; then
  # The job user `paddock` (the supervisor's default ssh_user, the NixOS module's jobUser).
  echo 'root::0:0:root:/root:/bin/sh' > /etc/passwd
  echo 'paddock::1000:1000:job user:/home/paddock:/bin/sh' >> /etc/passwd
  echo 'root:x:0:' > /etc/group
  echo 'paddock:x:1000:' >> /etc/group
  mkdir -p /home/paddock/.ssh /dev/pts /etc/dropbear
  mount -t devpts devpts /dev/pts
  cp /run/paddock/authorized_keys /home/paddock/.ssh/authorized_keys
  chown -R 1000:1000 /home/paddock
  chmod 700 /home/paddock /home/paddock/.ssh
  chmod 600 /home/paddock/.ssh/authorized_keys
  ip link set lo up
  ip addr add 10.0.2.15/24 dev eth0
  ip link set eth0 up
  ip route add default via 10.0.2.2
  dropbear -R -s -p 22 && echo "sshd: dropbear on port 22 (user paddock, the job's keys)"
fi
touch /tmp/ready
if [ -f /run/paddock/parameters/hold ]; then
  echo "holding (parameter hold): cancel the job to end it"
  while true; do sleep 1000; done
fi
paddock-puppet exit success --message "hello-vm: done"
sleep 1
poweroff -f
"#;

/// The initramfs (gzip'd newc cpio): busybox, `/init`, the modules, paddock-puppet and its
/// shared libraries.
fn initramfs(base: &Path, puppet: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    for tool in ["cpio", "gzip", "ldd"] {
        if which(tool).is_none() {
            bail!("{tool} is not on PATH (Debian: apt-get install cpio gzip libc-bin)");
        }
    }
    let ir = work.join("root");
    for d in [
        "bin",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "home",
        "etc/dropbear",
        "lib/modules",
    ] {
        std::fs::create_dir_all(ir.join(d))?;
    }
    std::fs::copy(base.join("busybox"), ir.join("bin/busybox"))?;
    for e in std::fs::read_dir(base.join("modules"))?.flatten() {
        std::fs::copy(e.path(), ir.join("lib/modules").join(e.file_name()))?;
    }
    // Stripped when `strip` is there: a smaller initramfs boots faster (a debug build's
    // paddock-puppet is mostly debug information).
    let dest = ir.join("bin/paddock-puppet");
    let stripped = which("strip").is_some()
        && Command::new("strip")
            .arg("-o")
            .arg(&dest)
            .arg(puppet)
            .status()
            .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(puppet, &dest).with_context(|| format!("copying {}", puppet.display()))?;
    }
    // dropbear, with its own libraries in the loader's default directory and the system's
    // (libc, libcrypt, zlib) found by ldd below.
    let dropbear = base.join("dropbear/dropbear");
    std::fs::copy(&dropbear, ir.join("bin/dropbear"))?;
    let libdir = ir.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&libdir)?;
    for e in std::fs::read_dir(base.join("dropbear/lib"))?.flatten() {
        std::fs::copy(e.path(), libdir.join(e.file_name()))?;
    }
    let dropbear_libs = run(Command::new("ldd")
        .arg(&dropbear)
        .env("LD_LIBRARY_PATH", base.join("dropbear/lib")))?;
    if let Some(l) = dropbear_libs.lines().find(|l| l.contains("not found")) {
        bail!("dropbear needs a library this machine lacks: {}", l.trim());
    }
    let libs = run(Command::new("ldd").arg(puppet))? + &dropbear_libs;
    for lib in libs
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
        .filter(|l| !Path::new(l).starts_with(base))
    {
        let inside = ir.join(lib.trim_start_matches('/'));
        if let Some(d) = inside.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::copy(lib, &inside).with_context(|| format!("copying {lib}"))?;
    }
    write_exec(&ir.join("init"), INIT)?;
    let out = work.join("initrd.gz");
    run(Command::new("sh")
        .arg("-c")
        .arg("find . | cpio -o -H newc --quiet | gzip -1 > \"$0\"")
        .arg(&out)
        .current_dir(&ir))?;
    Ok(out)
}

fn write_exec(p: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}
