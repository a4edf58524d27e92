//! Processors: `lscpu -J`, or `/proc/cpuinfo`; and one record per socket from SMBIOS
//! (`dmidecode -t 4`: model, status, cores, threads, speeds), when readable.
//!
//! Findings from the socket records: a populated socket disabled by the BIOS (a POST error)
//! is a failure, one disabled by the user in BIOS setup a warning, and a usable socket with
//! fewer cores enabled than it has a warning. An unpopulated socket is not a finding (a
//! one-processor build of a two-socket board); `cpu_sockets` checks the expected count.

use serde_json::{Value, json};

use crate::collector::{Collected, Collector, Finding, Problem, Severity, tool};
use crate::collectors::finding;
use crate::host::Host;
use crate::parse::{dmidecode, lscpu, proc};

/// A socket's state from its SMBIOS status (dmidecode prints `Unpopulated`, or `Populated, `
/// and one of `Unknown`, `Enabled`, `Disabled By User`, `Disabled By BIOS`, `Idle`, `Other`,
/// the processor status values of SMBIOS type 4, offset 18h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketState {
    Unpopulated,
    Enabled,
    /// "CPU is Idle, waiting to be enabled": how some firmware (HP ProLiant Gen8) reports
    /// the processors other than the boot one on a healthy machine; the OS starts them.
    Idle,
    /// Disabled in BIOS setup.
    DisabledByUser,
    /// Disabled by the BIOS after a POST error.
    DisabledByBios,
    /// `Unknown`, `Other`, out of spec, or no status at all.
    Unknown,
}

impl SocketState {
    pub fn of(status: Option<&str>) -> SocketState {
        let Some(s) = status.map(str::trim) else {
            return SocketState::Unknown;
        };
        if s.eq_ignore_ascii_case("Unpopulated") {
            return SocketState::Unpopulated;
        }
        let Some(rest) = s.strip_prefix("Populated") else {
            return SocketState::Unknown;
        };
        match rest
            .trim_start_matches([',', ' '])
            .to_ascii_lowercase()
            .as_str()
        {
            "enabled" => SocketState::Enabled,
            "idle" => SocketState::Idle,
            "disabled by user" => SocketState::DisabledByUser,
            "disabled by bios" => SocketState::DisabledByBios,
            _ => SocketState::Unknown,
        }
    }

    /// Whether the socket's processor is in use (enabled, or idle until the OS starts it).
    pub fn usable(self) -> bool {
        matches!(self, SocketState::Enabled | SocketState::Idle)
    }

    pub fn populated(self) -> bool {
        self != SocketState::Unpopulated
    }
}

/// One socket as the findings and the `cpu_sockets` check see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    /// `Socket Designation` (`CPU2`), or `socket N` (its place in the table) without one.
    pub name: String,
    /// dmidecode's `Status` text, as printed.
    pub status: Option<String>,
    pub state: SocketState,
    pub core_count: Option<u64>,
    pub core_enabled: Option<u64>,
}

/// The sockets of SMBIOS type 4 records, in table order.
pub fn sockets(records: &[dmidecode::Record]) -> Vec<Socket> {
    dmidecode::of_type(records, 4)
        .enumerate()
        .map(|(i, r)| {
            let count = |k: &str| r.get(k).and_then(|v| v.trim().parse::<u64>().ok());
            let status = r.get("Status").map(|s| s.trim().to_string());
            Socket {
                name: r
                    .value("Socket Designation")
                    .unwrap_or_else(|| format!("socket {}", i + 1)),
                state: SocketState::of(status.as_deref()),
                status,
                core_count: count("Core Count"),
                core_enabled: count("Core Enabled"),
            }
        })
        .collect()
}

/// The findings of the socket records (see the module's documentation).
pub fn socket_findings(sockets: &[Socket]) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in sockets {
        let status = s.status.as_deref().unwrap_or("no status");
        match s.state {
            SocketState::DisabledByBios => out.push(finding(
                Severity::Failure,
                "cpu",
                "cpu.socket_disabled",
                format!(
                    "{}: {status}: the BIOS disabled this processor (a POST error); it is not in use",
                    s.name
                ),
            )),
            SocketState::DisabledByUser => out.push(finding(
                Severity::Warning,
                "cpu",
                "cpu.socket_disabled_by_user",
                format!(
                    "{}: {status}: disabled in BIOS setup; its cores are not in use",
                    s.name
                ),
            )),
            state if state.usable() => {
                if let (Some(count), Some(enabled)) = (s.core_count, s.core_enabled)
                    && enabled < count
                {
                    out.push(finding(
                        Severity::Warning,
                        "cpu",
                        "cpu.cores_disabled",
                        format!("{}: {enabled} of {count} cores enabled", s.name),
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// `4000 MHz` → 4000.
fn mhz(text: &str) -> Option<u64> {
    text.strip_suffix(" MHz")?.trim().parse().ok()
}

/// One socket of SMBIOS type 4 (an unpopulated one too: `populated` false).
fn processor(r: &dmidecode::Record) -> Value {
    let count = |k: &str| r.get(k).and_then(|v| v.trim().parse::<u64>().ok());
    let status = r.value("Status");
    json!({
        "socket": r.value("Socket Designation"),
        "populated": status.as_deref().map(|s| s.starts_with("Populated")),
        "status": status,
        "manufacturer": r.value("Manufacturer"),
        "version": r.value("Version"),
        "family": r.value("Family"),
        "signature": r.value("Signature"),
        "core_count": count("Core Count"),
        "core_enabled": count("Core Enabled"),
        "thread_count": count("Thread Count"),
        "max_speed_mhz": r.get("Max Speed").and_then(mhz),
        "current_speed_mhz": r.get("Current Speed").and_then(mhz),
        "serial": r.value("Serial Number"),
        "part_number": r.value("Part Number"),
    })
}

pub struct Cpu;

impl Collector for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let mut section = match tool(host, "lscpu", &["-J"]) {
            Ok(text) => {
                let f = lscpu::parse(&text).map_err(|e| Problem::Failed(e.to_string()))?;
                let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let num = |k: &str| get(k).and_then(|v| v.trim().parse::<u64>().ok());
                let flags = get("Flags").unwrap_or_default();
                json!({
                    "source": "lscpu",
                    "architecture": get("Architecture"),
                    "vendor": get("Vendor ID"),
                    "model": get("Model name"),
                    "cpus": num("CPU(s)"),
                    "sockets": num("Socket(s)"),
                    "cores_per_socket": num("Core(s) per socket"),
                    "threads_per_core": num("Thread(s) per core"),
                    "numa_nodes": num("NUMA node(s)"),
                    "virtualization": get("Virtualization"),
                    "hypervisor": get("Hypervisor vendor"),
                    "virtualization_flags": flags.split_whitespace().any(|f| f == "vmx" || f == "svm"),
                })
            }
            Err(problem) => {
                let Some(text) = host.read_text("/proc/cpuinfo") else {
                    return Err(problem);
                };
                let cpus = proc::cpuinfo(&text).map_err(|e| Problem::Failed(e.to_string()))?;
                let get = |k: &str| {
                    cpus.first()
                        .and_then(|c| c.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
                };
                let mut sockets: Vec<&str> = cpus
                    .iter()
                    .filter_map(|c| {
                        c.iter()
                            .find(|(n, _)| n == "physical id")
                            .map(|(_, v)| v.as_str())
                    })
                    .collect();
                sockets.sort();
                sockets.dedup();
                let flags = get("flags").unwrap_or_default();
                json!({
                    "source": "cpuinfo",
                    "lscpu": problem.to_string(),
                    "vendor": get("vendor_id"),
                    "model": get("model name"),
                    "cpus": cpus.len(),
                    "sockets": (!sockets.is_empty()).then_some(sockets.len()),
                    "virtualization_flags": flags.split_whitespace().any(|f| f == "vmx" || f == "svm"),
                })
            }
        };
        let mut findings = Vec::new();
        match tool(host, "dmidecode", &["-t", "4"])
            .and_then(|t| dmidecode::parse(&t).map_err(|e| Problem::Failed(e.to_string())))
        {
            Ok(records) => {
                let processors: Vec<Value> =
                    dmidecode::of_type(&records, 4).map(processor).collect();
                section["processors"] = json!(processors);
                findings = socket_findings(&sockets(&records));
            }
            // The rest is known; the sockets are not (no dmidecode, no root, no tables).
            Err(p) => section["processors_error"] = json!(p.to_string()),
        }
        Ok(Collected { section, findings })
    }
}
