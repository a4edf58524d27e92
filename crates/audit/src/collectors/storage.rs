//! Storage: `lsblk -J -b` (disks, partitions, mountpoints, children), the stable
//! `/dev/disk/by-id` names of each disk, `smartctl -j -a` per disk, and for NVMe
//! `nvme smart-log`/`id-ctrl -o json`. Findings: a failing SMART verdict, an NVMe critical
//! warning, media errors or grown defects, a disk without a stable by-id name.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::collector::{Collected, Collector, Problem, Severity, tool};
use crate::collectors::finding;
use crate::host::Host;
use crate::parse::{lsblk, nvme, smartctl};

pub struct Storage;

const COLUMNS: &str =
    "NAME,KNAME,PATH,TYPE,SIZE,MODEL,SERIAL,WWN,TRAN,ROTA,RM,RO,MOUNTPOINTS,FSTYPE";

/// Kernel name → its by-id names (sorted), from the links in /dev/disk/by-id.
pub fn by_id(host: &dyn Host) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in host.list("/dev/disk/by-id").unwrap_or_default() {
        if let Ok(target) = host.link(&format!("/dev/disk/by-id/{name}")) {
            let kernel = target.rsplit('/').next().unwrap_or("").to_string();
            map.entry(kernel).or_default().push(name);
        }
    }
    for v in map.values_mut() {
        v.sort();
    }
    map
}

/// `smartctl -j -a DEVICE`. Its exit status is a bit mask that is non-zero for many
/// conditions while the report is still printed, so the output is parsed whatever the status
/// (as JSON, or as text from a smartctl older than 7.0); only bits 0-1 (bad command line,
/// device could not be opened) without output are errors.
fn smart(host: &dyn Host, path: &str) -> Result<smartctl::Smart, Problem> {
    let out = match host.run(
        "smartctl",
        &["-j", "-a", path],
        crate::collector::COMMAND_TIMEOUT,
    ) {
        Ok(o) => o,
        Err(crate::host::HostError::NotFound(_)) => {
            return Err(Problem::Skipped("smartctl is not installed".into()));
        }
        Err(e) => return Err(Problem::Failed(e.to_string())),
    };
    if out.status == Some(127) {
        return Err(Problem::Skipped("smartctl is not installed".into()));
    }
    let text = out.stdout_text();
    if text.trim().is_empty() {
        return Err(Problem::Failed(format!(
            "smartctl {path}: {}",
            out.complaint()
        )));
    }
    let s = smartctl::parse(&text)
        .or_else(|e| smartctl::parse_text(&text).map_err(|_| e))
        .map_err(|e| Problem::Failed(e.to_string()))?;
    // Nothing read from the device (a virtual disk, an unknown bridge): its complaint.
    if s.model.is_none() && s.passed.is_none() && !s.messages.is_empty() {
        return Err(Problem::Failed(s.messages.join("; ")));
    }
    Ok(s)
}

/// Devices that are not hardware (loop, zram, ram disks).
fn virtual_device(name: &str) -> bool {
    ["loop", "zram", "ram", "nbd", "dm-", "md"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The devices lsblk lists (tried with `MOUNTPOINTS`, then with the older `MOUNTPOINT`).
pub fn block_devices(host: &dyn Host) -> Result<Vec<lsblk::BlockDevice>, Problem> {
    let text = tool(host, "lsblk", &["-J", "-b", "-o", COLUMNS]).or_else(|_| {
        tool(
            host,
            "lsblk",
            &[
                "-J",
                "-b",
                "-o",
                &COLUMNS.replace("MOUNTPOINTS", "MOUNTPOINT"),
            ],
        )
    })?;
    lsblk::parse(&text).map_err(|e| Problem::Failed(e.to_string()))
}

impl Collector for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let devices = block_devices(host)?;
        let ids = by_id(host);
        let mut findings = Vec::new();
        let mut disks = Vec::new();
        for d in devices
            .iter()
            .filter(|d| d.kind == "disk" && !virtual_device(&d.name))
        {
            let mut disk = serde_json::to_value(d).unwrap_or(Value::Null);
            let stable = ids.get(&d.name).cloned().unwrap_or_default();
            if stable.is_empty() {
                findings.push(finding(
                    Severity::Warning,
                    "storage",
                    "storage.no_stable_id",
                    format!(
                        "{}: no /dev/disk/by-id name (refer to it by a stable id, not {})",
                        d.name, d.path
                    ),
                ));
            }
            disk["by_id"] = json!(stable);
            disk["mounted"] = json!(!d.all_mountpoints().is_empty());
            match smart(host, &d.path) {
                Ok(s) => {
                    if s.passed == Some(false) {
                        findings.push(finding(
                            Severity::Failure,
                            "storage",
                            "storage.smart_failed",
                            format!(
                                "{}: SMART overall health FAILED ({})",
                                d.name,
                                s.model.clone().unwrap_or_default()
                            ),
                        ));
                    }
                    if let Some(n) = s.defects.filter(|n| *n > 0) {
                        findings.push(finding(
                            Severity::Warning,
                            "storage",
                            "storage.media_errors",
                            format!(
                                "{}: {n} reallocated sectors / grown defects / media errors",
                                d.name
                            ),
                        ));
                    }
                    disk["smart"] = serde_json::to_value(&s).unwrap_or(Value::Null);
                }
                Err(e) => disk["smart_error"] = json!(e.to_string()),
            }
            if d.name.starts_with("nvme") {
                match tool(host, "nvme", &["smart-log", &d.path, "-o", "json"]).and_then(|t| {
                    nvme::parse_smart_log(&t).map_err(|e| Problem::Failed(e.to_string()))
                }) {
                    Ok(log) => {
                        if log.critical_warning != 0 {
                            findings.push(finding(
                                Severity::Failure,
                                "storage",
                                "storage.nvme_critical_warning",
                                format!(
                                    "{}: NVMe critical warning 0x{:02x}",
                                    d.name, log.critical_warning
                                ),
                            ));
                        }
                        disk["nvme_smart_log"] = serde_json::to_value(&log).unwrap_or(Value::Null);
                    }
                    Err(e) => disk["nvme_error"] = json!(e.to_string()),
                }
                if let Ok(c) =
                    tool(host, "nvme", &["id-ctrl", &d.path, "-o", "json"]).and_then(|t| {
                        nvme::parse_id_ctrl(&t).map_err(|e| Problem::Failed(e.to_string()))
                    })
                {
                    disk["nvme_controller"] = serde_json::to_value(&c).unwrap_or(Value::Null);
                }
            }
            disks.push(disk);
        }
        let root_disk = devices
            .iter()
            .find(|d| d.all_mountpoints().contains(&"/"))
            .map(|d| d.name.clone());
        Ok(Collected {
            section: json!({"disks": disks, "root_disk": root_disk}),
            findings,
        })
    }
}
