//! The running kernel: release, command line, loaded modules, `/dev/kvm`, IOMMU groups, the
//! OS release.

use serde_json::json;

use crate::collector::{Collected, Collector, Problem};
use crate::host::Host;
use crate::parse::proc;

pub struct Kernel;

impl Collector for Kernel {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let release = host
            .read_text("/proc/sys/kernel/osrelease")
            .ok_or_else(|| Problem::Skipped("/proc is not readable (not Linux?)".into()))?;
        let modules = host
            .read_text("/proc/modules")
            .map(|t| proc::modules(&t))
            .unwrap_or_default();
        let os = host.read_text("/etc/os-release").and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
        Ok(Collected {
            section: json!({
                "release": release,
                "os": os,
                "cmdline": host.read_text("/proc/cmdline"),
                "modules": modules,
                "kvm": host.exists("/dev/kvm"),
                "iommu_groups": host.list("/sys/kernel/iommu_groups").map(|g| g.len()).unwrap_or(0),
            }),
            findings: vec![],
        })
    }
}
