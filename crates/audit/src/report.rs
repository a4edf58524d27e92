//! The audit report: versioned JSON with the host's identity, each collector's status and
//! duration, the hardware sections, and a summary verdict with its findings.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::collector::{self, Collector, Finding, Run, Severity, Status};
use crate::host::Host;

/// The report format's version; bumped on incompatible changes.
pub const FORMAT: &str = "paddock-audit/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    /// Milliseconds since the epoch.
    pub collected_at: i64,
    pub duration_ms: u64,
    /// Where it was collected: `local` or `user@host:port`.
    pub host: String,
    pub identity: Identity,
    pub collectors: BTreeMap<String, Run>,
    /// One section per collector that ran (`null` for those skipped or failed).
    pub hardware: BTreeMap<String, Value>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Identity {
    pub hostname: Option<String>,
    pub machine_id: Option<String>,
    pub dmi_uuid: Option<String>,
    pub system_serial: Option<String>,
    pub board_serial: Option<String>,
    pub chassis_serial: Option<String>,
    /// MAC addresses of the interfaces (loopback and all-zero ones left out), sorted.
    pub macs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "WARNING")]
    Warning,
    #[serde(rename = "FAILED")]
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// `FAILED` with any failure finding; `WARNING` with any warning or a failed collector;
    /// `OK` otherwise (a skipped collector is not a problem of the host).
    pub verdict: Verdict,
    pub failures: usize,
    pub warnings: usize,
    pub findings: Vec<Finding>,
}

/// The summary of `findings` and collector runs.
pub fn summarize(findings: Vec<Finding>, runs: &BTreeMap<String, Run>) -> Summary {
    let mut findings = findings;
    for (name, run) in runs {
        if run.status == Status::Failed {
            findings.push(Finding {
                severity: Severity::Warning,
                collector: name.clone(),
                code: "collector.failed".into(),
                message: format!(
                    "collector {name} failed: {}",
                    run.error.clone().unwrap_or_default()
                ),
            });
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.collector.cmp(&b.collector))
    });
    let failures = findings
        .iter()
        .filter(|f| f.severity == Severity::Failure)
        .count();
    let warnings = findings.len() - failures;
    let verdict = if failures > 0 {
        Verdict::Failed
    } else if warnings > 0 {
        Verdict::Warning
    } else {
        Verdict::Ok
    };
    Summary {
        verdict,
        failures,
        warnings,
        findings,
    }
}

fn identity(host: &dyn Host, hardware: &BTreeMap<String, Value>) -> Identity {
    // The hardware sections are the collectors' JSON (each shaped by its tool's output, with
    // fields that may be absent on a given host): read leniently, by name.
    let sys = hardware.get("system").cloned().unwrap_or(Value::Null);
    let s = |a: &str, b: &str| sys[a][b].as_str().map(str::to_string);
    let mut macs: Vec<String> = hardware
        .get("network")
        .and_then(|n| n["interfaces"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|i| i["name"] != "lo")
        .filter_map(|i| i["mac"].as_str().map(str::to_string))
        .filter(|m| m != "00:00:00:00:00:00" && !m.is_empty())
        .collect();
    macs.sort();
    macs.dedup();
    Identity {
        hostname: host
            .read_text("/proc/sys/kernel/hostname")
            .or_else(|| host.read_text("/etc/hostname"))
            .filter(|h| !h.is_empty()),
        machine_id: host.read_text("/etc/machine-id").filter(|m| !m.is_empty()),
        dmi_uuid: s("system", "uuid"),
        system_serial: s("system", "serial"),
        board_serial: s("board", "serial"),
        chassis_serial: s("chassis", "serial"),
        macs,
    }
}

/// Runs `collectors` on `host` (in parallel, each within `limit`) and builds the report.
pub fn collect(
    host: Arc<dyn Host>,
    collectors: Vec<Arc<dyn Collector>>,
    limit: Duration,
) -> Report {
    let t0 = std::time::Instant::now();
    let collected_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let results = collector::run_all(host.clone(), collectors, limit);
    let mut runs = BTreeMap::new();
    let mut hardware = BTreeMap::new();
    let mut findings = Vec::new();
    for (name, run, c) in results {
        hardware.insert(name.to_string(), c.section);
        findings.extend(c.findings);
        runs.insert(name.to_string(), run);
    }
    let identity = identity(host.as_ref(), &hardware);
    Report {
        format: FORMAT.to_string(),
        collected_at,
        duration_ms: t0.elapsed().as_millis() as u64,
        host: host.describe(),
        identity,
        summary: summarize(findings, &runs),
        collectors: runs,
        hardware,
    }
}
