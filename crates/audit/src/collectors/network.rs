//! Network interfaces: `ip -j addr` (addresses), and `/sys/class/net` (MAC, MTU, state,
//! speed, driver) which also stands in when `ip` is missing.

use serde_json::{Value, json};

use crate::collector::{Collected, Collector, Problem, tool};
use crate::host::Host;
use crate::parse::ip;

pub struct Network;

const SYS: &str = "/sys/class/net";

impl Collector for Network {
    fn name(&self) -> &'static str {
        "network"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let from_ip = match tool(host, "ip", &["-j", "addr"]) {
            Ok(t) => Some(ip::parse_addr(&t).map_err(|e| Problem::Failed(e.to_string()))?),
            Err(Problem::Skipped(_)) => None,
            Err(p) => return Err(p),
        };
        let mut names = host.list(SYS).unwrap_or_default();
        if let Some(i) = &from_ip {
            names.extend(i.iter().map(|x| x.name.clone()));
        }
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(Problem::Skipped(format!(
                "ip is not installed and {SYS} is empty"
            )));
        }
        let interfaces: Vec<Value> = names
            .iter()
            .map(|name| {
                let f = |file: &str| host.read_text(&format!("{SYS}/{name}/{file}"));
                let i = from_ip
                    .as_ref()
                    .and_then(|l| l.iter().find(|x| &x.name == name));
                json!({
                    "name": name,
                    "mac": i.and_then(|x| x.mac.clone()).or_else(|| f("address")),
                    "mtu": i.and_then(|x| x.mtu).or_else(|| f("mtu").and_then(|m| m.parse().ok())),
                    "state": i.and_then(|x| x.state.clone()).or_else(|| f("operstate")),
                    "speed_mbps": f("speed").and_then(|s| s.parse::<i64>().ok()).filter(|s| *s > 0),
                    "driver": host.link(&format!("{SYS}/{name}/device/driver")).ok()
                        .and_then(|t| t.rsplit('/').next().map(str::to_string)),
                    "addresses": i.map(|x| x.addresses.clone()).unwrap_or_default(),
                })
            })
            .collect();
        Ok(Collected {
            section: json!({"interfaces": interfaces, "addresses_from": if from_ip.is_some() { "ip" } else { "none (ip is not installed)" }}),
            findings: vec![],
        })
    }
}
