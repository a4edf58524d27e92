//! Power supplies and sensors: the BMC's (`ipmitool sensor`, `ipmitool fru`, only with an IPMI
//! device) and the SMBIOS power supply records (`dmidecode -t 39`). Skipped when neither is
//! there. A sensor in a critical or non-recoverable state is a failure, a non-critical one a
//! warning. Each power supply is listed in `psus` with its model, wattage and status; one
//! that failed (SMBIOS `Critical`/`Non-recoverable`, or the BMC's discrete status with
//! failure or input lost asserted) is a failure, one degraded (`Non-critical`, predictive
//! failure, input out of range, configuration error) a warning.

use serde_json::{Value, json};

use crate::collector::{Collected, Collector, Problem, Severity, tool};
use crate::collectors::finding;
use crate::host::Host;
use crate::parse::{dmidecode, ipmitool};

pub struct Power;

/// A power supply's health: `ok`, `degraded`, `failed`, `absent` or `unknown`.
fn worse(a: &'static str, b: &'static str) -> &'static str {
    let rank = |s: &str| match s {
        "failed" => 4,
        "degraded" => 3,
        "ok" => 2,
        "absent" => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// An SMBIOS `System Power Supply` record: its fields and its health from `Status` (`Present,
/// OK`, `Present, Critical`, `Not Present`, …).
fn smbios_psu(r: &dmidecode::Record) -> (Value, &'static str) {
    let status_text = r.value("Status");
    let status = match status_text.as_deref() {
        None => "unknown",
        Some(s) if s.to_ascii_lowercase().starts_with("not present") => "absent",
        Some(s) => match s.rsplit(',').next().map(|h| h.trim().to_ascii_lowercase()) {
            Some(h) if h == "ok" => "ok",
            Some(h) if h == "non-critical" => "degraded",
            Some(h) if h == "critical" || h == "non-recoverable" => "failed",
            _ => "unknown",
        },
    };
    let watts = r
        .value("Max Power Capacity")
        .and_then(|w| {
            w.strip_suffix(" W")
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .filter(|w| *w > 0);
    let psu = json!({
        "name": r.value("Name"),
        "location": r.value("Location"),
        "manufacturer": r.value("Manufacturer"),
        "model": r.value("Model Part Number"),
        "serial": r.value("Serial Number"),
        "max_power_w": watts,
        "status": status,
        "smbios_status": status_text,
        "bmc_sensor": null,
        "bmc_states": null,
    });
    (psu, status)
}

/// A BMC power supply sensor's health and the states asserted, from its discrete state bits
/// (`None` when its status column is not a discrete state).
fn bmc_psu(s: &ipmitool::Sensor) -> Option<(&'static str, Vec<&'static str>)> {
    let bits = ipmitool::discrete_states(&s.status)?;
    let on = |bit: u16| bits & (1 << bit) != 0;
    let states: Vec<&'static str> = ipmitool::PSU_STATES
        .iter()
        .filter(|(bit, _)| on(*bit))
        .map(|(_, name)| *name)
        .collect();
    let status = if on(1) || on(3) || on(4) {
        "failed"
    } else if on(2) || on(5) || on(6) {
        "degraded"
    } else if on(0) {
        "ok"
    } else {
        "absent"
    };
    Some((status, states))
}

impl Collector for Power {
    fn name(&self) -> &'static str {
        "power"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let ipmi = ["/dev/ipmi0", "/dev/ipmi/0", "/dev/ipmidev/0"]
            .iter()
            .any(|p| host.exists(p));
        // Without root or tables there are none: the BMC may still say.
        let mut psus: Vec<(Value, &'static str)> = tool(host, "dmidecode", &["-t", "39"])
            .ok()
            .and_then(|t| dmidecode::parse(&t).ok())
            .map(|records| dmidecode::of_type(&records, 39).map(smbios_psu).collect())
            .unwrap_or_default();
        if !ipmi && psus.is_empty() {
            return Err(Problem::Skipped(
                "no IPMI device (/dev/ipmi0) and no SMBIOS power supply records".into(),
            ));
        }
        let mut findings = Vec::new();
        let mut section = json!({"sensors": null, "fru": null});
        if ipmi {
            let sensors = ipmitool::parse_sensors(&tool(host, "ipmitool", &["sensor"])?)
                .map_err(|e| Problem::Failed(e.to_string()))?;
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
            // The BMC's power supply sensors, numbered: with as many SMBIOS records, the
            // n-th record is supply n; otherwise each is a record of its own.
            let bmc: Vec<(u32, &ipmitool::Sensor, &'static str, Vec<&'static str>)> = sensors
                .iter()
                .filter(|s| s.unit.as_deref() == Some("discrete"))
                .filter_map(|s| {
                    let n = ipmitool::psu_number(&s.name)?;
                    let (status, states) = bmc_psu(s)?;
                    Some((n, s, status, states))
                })
                .collect();
            let merge = !psus.is_empty()
                && bmc.len() == psus.len()
                && (1..=psus.len() as u32).all(|n| bmc.iter().filter(|b| b.0 == n).count() == 1);
            for (n, s, status, states) in bmc {
                let slot = if merge {
                    (n as usize).checked_sub(1).and_then(|i| psus.get_mut(i))
                } else {
                    None
                };
                match slot {
                    Some((psu, st)) => {
                        psu["bmc_sensor"] = json!(s.name);
                        psu["bmc_states"] = json!(states);
                        *st = worse(st, status);
                        psu["status"] = json!(*st);
                    }
                    None => psus.push((
                        json!({
                            "name": s.name, "location": null, "manufacturer": null,
                            "model": null, "serial": null, "max_power_w": null,
                            "status": status, "smbios_status": null,
                            "bmc_sensor": s.name, "bmc_states": states,
                        }),
                        status,
                    )),
                }
            }
            let fru = tool(host, "ipmitool", &["fru"])
                .map(|t| ipmitool::parse_fru(&t))
                .unwrap_or_default();
            let fru: Vec<Value> = fru
                .into_iter()
                .map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k, json!(v))).collect()))
                .collect();
            section = json!({"sensors": sensors, "fru": fru});
        }
        for (psu, status) in &psus {
            let severity = match *status {
                "failed" => Severity::Failure,
                "degraded" => Severity::Warning,
                _ => continue,
            };
            let name = psu["name"]
                .as_str()
                .or_else(|| psu["location"].as_str())
                .unwrap_or("a power supply");
            let why: Vec<String> = [
                psu["smbios_status"]
                    .as_str()
                    .map(|s| format!("SMBIOS status `{s}`")),
                psu["bmc_states"].as_array().map(|states| {
                    let states: Vec<&str> = states.iter().filter_map(Value::as_str).collect();
                    format!("BMC: {}", states.join(", "))
                }),
            ]
            .into_iter()
            .flatten()
            .collect();
            let model = psu["model"]
                .as_str()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            let code = if severity == Severity::Failure {
                "power.psu_failed"
            } else {
                "power.psu_degraded"
            };
            findings.push(finding(
                severity,
                "power",
                code,
                format!("{name}{model}: {status}: {}", why.join("; ")),
            ));
        }
        section["psus"] = Value::Array(psus.into_iter().map(|(p, _)| p).collect());
        Ok(Collected { section, findings })
    }
}
