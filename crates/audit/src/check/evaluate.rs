//! Evaluating a check on a host: behaviour, not package presence (a unit is *active*, a
//! module is *loaded*, an address is *on* the interface, a disk is *free*).

use std::time::Duration;

use super::baseline::{Check, Countable, Kind};
use crate::collectors::storage;
use crate::host::{Host, HostError};
use crate::parse::{ip, proc};

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
            match run(host, &["ip", "-j", "addr", "show", "dev", interface], t) {
                Ok(out) if out.success() => match ip::parse_addr(&out.stdout_text()) {
                    Ok(list) => {
                        let have: Vec<String> =
                            list.into_iter().flat_map(|i| i.addresses).collect();
                        let found = have.iter().any(|a| {
                            if address.contains('/') {
                                a == address
                            } else {
                                ip_only(a) == address
                            }
                        });
                        if found {
                            pass(format!("{interface} has {address}"))
                        } else {
                            fail(format!(
                                "{interface} has {} , not {address}",
                                if have.is_empty() {
                                    "no address".to_string()
                                } else {
                                    have.join(", ")
                                }
                            ))
                        }
                    }
                    Err(e) => fail(e.to_string()),
                },
                Ok(out) => fail(format!("{interface}: {}", out.complaint())),
                Err(e) => fail(e),
            }
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
            timeout_s,
        } => {
            let args: Vec<&str> = argv.iter().map(String::as_str).collect();
            match run(host, &args, Duration::from_secs(*timeout_s)) {
                Ok(out) if out.success() => match output_matches {
                    None => pass(format!("`{}` exited 0", argv.join(" "))),
                    // `^` and `$` match at line boundaries.
                    Some(re) => match regex_lite::Regex::new(&format!("(?m){re}")) {
                        Ok(r) if r.is_match(&out.stdout_text()) => {
                            pass(format!("`{}` output matches /{re}/", argv.join(" ")))
                        }
                        Ok(_) => fail(format!(
                            "`{}` output does not match /{re}/: {}",
                            argv.join(" "),
                            out.stdout_text()
                                .lines()
                                .take(3)
                                .collect::<Vec<_>>()
                                .join(" / ")
                        )),
                        Err(e) => fail(format!("output_matches: {e}")),
                    },
                },
                Ok(out) => fail(format!("`{}`: {}", argv.join(" "), out.complaint())),
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
    }
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

fn disk_free(host: &dyn Host, by_id: &str) -> Outcome {
    let link = if by_id.starts_with('/') {
        by_id.to_string()
    } else {
        format!("/dev/disk/by-id/{by_id}")
    };
    let target = match host.link(&link) {
        Ok(t) => t,
        Err(_) => {
            return fail(format!(
                "{link} does not exist (no disk with that stable id)"
            ));
        }
    };
    let kernel = target.rsplit('/').next().unwrap_or("").to_string();
    let devices = match storage::block_devices(host) {
        Ok(d) => d,
        Err(e) => return fail(format!("listing block devices: {e}")),
    };
    let Some(disk) = devices.iter().find(|d| d.name == kernel) else {
        return fail(format!(
            "{link} points at {kernel}, which lsblk does not list as a disk"
        ));
    };
    let mounts = disk.all_mountpoints();
    if mounts.contains(&"/") {
        return fail(format!(
            "{kernel} ({by_id}) holds / : it is the system disk"
        ));
    }
    if !mounts.is_empty() {
        return fail(format!(
            "{kernel} ({by_id}) is in use: mounted at {} (the disk or a partition)",
            mounts.join(", ")
        ));
    }
    pass(format!(
        "{kernel} ({by_id}) is present, not mounted, no mounted partition"
    ))
}
