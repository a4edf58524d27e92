//! PCIe devices: `lspci -vmm -D -k` for names and drivers, `/sys/bus/pci/devices` for ids,
//! NUMA node, IOMMU group, link speed/width, and SR-IOV (a physical function's configured and
//! possible VF counts, a virtual function's physical function). A link below its maximum is a warning (link
//! speed is not checked for display/3D controllers, which lower it when idle).

use serde_json::{Value, json};

use crate::collector::{Collected, Collector, Problem, Severity, tool};
use crate::collectors::finding;
use crate::host::Host;
use crate::parse::lspci;

pub struct Pcie;

const SYS: &str = "/sys/bus/pci/devices";

/// `16.0 GT/s PCIe` → 16.0.
fn speed(s: &str) -> Option<f64> {
    s.split_whitespace().next()?.parse().ok()
}

impl Collector for Pcie {
    fn name(&self) -> &'static str {
        "pcie"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let named = match tool(host, "lspci", &["-vmm", "-D", "-k"]) {
            Ok(t) => Some(lspci::parse(&t).map_err(|e| Problem::Failed(e.to_string()))?),
            Err(Problem::Skipped(_)) => None,
            Err(p) => return Err(p),
        };
        let slots = host.list(SYS).unwrap_or_default();
        if named.is_none() && slots.is_empty() {
            return Err(Problem::Skipped(format!(
                "lspci is not installed and {SYS} is empty"
            )));
        }
        let mut all: Vec<String> = slots.clone();
        if let Some(n) = &named {
            all.extend(n.iter().map(|d| d.slot.clone()));
        }
        all.sort();
        all.dedup();
        let mut findings = Vec::new();
        let devices: Vec<Value> = all
            .iter()
            .map(|slot| {
                let f = |name: &str| host.read_text(&format!("{SYS}/{slot}/{name}"));
                let link_name = |name: &str| {
                    host.link(&format!("{SYS}/{slot}/{name}"))
                        .ok()
                        .and_then(|t| t.rsplit('/').next().map(str::to_string))
                };
                let n = named
                    .as_ref()
                    .and_then(|n| n.iter().find(|d| &d.slot == slot));
                let class = f("class");
                let (cur_speed, max_speed) = (f("current_link_speed"), f("max_link_speed"));
                let (cur_width, max_width) = (
                    f("current_link_width").and_then(|w| w.parse::<u32>().ok()),
                    f("max_link_width").and_then(|w| w.parse::<u32>().ok()),
                );
                let label = n
                    .map(|d| format!("{slot} {}", d.device))
                    .unwrap_or_else(|| slot.clone());
                if let (Some(c), Some(m)) = (cur_width, max_width)
                    && c > 0
                    && c < m
                {
                    findings.push(finding(
                        Severity::Warning,
                        "pcie",
                        "pcie.link_width_degraded",
                        format!("{label}: link width x{c}, maximum x{m}"),
                    ));
                }
                let display = class.as_deref().is_some_and(|c| c.starts_with("0x03"));
                if let (Some(c), Some(m)) = (
                    cur_speed.as_deref().and_then(speed),
                    max_speed.as_deref().and_then(speed),
                ) && c > 0.0
                    && c < m
                    && !display
                {
                    findings.push(finding(
                        Severity::Warning,
                        "pcie",
                        "pcie.link_speed_degraded",
                        format!("{label}: link speed {c} GT/s, maximum {m} GT/s"),
                    ));
                }
                json!({
                    "slot": slot,
                    "class": n.map(|d| d.class.clone()),
                    "class_id": class,
                    "vendor": n.map(|d| d.vendor.clone()),
                    "device": n.map(|d| d.device.clone()),
                    "vendor_id": f("vendor"),
                    "device_id": f("device"),
                    "subsystem_vendor": n.and_then(|d| d.subsystem_vendor.clone()),
                    "subsystem_device": n.and_then(|d| d.subsystem_device.clone()),
                    "driver": n.and_then(|d| d.driver.clone()).or_else(|| link_name("driver")),
                    "numa_node": f("numa_node").and_then(|v| v.parse::<i32>().ok()),
                    "iommu_group": link_name("iommu_group").and_then(|g| g.parse::<u32>().ok())
                        .or_else(|| n.and_then(|d| d.iommu_group)),
                    "link_speed": cur_speed,
                    "max_link_speed": max_speed,
                    "link_width": cur_width,
                    "max_link_width": max_width,
                    "sriov_numvfs": f("sriov_numvfs").and_then(|v| v.parse::<u32>().ok()),
                    "sriov_totalvfs": f("sriov_totalvfs").and_then(|v| v.parse::<u32>().ok()),
                    "physical_function": link_name("physfn"),
                })
            })
            .collect();
        Ok(Collected {
            section: json!({"devices": devices}),
            findings,
        })
    }
}
