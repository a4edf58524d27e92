//! `nvidia-smi -q -x`: the driver and, per GPU, identity, memory, temperature, power, ECC
//! error counts, retired/remapped memory, PCIe link and MIG. Element names moved between
//! driver versions (`power_readings` → `gpu_power_readings`, `sram_uncorrectable` split into
//! parity/SECDED, `clocks_throttle_reasons` → `clocks_event_reasons`, …); every variant seen
//! in the fixtures is read. Also the memory repair state (remapped rows, remapping failure,
//! unrepairable memory, SRAM threshold, channel/TPC repair pending), the ECC and persistence
//! modes and the active clock event reasons.

use serde::Serialize;

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gpu {
    pub index: usize,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub serial: Option<String>,
    pub bus_id: Option<String>,
    pub vbios: Option<String>,
    pub memory_total_mib: Option<u64>,
    pub temperature_c: Option<f64>,
    pub power_draw_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    /// Uncorrected ECC errors since the driver loaded (volatile), summed over memories.
    pub ecc_uncorrected_volatile: Option<u64>,
    /// Uncorrected ECC errors over the GPU's life (aggregate).
    pub ecc_uncorrected_aggregate: Option<u64>,
    /// Pages (or rows) waiting to be retired or remapped at the next reset.
    pub memory_retirement_pending: bool,
    /// Rows remapped after uncorrectable errors (`remapped_row_unc`).
    pub remapped_rows_uncorrectable: Option<u64>,
    /// A row remapping failed: the GPU needs service, a reset does not fix it.
    pub row_remapping_failed: bool,
    /// Memory errors the GPU cannot repair.
    pub unrepairable_memory: bool,
    /// Uncorrectable SRAM errors past the threshold at which the GPU needs service.
    pub sram_threshold_exceeded: bool,
    /// A memory channel repair waiting for the next reset.
    pub channel_repair_pending: bool,
    /// A TPC repair waiting for the next reset.
    pub tpc_repair_pending: bool,
    /// ECC now (`Enabled`, `Disabled`; `None` on GPUs without ECC) and after the next reset.
    pub ecc_mode: Option<String>,
    pub ecc_mode_pending: Option<String>,
    /// `Enabled` or `Disabled`.
    pub persistence_mode: Option<String>,
    /// The active clock event (throttle) reasons, by the XML's names without their prefix:
    /// `gpu_idle`, `sw_power_cap`, `hw_slowdown`, `hw_thermal_slowdown`,
    /// `hw_power_brake_slowdown`, `sw_thermal_slowdown`, …
    pub clocks_event_reasons: Vec<String>,
    pub pcie_gen_current: Option<u32>,
    pub pcie_gen_max: Option<u32>,
    pub pcie_width_current: Option<u32>,
    pub pcie_width_max: Option<u32>,
    pub mig_mode: Option<String>,
    pub mig_devices: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub driver_version: Option<String>,
    pub cuda_version: Option<String>,
    pub gpus: Vec<Gpu>,
}

type Node<'a, 'i> = roxmltree::Node<'a, 'i>;

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

fn at<'a, 'i>(n: Node<'a, 'i>, path: &[&str]) -> Option<Node<'a, 'i>> {
    path.iter().try_fold(n, |n, p| child(n, p))
}

fn text(n: Node, path: &[&str]) -> Option<String> {
    at(n, path)
        .and_then(|c| c.text())
        .and_then(super::meaningful)
}

/// The number at the start of `52 C`, `145.45 W`, `81559 MiB`, `16x`.
fn number(s: &str) -> Option<f64> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(s.len());
    s[..end].parse().ok().filter(|v: &f64| v.is_finite())
}

fn num(n: Node, path: &[&str]) -> Option<f64> {
    text(n, path).and_then(|t| number(&t))
}

/// The sum of every uncorrectable counter under `n` (any element whose name says
/// `uncorr`, and the `double_bit` counters of old drivers); `None` when none is a number.
fn uncorrected(n: Node) -> Option<u64> {
    let mut sum: Option<u64> = None;
    for d in n.descendants().filter(|d| d.is_element()) {
        let tag = d.tag_name().name();
        let counted = tag.contains("uncorr")
            || (tag == "total" && d.parent().is_some_and(|p| p.has_tag_name("double_bit")));
        if !counted || d.children().any(|c| c.is_element()) {
            continue;
        }
        if let Some(v) = d.text().and_then(|t| t.trim().parse::<u64>().ok()) {
            sum = Some(sum.unwrap_or(0).saturating_add(v));
        }
    }
    sum
}

fn yes(n: Node, path: &[&str]) -> bool {
    text(n, path).is_some_and(|t| t.eq_ignore_ascii_case("yes"))
}

/// Whether an element named `tag` anywhere under `n` says `Yes` (the repair flags moved
/// between `ecc_errors` and its `aggregate` across drivers).
fn any_yes(n: Node, tag: &str) -> bool {
    n.descendants().any(|d| {
        d.has_tag_name(tag)
            && d.text()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("yes"))
    })
}

/// The active reasons of `clocks_event_reasons` (`clocks_throttle_reasons` before driver
/// 535), without the `clocks_event_reason_` / `clocks_throttle_reason_` prefix.
fn clock_reasons(g: Node) -> Vec<String> {
    let Some(r) = child(g, "clocks_event_reasons").or_else(|| child(g, "clocks_throttle_reasons"))
    else {
        return Vec::new();
    };
    r.children()
        .filter(|c| c.is_element())
        .filter(|c| {
            c.text()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("active"))
        })
        .map(|c| {
            let tag = c.tag_name().name();
            tag.strip_prefix("clocks_event_reason_")
                .or_else(|| tag.strip_prefix("clocks_throttle_reason_"))
                .unwrap_or(tag)
                .to_string()
        })
        .collect()
}

/// The text report's name of a clock event reason, as the XML names it.
fn clock_reason_name(text: &str) -> String {
    match text {
        "Idle" => "gpu_idle".to_string(),
        "Display Clock Setting" => "display_clocks_setting".to_string(),
        other => other.to_ascii_lowercase().replace(' ', "_"),
    }
}

pub fn parse(xml: &str) -> Result<Report, ParseError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, opts)
        .map_err(|e| ParseError::new("nvidia-smi", e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name("nvidia_smi_log") {
        return Err(ParseError::new(
            "nvidia-smi",
            format!(
                "root element <{}>, expected <nvidia_smi_log>",
                root.tag_name().name()
            ),
        ));
    }
    let gpus = root
        .children()
        .filter(|c| c.has_tag_name("gpu"))
        .enumerate()
        .map(|(index, g)| Gpu {
            index,
            name: text(g, &["product_name"]),
            uuid: text(g, &["uuid"]),
            serial: text(g, &["serial"]),
            bus_id: g
                .attribute("id")
                .map(str::to_string)
                .or_else(|| text(g, &["pci", "pci_bus_id"])),
            vbios: text(g, &["vbios_version"]),
            memory_total_mib: num(g, &["fb_memory_usage", "total"]).map(|v| v as u64),
            temperature_c: num(g, &["temperature", "gpu_temp"]),
            power_draw_w: num(g, &["gpu_power_readings", "instant_power_draw"])
                .or_else(|| num(g, &["gpu_power_readings", "average_power_draw"]))
                .or_else(|| num(g, &["gpu_power_readings", "power_draw"]))
                .or_else(|| num(g, &["power_readings", "power_draw"])),
            power_limit_w: num(g, &["gpu_power_readings", "current_power_limit"])
                .or_else(|| num(g, &["gpu_power_readings", "power_limit"]))
                .or_else(|| num(g, &["power_readings", "power_limit"])),
            ecc_uncorrected_volatile: at(g, &["ecc_errors", "volatile"]).and_then(uncorrected),
            ecc_uncorrected_aggregate: at(g, &["ecc_errors", "aggregate"]).and_then(uncorrected),
            memory_retirement_pending: yes(g, &["retired_pages", "pending_retirement"])
                || yes(g, &["retired_pages", "pending_blacklist"])
                || yes(g, &["remapped_rows", "remapped_row_pending"]),
            // A count, read raw: `0` is a value here, not a placeholder.
            remapped_rows_uncorrectable: at(g, &["remapped_rows", "remapped_row_unc"])
                .and_then(|c| c.text())
                .and_then(|t| t.trim().parse::<u64>().ok()),
            row_remapping_failed: yes(g, &["remapped_rows", "remapped_row_failure"]),
            unrepairable_memory: any_yes(g, "unrepairable_memory"),
            sram_threshold_exceeded: any_yes(g, "sram_threshold_exceeded"),
            channel_repair_pending: any_yes(g, "channel_repair_pending"),
            tpc_repair_pending: any_yes(g, "tpc_repair_pending"),
            ecc_mode: text(g, &["ecc_mode", "current_ecc"]),
            ecc_mode_pending: text(g, &["ecc_mode", "pending_ecc"]),
            persistence_mode: text(g, &["persistence_mode"]),
            clocks_event_reasons: clock_reasons(g),
            pcie_gen_current: num(
                g,
                &["pci", "pci_gpu_link_info", "pcie_gen", "current_link_gen"],
            )
            .map(|v| v as u32),
            pcie_gen_max: num(g, &["pci", "pci_gpu_link_info", "pcie_gen", "max_link_gen"])
                .map(|v| v as u32),
            pcie_width_current: num(
                g,
                &[
                    "pci",
                    "pci_gpu_link_info",
                    "link_widths",
                    "current_link_width",
                ],
            )
            .map(|v| v as u32),
            pcie_width_max: num(
                g,
                &["pci", "pci_gpu_link_info", "link_widths", "max_link_width"],
            )
            .map(|v| v as u32),
            mig_mode: text(g, &["mig_mode", "current_mig"]),
            mig_devices: child(g, "mig_devices")
                .map(|m| {
                    m.children()
                        .filter(|c| c.has_tag_name("mig_device"))
                        .count()
                })
                .unwrap_or(0),
        })
        .collect();
    Ok(Report {
        driver_version: text(root, &["driver_version"]),
        cuda_version: text(root, &["cuda_version"]),
        gpus,
    })
}

/// `nvidia-smi -q` as text (the fallback when the XML is unavailable or unparsable): an
/// indented tree of `Key : Value` lines under one `GPU <bus id>` header per GPU. Returns
/// the same report, from the fields whose paths the text format uses.
pub fn parse_text(text: &str) -> Result<Report, ParseError> {
    if !text.contains("NVSMI LOG") {
        return Err(ParseError::new("nvidia-smi", "no `NVSMI LOG` header"));
    }
    let top = |key: &str| -> Option<String> {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(" : ").or_else(|| l.split_once(':'))?;
            (k.trim() == key && !l.starts_with(' '))
                .then(|| v.trim())
                .and_then(super::meaningful)
        })
    };
    // Per GPU: `(path joined with '/', value)`.
    let mut gpus: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        if let Some(bus) = line.strip_prefix("GPU ") {
            gpus.push((bus.trim().to_string(), Vec::new()));
            stack.clear();
            continue;
        }
        let Some((_, fields)) = gpus.last_mut() else {
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path = |k: &str| {
            let mut p: Vec<&str> = stack.iter().map(|(_, s)| s.as_str()).collect();
            p.push(k);
            p.join("/")
        };
        match line.split_once(" : ").or_else(|| line.split_once(':')) {
            Some((k, v)) if !v.trim().is_empty() || line.contains(" : ") => {
                fields.push((path(k.trim()), v.trim().to_string()));
            }
            _ => stack.push((indent, line.trim().trim_end_matches(':').to_string())),
        }
    }
    let gpus = gpus
        .into_iter()
        .enumerate()
        .map(|(index, (bus, f))| {
            let get = |p: &str| {
                f.iter()
                    .find(|(k, _)| k == p)
                    .and_then(|(_, v)| super::meaningful(v))
            };
            let num = |p: &str| get(p).and_then(|v| number(&v));
            let sum = |prefix: &str| -> Option<u64> {
                let vals: Vec<u64> = f
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with(prefix)
                            && (k.contains("Uncorr") || k.ends_with("Double Bit/Total"))
                    })
                    .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
                    .collect();
                (!vals.is_empty()).then(|| vals.iter().sum())
            };
            let yes = |p: &str| get(p).is_some_and(|v| v.eq_ignore_ascii_case("yes"));
            // A flag wherever it sits (`ECC Errors/…` or `ECC Errors/Aggregate/…`).
            let flag = |name: &str| {
                f.iter().any(|(k, v)| {
                    (k == name || k.ends_with(&format!("/{name}")))
                        && v.trim().eq_ignore_ascii_case("yes")
                })
            };
            let clocks_event_reasons = f
                .iter()
                .filter_map(|(k, v)| {
                    let reason = k
                        .strip_prefix("Clocks Event Reasons/")
                        .or_else(|| k.strip_prefix("Clocks Throttle Reasons/"))?;
                    v.trim()
                        .eq_ignore_ascii_case("active")
                        .then(|| clock_reason_name(reason.rsplit('/').next().unwrap_or(reason)))
                })
                .collect();
            Gpu {
                index,
                name: get("Product Name"),
                uuid: get("GPU UUID"),
                serial: get("Serial Number"),
                bus_id: Some(bus),
                vbios: get("VBIOS Version"),
                memory_total_mib: num("FB Memory Usage/Total").map(|v| v as u64),
                temperature_c: num("Temperature/GPU Current Temp"),
                // The XML's `instant_power_draw` is "Instantaneous Power Draw" here.
                power_draw_w: num("GPU Power Readings/Instantaneous Power Draw")
                    .or_else(|| num("GPU Power Readings/Instant Power Draw"))
                    .or_else(|| num("GPU Power Readings/Average Power Draw"))
                    .or_else(|| num("GPU Power Readings/Power Draw"))
                    .or_else(|| num("Power Readings/Power Draw")),
                power_limit_w: num("GPU Power Readings/Current Power Limit")
                    .or_else(|| num("Power Readings/Power Limit")),
                ecc_uncorrected_volatile: sum("ECC Errors/Volatile/"),
                ecc_uncorrected_aggregate: sum("ECC Errors/Aggregate/"),
                memory_retirement_pending: yes("Retired Pages/Pending Page Blacklist")
                    || yes("Retired Pages/Pending Page Retirement")
                    || yes("Remapped Rows/Pending"),
                remapped_rows_uncorrectable: f
                    .iter()
                    .find(|(k, _)| k == "Remapped Rows/Uncorrectable Error")
                    .and_then(|(_, v)| v.trim().parse::<u64>().ok()),
                row_remapping_failed: yes("Remapped Rows/Remapping Failure Occurred"),
                unrepairable_memory: flag("Unrepairable Memory"),
                sram_threshold_exceeded: flag("SRAM Threshold Exceeded"),
                channel_repair_pending: flag("Channel Repair Pending"),
                tpc_repair_pending: flag("TPC Repair Pending"),
                ecc_mode: get("ECC Mode/Current"),
                ecc_mode_pending: get("ECC Mode/Pending"),
                persistence_mode: get("Persistence Mode"),
                clocks_event_reasons,
                pcie_gen_current: num("PCI/GPU Link Info/PCIe Generation/Current")
                    .map(|v| v as u32),
                pcie_gen_max: num("PCI/GPU Link Info/PCIe Generation/Max").map(|v| v as u32),
                pcie_width_current: num("PCI/GPU Link Info/Link Width/Current").map(|v| v as u32),
                pcie_width_max: num("PCI/GPU Link Info/Link Width/Max").map(|v| v as u32),
                mig_mode: get("MIG Mode/Current"),
                mig_devices: 0,
            }
        })
        .collect();
    Ok(Report {
        driver_version: top("Driver Version"),
        cuda_version: top("CUDA Version"),
        gpus,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn minimal_and_malformed() {
        let r = super::parse("<nvidia_smi_log><driver_version>580.1</driver_version><gpu id=\"00000000:00:06.0\"><product_name>X</product_name><ecc_errors><volatile><dram_uncorrectable>2</dram_uncorrectable><sram_uncorrectable_parity>1</sram_uncorrectable_parity><dram_correctable>9</dram_correctable></volatile></ecc_errors><pci><pci_gpu_link_info><link_widths><current_link_width>8x</current_link_width><max_link_width>16x</max_link_width></link_widths></pci_gpu_link_info></pci></gpu></nvidia_smi_log>").unwrap();
        let g = &r.gpus[0];
        assert_eq!(g.ecc_uncorrected_volatile, Some(3));
        assert_eq!(
            (g.pcie_width_current, g.pcie_width_max),
            (Some(8), Some(16))
        );
        assert_eq!(g.bus_id.as_deref(), Some("00000000:00:06.0"));
        assert!(super::parse("<nvidia_smi_log><gpu>").is_err());
        assert!(super::parse("<other/>").is_err());
        assert!(super::parse("").is_err());
    }
}
