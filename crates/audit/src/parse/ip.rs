//! `ip -j addr` and `ip -j route`.

use serde::Serialize;
use serde_json::Value;

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u64>,
    pub state: Option<String>,
    /// `address/prefix` of every address.
    pub addresses: Vec<String>,
}

pub fn parse_addr(json: &str) -> Result<Vec<Interface>, ParseError> {
    let v: Value = serde_json::from_str(json).map_err(|e| ParseError::new("ip", e.to_string()))?;
    let list = v
        .as_array()
        .ok_or_else(|| ParseError::new("ip", "expected a list of interfaces"))?;
    list.iter()
        .map(|i| {
            let name = i
                .get("ifname")
                .and_then(Value::as_str)
                .ok_or_else(|| ParseError::new("ip", "an interface without `ifname`"))?;
            let addresses = i
                .get("addr_info")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| {
                            let local = x.get("local")?.as_str()?;
                            let len = x.get("prefixlen")?.as_u64()?;
                            Some(format!("{local}/{len}"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(Interface {
                name: name.to_string(),
                mac: i.get("address").and_then(Value::as_str).map(str::to_string),
                mtu: i.get("mtu").and_then(Value::as_u64),
                state: i
                    .get("operstate")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                addresses,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// `default` or `10.0.0.0/24`.
    pub destination: String,
    pub gateway: Option<String>,
    pub device: Option<String>,
}

pub fn parse_route(json: &str) -> Result<Vec<Route>, ParseError> {
    let v: Value = serde_json::from_str(json).map_err(|e| ParseError::new("ip", e.to_string()))?;
    let list = v
        .as_array()
        .ok_or_else(|| ParseError::new("ip", "expected a list of routes"))?;
    list.iter()
        .map(|r| {
            Ok(Route {
                destination: r
                    .get("dst")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ParseError::new("ip", "a route without `dst`"))?
                    .to_string(),
                gateway: r.get("gateway").and_then(Value::as_str).map(str::to_string),
                device: r.get("dev").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_and_routes() {
        let i = super::parse_addr(r#"[{"ifname":"eth0","address":"02:00:00:00:00:01","mtu":1500,"operstate":"UP","addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24}]}]"#).unwrap();
        assert_eq!(i[0].addresses, ["10.0.0.2/24"]);
        let r =
            super::parse_route(r#"[{"dst":"default","gateway":"10.0.0.1","dev":"eth0"}]"#).unwrap();
        assert_eq!(r[0].gateway.as_deref(), Some("10.0.0.1"));
        assert!(super::parse_addr("{}").is_err() && super::parse_route("[{}]").is_err());
    }
}
