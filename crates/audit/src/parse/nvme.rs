//! `nvme id-ctrl -o json` and `nvme smart-log -o json` (nvme-cli 1.x and 2.x).

use serde::Serialize;
use serde_json::Value;

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Controller {
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    pub total_capacity_bytes: Option<u64>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(super::meaningful)
}

/// A number that nvme-cli prints as a JSON number, or (for 128-bit counters) a string.
fn number(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.replace(',', "").trim().parse().ok(),
        _ => None,
    }
}

pub fn parse_id_ctrl(json: &str) -> Result<Controller, ParseError> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| ParseError::new("nvme", e.to_string()))?;
    if v.get("sn").is_none() && v.get("mn").is_none() {
        return Err(ParseError::new("nvme", "id-ctrl without `sn`/`mn`"));
    }
    Ok(Controller {
        model: text(&v, "mn"),
        serial: text(&v, "sn"),
        firmware: text(&v, "fr"),
        total_capacity_bytes: number(&v, "tnvmcap").filter(|n| *n > 0),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmartLog {
    pub critical_warning: u64,
    /// Kelvin in the log; converted.
    pub temperature_c: Option<i64>,
    pub available_spare_pct: Option<u64>,
    pub spare_threshold_pct: Option<u64>,
    pub percent_used: Option<u64>,
    pub media_errors: Option<u64>,
    pub power_on_hours: Option<u64>,
}

pub fn parse_smart_log(json: &str) -> Result<SmartLog, ParseError> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| ParseError::new("nvme", e.to_string()))?;
    let critical_warning = match v.get("critical_warning") {
        Some(Value::Object(bits)) => bits.get("value").and_then(Value::as_u64).unwrap_or(0),
        Some(_) => number(&v, "critical_warning")
            .ok_or_else(|| ParseError::new("nvme", "critical_warning is not a number"))?,
        None => {
            return Err(ParseError::new(
                "nvme",
                "smart-log without `critical_warning`",
            ));
        }
    };
    Ok(SmartLog {
        critical_warning,
        temperature_c: number(&v, "temperature").map(|k| k as i64 - 273),
        available_spare_pct: number(&v, "avail_spare"),
        spare_threshold_pct: number(&v, "spare_thresh"),
        percent_used: number(&v, "percent_used"),
        media_errors: number(&v, "media_errors"),
        power_on_hours: number(&v, "power_on_hours"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_versions() {
        let l = super::parse_smart_log(
            r#"{"critical_warning":0,"temperature":310,"media_errors":"0","avail_spare":100}"#,
        )
        .unwrap();
        assert_eq!((l.temperature_c, l.media_errors), (Some(37), Some(0)));
        let l = super::parse_smart_log(r#"{"critical_warning":{"value":4}}"#).unwrap();
        assert_eq!(l.critical_warning, 4);
        assert!(super::parse_smart_log("{}").is_err());
        let c = super::parse_id_ctrl(r#"{"sn":"S1 ","mn":"Samsung SSD 980 PRO 1TB","fr":"5B2QGXA7","tnvmcap":1000204886016}"#).unwrap();
        assert_eq!(c.serial.as_deref(), Some("S1"));
        assert!(super::parse_id_ctrl("{}").is_err());
    }
}
