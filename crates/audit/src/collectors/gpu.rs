//! NVIDIA GPUs: `nvidia-smi -q -x`. Findings: uncorrected ECC errors since the driver loaded
//! (failure) or over the GPU's life (warning), memory pages/rows pending retirement or
//! remapping, a PCIe link narrower than its maximum. (Link generation is not checked: GPUs
//! lower it when idle.)

use serde_json::json;

use crate::collector::{Collected, Collector, Problem, Severity, tool};
use crate::collectors::finding;
use crate::host::Host;
use crate::parse::nvidia_smi;

pub struct Gpu;

impl Collector for Gpu {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let xml = tool(host, "nvidia-smi", &["-q", "-x"])?;
        let r = match nvidia_smi::parse(&xml) {
            Ok(r) => r,
            // The text report has the same fields.
            Err(e) => tool(host, "nvidia-smi", &["-q"])
                .ok()
                .and_then(|t| nvidia_smi::parse_text(&t).ok())
                .ok_or_else(|| Problem::Failed(e.to_string()))?,
        };
        let mut findings = Vec::new();
        for g in &r.gpus {
            let label = format!(
                "GPU {} {} ({})",
                g.index,
                g.name.clone().unwrap_or_default(),
                g.bus_id.clone().unwrap_or_default()
            );
            if let Some(n) = g.ecc_uncorrected_volatile.filter(|n| *n > 0) {
                findings.push(finding(
                    Severity::Failure,
                    "gpu",
                    "gpu.ecc_uncorrected",
                    format!("{label}: {n} uncorrected ECC errors since the driver loaded"),
                ));
            } else if let Some(n) = g.ecc_uncorrected_aggregate.filter(|n| *n > 0) {
                findings.push(finding(
                    Severity::Warning,
                    "gpu",
                    "gpu.ecc_uncorrected_lifetime",
                    format!("{label}: {n} uncorrected ECC errors over its life"),
                ));
            }
            if g.memory_retirement_pending {
                findings.push(finding(
                    Severity::Warning,
                    "gpu",
                    "gpu.memory_retirement_pending",
                    format!(
                        "{label}: memory pages/rows pending retirement or remapping (reset the GPU)"
                    ),
                ));
            }
            if let (Some(c), Some(m)) = (g.pcie_width_current, g.pcie_width_max)
                && c > 0
                && c < m
            {
                findings.push(finding(
                    Severity::Warning,
                    "gpu",
                    "gpu.pcie_width_degraded",
                    format!("{label}: PCIe link x{c}, maximum x{m}"),
                ));
            }
        }
        Ok(Collected {
            section: json!(r),
            findings,
        })
    }
}
