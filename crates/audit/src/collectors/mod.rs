//! The collectors, in the order the report lists them (bee's order: board, cpu, memory,
//! storage, pcie, network, power, gpu, then the kernel).
//!
//! A section of the report is JSON by design (versioned with the report's `format`, shaped by
//! what each tool prints on a given host), so collectors build it by field name
//! (`section["dimms"] = json!(…)`) and read back what they built the same way; typed parsers
//! (`crate::parse`) read the tools' own output.

use std::sync::Arc;

use crate::collector::Collector;

pub mod cpu;
pub mod gpu;
pub mod kernel;
pub mod memory;
pub mod network;
pub mod pcie;
pub mod power;
pub mod storage;
pub mod system;

/// Every collector.
pub fn all() -> Vec<Arc<dyn Collector>> {
    vec![
        Arc::new(system::System),
        Arc::new(cpu::Cpu),
        Arc::new(memory::Memory),
        Arc::new(storage::Storage),
        Arc::new(pcie::Pcie),
        Arc::new(network::Network),
        Arc::new(power::Power),
        Arc::new(gpu::Gpu),
        Arc::new(kernel::Kernel),
    ]
}

/// The names, for `--help` and `--collectors` errors.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|c| c.name()).collect()
}

/// A finding of `collector`.
pub(crate) fn finding(
    severity: crate::collector::Severity,
    collector: &str,
    code: &str,
    message: String,
) -> crate::collector::Finding {
    crate::collector::Finding {
        severity,
        collector: collector.to_string(),
        code: code.to_string(),
        message,
    }
}
