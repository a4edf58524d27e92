//! `ipmitool sensor` (`name | value | unit | status | lnr | lcr | lnc | unc | ucr | unr`) and
//! `ipmitool sdr` (`name | value | status`) tables, and `ipmitool fru` (`Key : value` blocks);
//! the state bits of discrete sensors, and which sensors are power supplies'.

use serde::Serialize;

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensor {
    pub name: String,
    pub value: Option<f64>,
    pub unit: Option<String>,
    /// `ok`, `nc` (non-critical), `cr` (critical), `nr` (non-recoverable), `ns` (no
    /// reading), …
    pub status: String,
}

pub fn parse_sensors(text: &str) -> Result<Vec<Sensor>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let sensor = match cols.len() {
            // sensor: name | value | unit | status | thresholds…
            n if n >= 4 => Sensor {
                name: cols[0].to_string(),
                value: cols[1].parse().ok().filter(|v: &f64| v.is_finite()),
                unit: super::meaningful(cols[2]),
                status: cols[3].to_string(),
            },
            // sdr: name | "33 degrees C" | ok
            3 => {
                let mut words = cols[1].split_whitespace();
                let value = words
                    .next()
                    .and_then(|w| w.parse().ok())
                    .filter(|v: &f64| v.is_finite());
                let unit = value.map(|_| words.collect::<Vec<_>>().join(" "));
                Sensor {
                    name: cols[0].to_string(),
                    value,
                    unit: unit.filter(|u| !u.is_empty()),
                    status: cols[2].to_string(),
                }
            }
            _ => {
                return Err(ParseError::new(
                    "ipmitool",
                    format!("not a sensor line: `{line}`"),
                ));
            }
        };
        if sensor.name.is_empty() {
            return Err(ParseError::new(
                "ipmitool",
                format!("a sensor without a name: `{line}`"),
            ));
        }
        out.push(sensor);
    }
    Ok(out)
}

/// The state bits of a discrete sensor as `ipmitool sensor` prints them in its status column
/// (`0x0100`: the first byte holds states 0–7, the second states 8–14); `None` for a
/// threshold sensor's status (`ok`, `cr`, …).
pub fn discrete_states(status: &str) -> Option<u16> {
    let hex = status.trim().strip_prefix("0x")?;
    if hex.len() != 4 {
        return None;
    }
    let v = u16::from_str_radix(hex, 16).ok()?;
    // States 0–7 are the high byte as printed; states 8–14 the low one.
    Some((v >> 8) | ((v & 0xFF) << 8))
}

/// The number of a power supply's sensor (`PS1 Status`, `PSU 2`, `Power Supply 3 Status`),
/// `None` for other sensors (`PS Redundancy`, `CPU1 Temp`).
pub fn psu_number(name: &str) -> Option<u32> {
    let lower = name.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("power supply")
        .or_else(|| lower.strip_prefix("psu"))
        .or_else(|| lower.strip_prefix("ps"))?;
    let rest = rest.trim_start_matches([' ', '_', '-', '#']);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// What the state bits of a power supply sensor (IPMI sensor type 08h) say.
pub const PSU_STATES: &[(u16, &str)] = &[
    (0, "presence detected"),
    (1, "failure detected"),
    (2, "predictive failure"),
    (3, "input lost"),
    (4, "input lost or out of range"),
    (5, "input out of range"),
    (6, "configuration error"),
    (7, "inactive"),
];

/// `ipmitool fru`: one list of `(key, value)` per FRU device.
pub fn parse_fru(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        if k == "FRU Device Description" || out.is_empty() {
            out.push(Vec::new());
        }
        if let Some(last) = out.last_mut() {
            last.push((k, v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sensor_sdr_and_fru() {
        let s = super::parse_sensors("CPU1 Temp | 33.000 | degrees C | ok | na | 0 | 0 | 79 | 82 | 84\nFAN1 | na | RPM | ns | na\nPSU2 | 0x02 | discrete | cr | na\n").unwrap();
        assert_eq!(
            (s[0].value, s[1].value, s[2].status.as_str()),
            (Some(33.0), None, "cr")
        );
        let s = super::parse_sensors("Inlet Temp       | 22 degrees C      | ok\n").unwrap();
        assert_eq!(
            (s[0].value, s[0].unit.as_deref()),
            (Some(22.0), Some("degrees C"))
        );
        assert!(super::parse_sensors("nonsense\n").is_err());
        assert_eq!(super::discrete_states("0x0100"), Some(0b01));
        assert_eq!(super::discrete_states("0x0300"), Some(0b11));
        assert_eq!(super::discrete_states("0x0001"), Some(1 << 8));
        assert_eq!(super::discrete_states("cr"), None);
        assert_eq!(super::discrete_states("0x01"), None);
        for (name, n) in [
            ("PS1 Status", Some(1)),
            ("PSU2 Status", Some(2)),
            ("Power Supply 3", Some(3)),
            ("PS_4 Status", Some(4)),
            ("PS Redundancy", None),
            ("PSU Redundancy", None),
            ("CPU1 Temp", None),
        ] {
            assert_eq!(super::psu_number(name), n, "{name}");
        }
        let f = super::parse_fru(
            "FRU Device Description : Builtin FRU Device (ID 0)\n Board Serial : X1\n\nFRU Device Description : PSU1\n",
        );
        assert_eq!(f.len(), 2);
    }
}
