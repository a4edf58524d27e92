//! `smartctl -j -a DEVICE` (JSON, smartmontools ≥ 7): identity, the overall health verdict,
//! temperature, power-on hours, and the counters that predict failure.

use serde::Serialize;
use serde_json::Value;

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Smart {
    pub device: Option<String>,
    pub protocol: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    /// The drive's own overall verdict; `None` when it gave none.
    pub passed: Option<bool>,
    pub temperature_c: Option<i64>,
    pub power_on_hours: Option<u64>,
    /// ATA reallocated sectors, SCSI grown defects or NVMe media errors.
    pub defects: Option<u64>,
    /// NVMe critical warning bits (0: none).
    pub critical_warning: Option<u64>,
    /// Messages smartctl itself printed (errors opening the device, …).
    pub messages: Vec<String>,
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    match cur {
        Value::String(t) => super::meaningful(t),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn u(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_u64()
}

pub fn parse(json: &str) -> Result<Smart, ParseError> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| ParseError::new("smartctl", e.to_string()))?;
    if v.get("smartctl").is_none() && v.get("json_format_version").is_none() {
        return Err(ParseError::new(
            "smartctl",
            "not smartctl JSON (no `smartctl` section)",
        ));
    }
    let reallocated = v
        .get("ata_smart_attributes")
        .and_then(|a| a.get("table"))
        .and_then(Value::as_array)
        .and_then(|t| {
            t.iter()
                .find(|a| a.get("id").and_then(Value::as_u64) == Some(5))
                .and_then(|a| a.get("raw")?.get("value")?.as_u64())
        });
    let defects = reallocated
        .or_else(|| u(&v, &["scsi_grown_defect_list"]))
        .or_else(|| u(&v, &["nvme_smart_health_information_log", "media_errors"]));
    let messages = v
        .get("smartctl")
        .and_then(|s| s.get("messages"))
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| x.get("string").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Smart {
        device: s(&v, &["device", "name"]),
        protocol: s(&v, &["device", "protocol"]),
        model: s(&v, &["model_name"]).or_else(|| s(&v, &["product"])),
        serial: s(&v, &["serial_number"]),
        firmware: s(&v, &["firmware_version"]).or_else(|| s(&v, &["revision"])),
        passed: v
            .get("smart_status")
            .and_then(|x| x.get("passed"))
            .and_then(Value::as_bool),
        temperature_c: v
            .get("temperature")
            .and_then(|t| t.get("current"))
            .and_then(Value::as_i64),
        power_on_hours: u(&v, &["power_on_time", "hours"]),
        defects,
        critical_warning: u(
            &v,
            &["nvme_smart_health_information_log", "critical_warning"],
        ),
        messages,
    })
}

/// `smartctl -j --scan`: the device names.
pub fn parse_scan(json: &str) -> Result<Vec<String>, ParseError> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| ParseError::new("smartctl", e.to_string()))?;
    let list = v
        .get("devices")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::new("smartctl", "no `devices` list"))?;
    Ok(list
        .iter()
        .filter_map(|d| d.get("name").and_then(Value::as_str).map(str::to_string))
        .collect())
}

/// `smartctl -a DEVICE` as text (smartmontools before 7.0 has no `-j`): the same fields.
pub fn parse_text(text: &str) -> Result<Smart, ParseError> {
    if !text.contains("smartmontools") && !text.contains("=== START OF") {
        return Err(ParseError::new("smartctl", "not smartctl output"));
    }
    let field = |keys: &[&str]| -> Option<String> {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            keys.contains(&k.trim()).then(|| v.trim().to_string())
        })
    };
    let number =
        |s: &str| -> Option<u64> { s.split_whitespace().next()?.replace(',', "").parse().ok() };
    // An ATA attribute's raw value: `  5 Reallocated_Sector_Ct  PO--CK 100 100 010 - 0`.
    let attribute = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.get(1) == Some(&name))
                .then(|| cols.iter().rev().find_map(|c| c.parse::<u64>().ok()))
                .flatten()
        })
    };
    let passed = text.lines().find_map(|l| {
        if l.contains("overall-health self-assessment test result:")
            || l.starts_with("SMART Health Status:")
        {
            let v = l.rsplit(':').next().unwrap_or("").trim();
            Some(v == "PASSED" || v == "OK")
        } else {
            None
        }
    });
    let critical_warning = field(&["Critical Warning"])
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok());
    let media_errors = field(&["Media and Data Integrity Errors"]).and_then(|v| number(&v));
    Ok(Smart {
        device: None,
        protocol: if critical_warning.is_some() {
            Some("NVMe".into())
        } else {
            None
        },
        model: field(&["Model Number", "Device Model", "Product"])
            .and_then(|v| super::meaningful(&v)),
        serial: field(&["Serial Number", "Serial number"]).and_then(|v| super::meaningful(&v)),
        firmware: field(&["Firmware Version", "Revision"]).and_then(|v| super::meaningful(&v)),
        passed,
        temperature_c: field(&[
            "Temperature",
            "Current Temperature",
            "Current Drive Temperature",
        ])
        .and_then(|v| number(&v))
        .map(|t| t as i64)
        .or_else(|| attribute("Temperature_Celsius").map(|t| t as i64)),
        power_on_hours: field(&["Power On Hours"])
            .and_then(|v| number(&v))
            .or_else(|| attribute("Power_On_Hours")),
        defects: media_errors
            .or_else(|| attribute("Reallocated_Sector_Ct"))
            .or_else(|| field(&["Elements in grown defect list"]).and_then(|v| number(&v))),
        critical_warning,
        messages: vec![],
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn verdict_and_defects() {
        let s = super::parse(r#"{"smartctl":{"messages":[{"string":"x","severity":"error"}]},"device":{"name":"/dev/sda","protocol":"ATA"},"smart_status":{"passed":false},"ata_smart_attributes":{"table":[{"id":5,"raw":{"value":12}}]}}"#).unwrap();
        assert_eq!((s.passed, s.defects), (Some(false), Some(12)));
        assert_eq!(s.messages, ["x"]);
        assert!(super::parse("{}").is_err() && super::parse("[").is_err());
        assert_eq!(
            super::parse_scan(r#"{"devices":[{"name":"/dev/sda"}]}"#).unwrap(),
            ["/dev/sda"]
        );
    }
}
