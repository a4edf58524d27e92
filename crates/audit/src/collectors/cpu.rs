//! Processors: `lscpu -J`, or `/proc/cpuinfo`; and one record per socket from SMBIOS
//! (`dmidecode -t 4`: model, status, cores, threads, speeds), when readable.

use serde_json::{Value, json};

use crate::collector::{Collected, Collector, Problem, tool};
use crate::host::Host;
use crate::parse::{dmidecode, lscpu, proc};

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
        match tool(host, "dmidecode", &["-t", "4"])
            .and_then(|t| dmidecode::parse(&t).map_err(|e| Problem::Failed(e.to_string())))
        {
            Ok(records) => {
                let processors: Vec<Value> =
                    dmidecode::of_type(&records, 4).map(processor).collect();
                section["processors"] = json!(processors);
            }
            // The rest is known; the sockets are not (no dmidecode, no root, no tables).
            Err(p) => section["processors_error"] = json!(p.to_string()),
        }
        Ok(Collected {
            section,
            findings: vec![],
        })
    }
}
