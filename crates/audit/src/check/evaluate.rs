//! Evaluating a check on a host: behaviour, not package presence (a unit is *active*, a
//! module is *loaded*, an address is *on* the interface, a disk is *free*).

use std::time::Duration;

use super::baseline::{Check, Countable, Kind, PciSelector};
use crate::collectors::cpu;
use crate::collectors::storage;
use crate::host::{Host, HostError};
use crate::parse::lsblk::BlockDevice;
use crate::parse::{dmidecode, ip, proc};

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub passed: bool,
    pub detail: String,
}

fn pass(detail: impl Into<String>) -> Outcome {
    Outcome {
        passed: true,
        detail: detail.into(),
    }
}

fn fail(detail: impl Into<String>) -> Outcome {
    Outcome {
        passed: false,
        detail: detail.into(),
    }
}

fn run(
    host: &dyn Host,
    argv: &[&str],
    timeout: Duration,
) -> Result<crate::host::CmdOutput, String> {
    let (program, args) = argv.split_first().ok_or("an empty command")?;
    host.run(program, args, timeout).map_err(|e| match e {
        HostError::NotFound(p) => format!("{p} is not installed"),
        e => e.to_string(),
    })
}

/// The address part of `10.0.0.1/24`.
fn ip_only(a: &str) -> &str {
    a.split('/').next().unwrap_or(a)
}

pub fn evaluate(host: &dyn Host, check: &Check) -> Outcome {
    let t = Duration::from_secs(20);
    match &check.kind {
        Kind::SystemdUnitActive { unit } => match run(host, &["systemctl", "is-active", unit], t) {
            Ok(out) => {
                let state = out.stdout_text().trim().to_string();
                if state == "active" {
                    pass(format!("{unit} is active"))
                } else if state.is_empty() {
                    fail(format!("{unit}: state unknown ({})", out.complaint()))
                } else {
                    fail(format!("{unit} is {state}"))
                }
            }
            Err(e) => fail(e),
        },
        Kind::KernelCmdlineContains { value } => match host.read_text("/proc/cmdline") {
            Some(cmdline) if cmdline.split_whitespace().any(|w| w == value) => {
                pass(format!("`{value}` is on the kernel command line"))
            }
            Some(cmdline) => fail(format!(
                "`{value}` is not on the kernel command line: {cmdline}"
            )),
            None => fail("/proc/cmdline is not readable"),
        },
        Kind::KernelModuleLoaded { module } => {
            let loaded = host
                .read_text("/proc/modules")
                .map(|t| proc::modules(&t))
                .unwrap_or_default();
            let name = module.replace('-', "_");
            if loaded.contains(&name) {
                pass(format!("{module} is loaded"))
            } else if host.exists(&format!("/sys/module/{name}")) {
                pass(format!("{module} is built into the kernel"))
            } else {
                fail(format!("{module} is not loaded"))
            }
        }
        Kind::PathExists { path } => {
            if host.exists(path) {
                pass(format!("{path} exists"))
            } else {
                fail(format!("{path} does not exist"))
            }
        }
        Kind::PathAbsent { path } => {
            if host.exists(path) {
                fail(format!("{path} exists"))
            } else {
                pass(format!("{path} is absent"))
            }
        }
        Kind::FileContains { path, text } => match host.read(path) {
            Ok(bytes) if String::from_utf8_lossy(&bytes).contains(text.as_str()) => {
                pass(format!("{path} contains `{text}`"))
            }
            Ok(_) => fail(format!("{path} does not contain `{text}`")),
            Err(e) => fail(e.to_string()),
        },
        Kind::Sysctl { key, value } => {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            match host.read_text(&path) {
                Some(v) => {
                    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
                    if norm(&v) == norm(value) {
                        pass(format!("{key} = {v}"))
                    } else {
                        fail(format!("{key} = {v}, expected {value}"))
                    }
                }
                None => fail(format!("{key}: {path} is not readable")),
            }
        }
        Kind::InterfaceHasAddress { interface, address } => {
            interface_has_address(host, interface, address, t)
        }
        Kind::RouteExists {
            destination,
            via,
            dev,
        } => {
            let family =
                if destination.contains(':') || via.as_deref().is_some_and(|v| v.contains(':')) {
                    "-6"
                } else {
                    "-4"
                };
            match run(host, &["ip", "-j", family, "route"], t) {
                Ok(out) if out.success() => match ip::parse_route(&out.stdout_text()) {
                    Ok(routes) => {
                        let hit = routes.iter().find(|r| {
                            r.destination == *destination
                                && via.as_ref().is_none_or(|v| r.gateway.as_ref() == Some(v))
                                && dev.as_ref().is_none_or(|d| r.device.as_ref() == Some(d))
                        });
                        match hit {
                            Some(r) => pass(format!(
                                "route {} via {} dev {}",
                                r.destination,
                                r.gateway.as_deref().unwrap_or("-"),
                                r.device.as_deref().unwrap_or("-")
                            )),
                            None => fail(format!(
                                "no route to {destination}{}{}",
                                via.as_ref()
                                    .map(|v| format!(" via {v}"))
                                    .unwrap_or_default(),
                                dev.as_ref()
                                    .map(|d| format!(" dev {d}"))
                                    .unwrap_or_default()
                            )),
                        }
                    }
                    Err(e) => fail(e.to_string()),
                },
                Ok(out) => fail(out.complaint()),
                Err(e) => fail(e),
            }
        }
        Kind::Command {
            argv,
            output_matches,
            output_not_matches,
            timeout_s,
        } => {
            let args: Vec<&str> = argv.iter().map(String::as_str).collect();
            let shown = argv.join(" ");
            match run(host, &args, Duration::from_secs(*timeout_s)) {
                Ok(out) if out.success() => {
                    let text = out.stdout_text();
                    // `^` and `$` match at line boundaries.
                    let find = |re: &str| {
                        regex_lite::Regex::new(&format!("(?m){re}"))
                            .map(|r| r.find(&text).map(|m| m.range()))
                    };
                    let line_at = |at: std::ops::Range<usize>| {
                        let start = text[..at.start].rfind('\n').map_or(0, |i| i + 1);
                        let end = text[at.start..]
                            .find('\n')
                            .map_or(text.len(), |i| at.start + i);
                        text[start..end].trim().to_string()
                    };
                    let mut passed = vec![format!("`{shown}` exited 0")];
                    if let Some(re) = output_matches {
                        match find(re) {
                            Ok(Some(_)) => passed.push(format!("output matches /{re}/")),
                            Ok(None) => {
                                return fail(format!(
                                    "`{shown}` output does not match /{re}/: {}",
                                    text.lines().take(3).collect::<Vec<_>>().join(" / ")
                                ));
                            }
                            Err(e) => return fail(format!("output_matches: {e}")),
                        }
                    }
                    if let Some(re) = output_not_matches {
                        match find(re) {
                            Ok(None) => passed.push(format!("output does not match /{re}/")),
                            Ok(Some(at)) => {
                                return fail(format!(
                                    "`{shown}` output matches /{re}/: {}",
                                    line_at(at)
                                ));
                            }
                            Err(e) => return fail(format!("output_not_matches: {e}")),
                        }
                    }
                    pass(passed.join(", "))
                }
                Ok(out) => fail(format!("`{shown}`: {}", out.complaint())),
                Err(e) => fail(e),
            }
        }
        Kind::CountAtLeast { what, min } => {
            let (n, label) = match what {
                Countable::Gpus => (count_gpus(host), "NVIDIA GPUs"),
                Countable::Nvme => (
                    host.list("/sys/class/nvme").map(|l| l.len()).unwrap_or(0),
                    "NVMe controllers",
                ),
                Countable::IommuGroups => (
                    host.list("/sys/kernel/iommu_groups")
                        .map(|l| l.len())
                        .unwrap_or(0),
                    "IOMMU groups",
                ),
            };
            if n as u64 >= *min {
                pass(format!("{n} {label} (at least {min})"))
            } else {
                fail(format!("{n} {label}, expected at least {min}"))
            }
        }
        Kind::DiskFree { by_id } => disk_free(host, by_id),
        Kind::BlankDisk { by_id } => blank_disk(host, by_id, t),
        Kind::CpuSockets {
            min_sockets,
            min_cores_per_socket,
        } => cpu_sockets(host, *min_sockets, *min_cores_per_socket, t),
        Kind::SriovVfs {
            select,
            min_numvfs,
            min_totalvfs,
        } => sriov_vfs(host, select, *min_numvfs, *min_totalvfs),
    }
}

fn cpu_sockets(
    host: &dyn Host,
    min_sockets: Option<u64>,
    min_cores: Option<u64>,
    t: Duration,
) -> Outcome {
    let text = match run(host, &["dmidecode", "-t", "4"], t) {
        Ok(out) if out.success() => out.stdout_text(),
        Ok(out) => return fail(format!("dmidecode -t 4: {}", out.complaint())),
        Err(e) => return fail(format!("{e}: cannot read the processor sockets")),
    };
    let sockets = match dmidecode::parse(&text) {
        Ok(records) => cpu::sockets(&records),
        Err(e) => return fail(format!("dmidecode -t 4: {e}")),
    };
    if sockets.is_empty() {
        return fail("dmidecode -t 4: no SMBIOS processor records");
    }
    let describe = |s: &cpu::Socket| {
        format!(
            "{} {}",
            s.name,
            s.status.as_deref().unwrap_or("(no status)")
        )
    };
    let usable: Vec<&cpu::Socket> = sockets.iter().filter(|s| s.state.usable()).collect();
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    if let Some(min) = min_sockets {
        let n = usable.len() as u64;
        if n >= min {
            passed.push(format!(
                "{n} of {} sockets populated and enabled (at least {min})",
                sockets.len()
            ));
        } else {
            let others: Vec<String> = sockets
                .iter()
                .filter(|s| !s.state.usable())
                .map(describe)
                .collect();
            failed.push(format!(
                "{n} of {} sockets populated and enabled, expected at least {min}{}",
                sockets.len(),
                if others.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", others.join("; "))
                }
            ));
        }
    }
    if let Some(min) = min_cores {
        let mut short = Vec::new();
        for s in sockets.iter().filter(|s| s.state.populated()) {
            match (s.state, s.core_enabled) {
                (state, _) if !state.usable() => short.push(describe(s)),
                (_, Some(n)) if n >= min => {}
                (_, Some(n)) => short.push(format!(
                    "{}: {n}{} cores enabled",
                    s.name,
                    s.core_count.map(|c| format!(" of {c}")).unwrap_or_default()
                )),
                (_, None) => short.push(format!("{}: no Core Enabled count", s.name)),
            }
        }
        if usable.is_empty() && short.is_empty() {
            failed.push("no populated socket".to_string());
        } else if short.is_empty() {
            passed.push(format!(
                "every populated socket has at least {min} cores enabled"
            ));
        } else {
            failed.push(format!(
                "expected at least {min} cores enabled per populated socket: {}",
                short.join("; ")
            ));
        }
    }
    if failed.is_empty() {
        pass(passed.join(", "))
    } else {
        fail(failed.join("; "))
    }
}

/// The physical functions `select` picks, each with its SR-IOV counts: a device whose
/// `sriov_totalvfs` is absent has no SR-IOV capability.
fn sriov_vfs(
    host: &dyn Host,
    select: &PciSelector,
    min_numvfs: u64,
    min_totalvfs: Option<u64>,
) -> Outcome {
    let sys = "/sys/bus/pci/devices";
    let slots = match host.list(sys) {
        Ok(s) => s,
        Err(e) => return fail(format!("{sys}: {e}")),
    };
    let link_name = |slot: &str, name: &str| {
        host.link(&format!("{sys}/{slot}/{name}"))
            .ok()
            .and_then(|t| t.rsplit('/').next().map(str::to_string))
    };
    let id = |slot: &str, name: &str| {
        host.read_text(&format!("{sys}/{slot}/{name}"))
            .map(|v| v.to_ascii_lowercase())
    };
    let want = select.describe();
    let picked: Vec<&String> = slots
        .iter()
        .filter(|slot| select.slot.as_ref().is_none_or(|s| s == *slot))
        .filter(|slot| {
            select
                .vendor_id
                .as_ref()
                .is_none_or(|v| id(slot, "vendor").as_ref() == Some(v))
        })
        .filter(|slot| {
            select
                .device_id
                .as_ref()
                .is_none_or(|v| id(slot, "device").as_ref() == Some(v))
        })
        .filter(|slot| {
            select
                .driver
                .as_ref()
                .is_none_or(|d| link_name(slot, "driver").as_ref() == Some(d))
        })
        // A virtual function has no VFs of its own.
        .filter(|slot| link_name(slot, "physfn").is_none())
        .collect();
    if picked.is_empty() {
        return fail(format!("no PCI physical function matches {want}"));
    }
    let count = |slot: &str, name: &str| -> Result<Option<u64>, String> {
        match host.read_text(&format!("{sys}/{slot}/{name}")) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{slot}: {name} reads `{v}`")),
        }
    };
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for slot in picked {
        let (num, total) = match (count(slot, "sriov_numvfs"), count(slot, "sriov_totalvfs")) {
            (Ok(n), Ok(t)) => (n, t),
            (Err(e), _) | (_, Err(e)) => {
                bad.push(e);
                continue;
            }
        };
        let Some(total) = total else {
            bad.push(format!("{slot}: no SR-IOV (no sriov_totalvfs)"));
            continue;
        };
        let Some(num) = num else {
            bad.push(format!(
                "{slot}: SR-IOV with {total} possible VFs, sriov_numvfs not readable"
            ));
            continue;
        };
        let mut why = Vec::new();
        if num < min_numvfs {
            why.push(format!(
                "{num} VFs configured, expected at least {min_numvfs}"
            ));
        }
        if let Some(min) = min_totalvfs
            && total < min
        {
            why.push(format!("{total} VFs possible, expected at least {min}"));
        }
        if why.is_empty() {
            good.push(format!("{slot}: {num} of {total} VFs"));
        } else {
            bad.push(format!("{slot}: {} (of {total} possible)", why.join(", ")));
        }
    }
    if bad.is_empty() {
        pass(format!("{want}: {}", good.join(", ")))
    } else {
        fail(format!("{want}: {}", bad.join("; ")))
    }
}

/// Whether `name` matches the glob `pattern`: `*` any run of characters, `?` one character,
/// anything else itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matching with one backtrack point (the last `*`).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn interface_has_address(host: &dyn Host, interface: &str, address: &str, t: Duration) -> Outcome {
    let pattern = interface.contains(['*', '?']);
    let argv: &[&str] = if pattern {
        &["ip", "-j", "addr", "show"]
    } else {
        &["ip", "-j", "addr", "show", "dev", interface]
    };
    let list = match run(host, argv, t) {
        Ok(out) if out.success() => match ip::parse_addr(&out.stdout_text()) {
            Ok(list) => list,
            Err(e) => return fail(e.to_string()),
        },
        Ok(out) => return fail(format!("{interface}: {}", out.complaint())),
        Err(e) => return fail(e),
    };
    let matched: Vec<ip::Interface> = list
        .into_iter()
        .filter(|i| !pattern || glob_match(interface, &i.name))
        .collect();
    if matched.is_empty() {
        return fail(format!("no interface matches {interface}"));
    }
    let has = |a: &String| {
        if address.contains('/') {
            a == address
        } else {
            ip_only(a) == address
        }
    };
    if let Some(i) = matched.iter().find(|i| i.addresses.iter().any(has)) {
        return pass(if pattern {
            format!("{} ({interface}) has {address}", i.name)
        } else {
            format!("{interface} has {address}")
        });
    }
    let have: Vec<String> = matched
        .iter()
        .map(|i| {
            let a = if i.addresses.is_empty() {
                "no address".to_string()
            } else {
                i.addresses.join(", ")
            };
            if pattern {
                format!("{}: {a}", i.name)
            } else {
                a
            }
        })
        .collect();
    fail(format!(
        "{interface} has {}, not {address}",
        have.join("; ")
    ))
}

/// NVIDIA display/3D controllers on the PCI bus (whether or not a driver is loaded).
fn count_gpus(host: &dyn Host) -> usize {
    let sys = "/sys/bus/pci/devices";
    host.list(sys)
        .unwrap_or_default()
        .iter()
        .filter(|slot| {
            host.read_text(&format!("{sys}/{slot}/vendor")).as_deref() == Some("0x10de")
                && host
                    .read_text(&format!("{sys}/{slot}/class"))
                    .is_some_and(|c| c.starts_with("0x03"))
        })
        .count()
}

/// The disk `by_id` names, when it is present, not the system disk and nothing of it is
/// mounted: its kernel name and lsblk's record; else the failed outcome.
fn unmounted_disk(host: &dyn Host, by_id: &str) -> Result<(String, BlockDevice), Outcome> {
    let link = if by_id.starts_with('/') {
        by_id.to_string()
    } else {
        format!("/dev/disk/by-id/{by_id}")
    };
    let target = host.link(&link).map_err(|_| {
        fail(format!(
            "{link} does not exist (no disk with that stable id)"
        ))
    })?;
    let kernel = target.rsplit('/').next().unwrap_or("").to_string();
    let devices =
        storage::block_devices(host).map_err(|e| fail(format!("listing block devices: {e}")))?;
    let Some(disk) = devices.into_iter().find(|d| d.name == kernel) else {
        return Err(fail(format!(
            "{link} points at {kernel}, which lsblk does not list as a disk"
        )));
    };
    let mounts = disk.all_mountpoints();
    if mounts.contains(&"/") {
        return Err(fail(format!(
            "{kernel} ({by_id}) holds / : it is the system disk"
        )));
    }
    if !mounts.is_empty() {
        return Err(fail(format!(
            "{kernel} ({by_id}) is in use: mounted at {} (the disk or a partition)",
            mounts.join(", ")
        )));
    }
    Ok((kernel, disk))
}

fn disk_free(host: &dyn Host, by_id: &str) -> Outcome {
    match unmounted_disk(host, by_id) {
        Ok((kernel, _)) => pass(format!(
            "{kernel} ({by_id}) is present, not mounted, no mounted partition"
        )),
        Err(o) => o,
    }
}

/// `wipefs --no-act --json` output: `{"signatures": [{"type": …, "offset": …}, …]}`; older
/// versions print nothing when there is none.
#[derive(serde::Deserialize)]
struct Wipefs {
    #[serde(default)]
    signatures: Vec<Signature>,
}

#[derive(serde::Deserialize)]
struct Signature {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    offset: Option<String>,
}

fn blank_disk(host: &dyn Host, by_id: &str, t: Duration) -> Outcome {
    let (kernel, disk) = match unmounted_disk(host, by_id) {
        Ok(d) => d,
        Err(o) => return o,
    };
    if !disk.children.is_empty() {
        let parts: Vec<&str> = disk.children.iter().map(|c| c.name.as_str()).collect();
        return fail(format!(
            "{kernel} ({by_id}) is not blank: partition(s) {}",
            parts.join(", ")
        ));
    }
    if let Some(fs) = &disk.fstype {
        return fail(format!(
            "{kernel} ({by_id}) is not blank: a whole-disk {fs} filesystem"
        ));
    }
    let dev = format!("/dev/{kernel}");
    let out = match run(host, &["wipefs", "--no-act", "--json", &dev], t) {
        Ok(out) if out.success() => out,
        Ok(out) => return fail(format!("wipefs {dev}: {}", out.complaint())),
        Err(e) => return fail(format!("{e}: cannot tell whether {dev} is blank")),
    };
    let text = out.stdout_text();
    let found = if text.trim().is_empty() {
        Vec::new()
    } else {
        match serde_json::from_str::<Wipefs>(&text) {
            Ok(w) => w.signatures,
            Err(e) => return fail(format!("wipefs {dev}: unreadable output: {e}")),
        }
    };
    if !found.is_empty() {
        let list: Vec<String> = found
            .iter()
            .map(|s| {
                format!(
                    "{} at {}",
                    s.kind.as_deref().unwrap_or("unknown"),
                    s.offset.as_deref().unwrap_or("?")
                )
            })
            .collect();
        return fail(format!(
            "{kernel} ({by_id}) is not blank: wipefs finds {}",
            list.join(", ")
        ));
    }
    pass(format!(
        "{kernel} ({by_id}) is blank: not mounted, no partition, no filesystem, no wipefs signature"
    ))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        for (p, n) in [
            ("ibp*", "ibp24s0"),
            ("ibp*", "ibp"),
            ("enp?s0", "enp3s0"),
            ("*s0", "ibp24s0"),
            ("e*p*s*0", "enp129s0f0"),
            ("lo", "lo"),
        ] {
            assert!(glob_match(p, n), "{p} {n}");
        }
        for (p, n) in [
            ("ibp*", "ib0"),
            ("enp?s0", "enp12s0"),
            ("lo", "lo0"),
            ("*s0", "s1"),
        ] {
            assert!(!glob_match(p, n), "{p} {n}");
        }
    }
}
