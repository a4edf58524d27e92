//! `lsblk -J` (any column set, tree or list): block devices with their children. Sizes are
//! bytes with `-b`, or human text (`1.8T`) without; `rota`/`rm`/`ro` are booleans or `0`/`1`
//! depending on the version; older versions have `mountpoint`, newer `mountpoints`.

use serde::Serialize;
use serde_json::Value;

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockDevice {
    pub name: String,
    /// `/dev/<name>` unless lsblk gave the path.
    pub path: String,
    /// `disk`, `part`, `rom`, `loop`, `lvm`, `crypt`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub size_bytes: Option<u64>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub transport: Option<String>,
    pub rotational: Option<bool>,
    pub removable: Option<bool>,
    pub read_only: Option<bool>,
    pub fstype: Option<String>,
    pub mountpoints: Vec<String>,
    pub children: Vec<BlockDevice>,
}

impl BlockDevice {
    /// Every mountpoint of this device and of its children, recursively.
    pub fn all_mountpoints(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.mountpoints.iter().map(String::as_str).collect();
        for c in &self.children {
            out.extend(c.all_mountpoints());
        }
        out
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => super::meaningful(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flag(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "1" => Some(true),
        Value::String(s) if s == "0" => Some(false),
        Value::Number(n) => n.as_u64().map(|n| n != 0),
        _ => None,
    }
}

/// `1.8T`, `512M`, `0B`, `274877906944` → bytes (human sizes are approximate, as printed).
pub fn size(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<u64>() {
                return Some(n);
            }
            let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
            let n: f64 = num.parse().ok()?;
            let mult: f64 = match unit {
                "B" => 1.0,
                "K" => 1024.0,
                "M" => 1024.0 * 1024.0,
                "G" => 1024.0 * 1024.0 * 1024.0,
                "T" => 1024.0_f64.powi(4),
                "P" => 1024.0_f64.powi(5),
                _ => return None,
            };
            let bytes = n * mult;
            (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
        }
        _ => None,
    }
}

fn device(v: &Value, depth: usize) -> Result<BlockDevice, ParseError> {
    if depth > 16 {
        return Err(ParseError::new("lsblk", "devices nested too deep"));
    }
    let name = text(v, "name")
        .or_else(|| text(v, "kname"))
        .ok_or_else(|| ParseError::new("lsblk", "a device without a name"))?;
    let mut mountpoints: Vec<String> = match v.get("mountpoints") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    if let Some(m) = v.get("mountpoint").and_then(Value::as_str)
        && !mountpoints.iter().any(|x| x == m)
    {
        mountpoints.push(m.to_string());
    }
    let children = match v.get("children") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|c| device(c, depth + 1))
            .collect::<Result<_, _>>()?,
        _ => vec![],
    };
    Ok(BlockDevice {
        path: text(v, "path").unwrap_or_else(|| format!("/dev/{name}")),
        kind: text(v, "type").unwrap_or_default(),
        size_bytes: v.get("size").and_then(size),
        model: text(v, "model"),
        serial: text(v, "serial"),
        wwn: text(v, "wwn"),
        transport: text(v, "tran"),
        rotational: flag(v, "rota"),
        removable: flag(v, "rm"),
        read_only: flag(v, "ro"),
        fstype: text(v, "fstype"),
        mountpoints,
        children,
        name,
    })
}

/// Parses `lsblk -J` output. With `--list` output (no tree) children are attached to their
/// parent by `pkname` when that column is present.
pub fn parse(json: &str) -> Result<Vec<BlockDevice>, ParseError> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| ParseError::new("lsblk", e.to_string()))?;
    let list = v
        .get("blockdevices")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::new("lsblk", "no `blockdevices` list"))?;
    let mut top = Vec::new();
    let mut orphans = Vec::new();
    for item in list {
        let d = device(item, 0)?;
        match text(item, "pkname") {
            Some(parent) => orphans.push((parent, d)),
            None => top.push(d),
        }
    }
    for (parent, d) in orphans {
        match find_mut(&mut top, &parent) {
            Some(p) => p.children.push(d),
            None => top.push(d),
        }
    }
    Ok(top)
}

fn find_mut<'a>(devices: &'a mut [BlockDevice], name: &str) -> Option<&'a mut BlockDevice> {
    for d in devices {
        if d.name == name {
            return Some(d);
        }
        if let Some(c) = find_mut(&mut d.children, name) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_list_and_human_sizes() {
        let tree = r#"{"blockdevices":[{"name":"nvme0n1","type":"disk","size":"1.8T","rota":"0","mountpoint":null,
            "children":[{"name":"nvme0n1p1","type":"part","size":536870912,"mountpoints":["/boot",null]}]}]}"#;
        let d = parse(tree).unwrap();
        assert_eq!(d[0].path, "/dev/nvme0n1");
        assert_eq!(d[0].rotational, Some(false));
        assert_eq!(d[0].all_mountpoints(), ["/boot"]);
        assert!(d[0].size_bytes.unwrap() > 1_900_000_000_000);
        let list = r#"{"blockdevices":[{"name":"sda","type":"disk","pkname":null},{"name":"sda1","type":"part","pkname":"sda","mountpoint":"/"}]}"#;
        let d = parse(list).unwrap();
        assert_eq!((d.len(), d[0].children[0].name.as_str()), (1, "sda1"));
        assert!(parse("{").is_err() && parse("{}").is_err());
        assert!(parse(r#"{"blockdevices":[{"type":"disk"}]}"#).is_err());
    }
}
