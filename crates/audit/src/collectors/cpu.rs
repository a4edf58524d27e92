//! Processors: `lscpu -J`, or `/proc/cpuinfo`.

use serde_json::json;

use crate::collector::{Collected, Collector, Problem, tool};
use crate::host::Host;
use crate::parse::{lscpu, proc};

pub struct Cpu;

impl Collector for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let section = match tool(host, "lscpu", &["-J"]) {
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
        Ok(Collected {
            section,
            findings: vec![],
        })
    }
}
