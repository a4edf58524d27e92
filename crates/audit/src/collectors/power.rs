//! Power supplies and sensors through the BMC: `ipmitool sensor` and `ipmitool fru`. Silent
//! (skipped) on machines without an IPMI device. A sensor in a critical or non-recoverable
//! state is a failure, a non-critical one a warning.

use serde_json::json;

use crate::collector::{Collected, Collector, Problem, Severity, tool};
use crate::collectors::finding;
use crate::host::Host;
use crate::parse::ipmitool;

pub struct Power;

impl Collector for Power {
    fn name(&self) -> &'static str {
        "power"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        if !["/dev/ipmi0", "/dev/ipmi/0", "/dev/ipmidev/0"]
            .iter()
            .any(|p| host.exists(p))
        {
            return Err(Problem::Skipped("no IPMI device (/dev/ipmi0)".into()));
        }
        let sensors = ipmitool::parse_sensors(&tool(host, "ipmitool", &["sensor"])?)
            .map_err(|e| Problem::Failed(e.to_string()))?;
        let mut findings = Vec::new();
        for s in &sensors {
            let severity = match s.status.as_str() {
                "cr" | "nr" => Severity::Failure,
                "nc" => Severity::Warning,
                _ => continue,
            };
            findings.push(finding(
                severity,
                "power",
                "power.sensor_out_of_range",
                format!(
                    "{}: {} ({})",
                    s.name,
                    s.value
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "no reading".into()),
                    s.status
                ),
            ));
        }
        let fru = tool(host, "ipmitool", &["fru"])
            .map(|t| ipmitool::parse_fru(&t))
            .unwrap_or_default();
        let fru: Vec<serde_json::Value> = fru
            .into_iter()
            .map(|kv| {
                serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k, json!(v))).collect())
            })
            .collect();
        Ok(Collected {
            section: json!({"sensors": sensors, "fru": fru}),
            findings,
        })
    }
}
