//! Memory: the total from `/proc/meminfo` and the modules from `dmidecode -t 17` (a maker
//! left as a JEDEC code read as its name, the code kept in `manufacturer_id`).

use serde_json::json;

use crate::collector::{Collected, Collector, Problem, tool};
use crate::host::Host;
use crate::parse::{dmidecode, jedec, proc};

pub struct Memory;

impl Collector for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let meminfo = host
            .read_text("/proc/meminfo")
            .ok_or_else(|| Problem::Skipped("/proc/meminfo is not readable".into()))?;
        let m = proc::meminfo(&meminfo).map_err(|e| Problem::Failed(e.to_string()))?;
        let kb = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let mut section = json!({
            "total_kib": kb("MemTotal"),
            "available_kib": kb("MemAvailable"),
            "swap_total_kib": kb("SwapTotal"),
            "hugepages_total": kb("HugePages_Total"),
        });
        match tool(host, "dmidecode", &["-t", "17"])
            .and_then(|t| dmidecode::parse(&t).map_err(|e| Problem::Failed(e.to_string())))
        {
            Ok(records) => {
                let dimms: Vec<_> = dmidecode::of_type(&records, 17)
                    .map(|r| {
                        // Firmware that leaves the maker as a JEDEC code: its name, the code
                        // alongside.
                        let raw = r.value("Manufacturer");
                        let manufacturer_id = raw.clone().filter(|m| jedec::is_code(m));
                        let manufacturer = raw.map(|m| {
                            jedec::manufacturer(&m).map(str::to_string).unwrap_or(m)
                        });
                        json!({
                            "locator": r.value("Locator"),
                            "bank": r.value("Bank Locator"),
                            "size_mib": r.get("Size").and_then(dmidecode::size_mib),
                            "type": r.value("Type"),
                            "speed": r.value("Speed"),
                            "configured_speed": r.value("Configured Memory Speed").or_else(|| r.value("Configured Clock Speed")),
                            "manufacturer": manufacturer,
                            "manufacturer_id": manufacturer_id,
                            "serial": r.value("Serial Number"),
                            "part_number": r.value("Part Number"),
                        })
                    })
                    .collect();
                let populated = dimms.iter().filter(|d| !d["size_mib"].is_null()).count();
                section["slots"] = json!(dimms.len());
                section["populated"] = json!(populated);
                section["dimms"] = json!(dimms);
            }
            // The total is known; the modules are not (no dmidecode, no root, no tables).
            Err(p) => section["dimms_error"] = json!(p.to_string()),
        }
        Ok(Collected {
            section,
            findings: vec![],
        })
    }
}
