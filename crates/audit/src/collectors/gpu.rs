//! NVIDIA GPUs: `nvidia-smi -q -x`. Findings: uncorrected ECC errors since the driver loaded
//! (failure) or over the GPU's life (warning); memory the GPU cannot repair, a failed row
//! remapping, SRAM errors past the threshold (failures: the GPU needs service); rows remapped
//! after uncorrectable errors, pages/rows pending retirement or remapping, channel/TPC repairs
//! pending, ECC disabled, a hardware or thermal clock slowdown, a PCIe link narrower than its
//! maximum (warnings). (Link generation is not checked: GPUs lower it when idle.)

use serde_json::json;

use crate::collector::{Collected, Collector, Problem, Severity, tool};
use crate::collectors::finding;
use crate::host::Host;
use crate::parse::nvidia_smi;

pub struct Gpu;

/// The clock event reasons that mean trouble (heat, power delivery, a slowdown signal);
/// the others (idle, the power cap, application clocks, sync boost) are normal operation.
const SLOWDOWNS: &[&str] = &[
    "hw_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
    "sw_thermal_slowdown",
];

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
            if g.unrepairable_memory {
                findings.push(finding(
                    Severity::Failure,
                    "gpu",
                    "gpu.unrepairable_memory",
                    format!("{label}: memory errors the GPU cannot repair (the GPU needs service)"),
                ));
            }
            if g.row_remapping_failed {
                findings.push(finding(
                    Severity::Failure,
                    "gpu",
                    "gpu.row_remapping_failed",
                    format!(
                        "{label}: a memory row remapping failed (the GPU needs service; a reset does not fix it)"
                    ),
                ));
            }
            if g.sram_threshold_exceeded {
                findings.push(finding(
                    Severity::Failure,
                    "gpu",
                    "gpu.sram_threshold_exceeded",
                    format!(
                        "{label}: uncorrectable SRAM errors past NVIDIA's threshold (the GPU needs service)"
                    ),
                ));
            }
            if let Some(n) = g.remapped_rows_uncorrectable.filter(|n| *n > 0) {
                findings.push(finding(
                    Severity::Warning,
                    "gpu",
                    "gpu.remapped_rows_uncorrectable",
                    format!("{label}: {n} rows remapped after uncorrectable memory errors"),
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
            let repairs: Vec<&str> = [
                (g.channel_repair_pending, "channel"),
                (g.tpc_repair_pending, "TPC"),
            ]
            .into_iter()
            .filter_map(|(pending, what)| pending.then_some(what))
            .collect();
            if !repairs.is_empty() {
                findings.push(finding(
                    Severity::Warning,
                    "gpu",
                    "gpu.repair_pending",
                    format!(
                        "{label}: {} repair pending (reset the GPU)",
                        repairs.join(" and ")
                    ),
                ));
            }
            if g.ecc_mode
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case("disabled"))
            {
                let next = if g
                    .ecc_mode_pending
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case("enabled"))
                {
                    "enabled at the next reset"
                } else {
                    "`nvidia-smi -e 1`, then reset the GPU"
                };
                findings.push(finding(
                    Severity::Warning,
                    "gpu",
                    "gpu.ecc_disabled",
                    format!("{label}: ECC is disabled, memory errors go undetected ({next})"),
                ));
            }
            let slowdowns: Vec<&str> = g
                .clocks_event_reasons
                .iter()
                .map(String::as_str)
                .filter(|r| SLOWDOWNS.contains(r))
                .collect();
            if !slowdowns.is_empty() {
                findings.push(finding(
                    Severity::Warning,
                    "gpu",
                    "gpu.clocks_slowdown",
                    format!("{label}: clocks slowed down by {}", slowdowns.join(", ")),
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
