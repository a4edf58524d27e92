//! `lspci -vmm -D` (optionally `-k`, `-nn`): blank-line separated records of `Key:\tValue`.

use serde::Serialize;

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PciDevice {
    /// `0000:3b:00.0`
    pub slot: String,
    pub class: String,
    pub vendor: String,
    pub device: String,
    pub subsystem_vendor: Option<String>,
    pub subsystem_device: Option<String>,
    pub revision: Option<String>,
    pub driver: Option<String>,
    pub numa_node: Option<i32>,
    pub iommu_group: Option<u32>,
}

pub fn parse(text: &str) -> Result<Vec<PciDevice>, ParseError> {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.contains(" \"") {
        return parse_mm(text);
    }
    let mut out = Vec::new();
    let mut cur: Option<PciDevice> = None;
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if let Some(d) = cur.take() {
                out.push(d);
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(ParseError::new(
                "lspci",
                format!("not `Key: value`: `{line}`"),
            ));
        };
        let value = value.trim().to_string();
        let d = cur.get_or_insert_with(PciDevice::default);
        match key.trim() {
            "Slot" => d.slot = value,
            "Class" => d.class = value,
            "Vendor" => d.vendor = value,
            "Device" => d.device = value,
            "SVendor" => d.subsystem_vendor = Some(value),
            "SDevice" => d.subsystem_device = Some(value),
            "Rev" => d.revision = Some(value),
            "Driver" => d.driver = Some(value),
            "NUMANode" => d.numa_node = value.parse().ok(),
            "IOMMUGroup" => d.iommu_group = value.parse().ok(),
            _ => {}
        }
    }
    if let Some(bad) = out.iter().find(|d| d.slot.is_empty()) {
        return Err(ParseError::new(
            "lspci",
            format!("a record without `Slot` ({})", bad.device),
        ));
    }
    Ok(out)
}

/// `lspci -mm [-nn] [-D]`: one device per line, `slot "class" "vendor" "device" [-rREV]
/// [-pPROGIF] "svendor" "sdevice"`.
pub fn parse_mm(text: &str) -> Result<Vec<PciDevice>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut quoted = Vec::new();
        let mut options = Vec::new();
        // Trimmed first: the slot is then exactly the line's first bytes.
        let mut rest = line.trim_start();
        let slot = rest.split_whitespace().next().unwrap_or("").to_string();
        rest = rest[slot.len()..].trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('"') {
                let end = after.find('"').ok_or_else(|| {
                    ParseError::new("lspci", format!("unterminated quote: `{line}`"))
                })?;
                quoted.push(after[..end].to_string());
                rest = after[end + 1..].trim_start();
            } else {
                let word = rest.split_whitespace().next().unwrap_or("");
                options.push(word.to_string());
                rest = rest[word.len()..].trim_start();
            }
        }
        if !slot.contains(':') || quoted.len() < 3 {
            return Err(ParseError::new(
                "lspci",
                format!("not an `lspci -mm` line: `{line}`"),
            ));
        }
        let slot = if slot.matches(':').count() == 1 {
            format!("0000:{slot}")
        } else {
            slot
        };
        let opt = |p: &str| {
            options
                .iter()
                .find_map(|o| o.strip_prefix(p))
                .map(str::to_string)
        };
        out.push(PciDevice {
            slot,
            class: quoted[0].clone(),
            vendor: quoted[1].clone(),
            device: quoted[2].clone(),
            subsystem_vendor: quoted.get(3).and_then(|s| super::meaningful(s)),
            subsystem_device: quoted.get(4).and_then(|s| super::meaningful(s)),
            revision: opt("-r"),
            ..Default::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn records() {
        let d = super::parse("Slot:\t0000:00:06.0\nClass:\t3D controller\nVendor:\tNVIDIA Corporation\nDevice:\tGH100\nDriver:\tnvidia\nIOMMUGroup:\t7\n\nSlot:\t0000:00:07.0\nClass:\tEthernet controller\nVendor:\tRed Hat\nDevice:\tVirtio\n").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].driver.as_deref(), d[0].iommu_group),
            (Some("nvidia"), Some(7))
        );
        assert!(super::parse("garbage line\n").is_err());
        let mm = super::parse("00:1f.2 \"IDE interface [0101]\" \"Intel [8086]\" \"SATA [3b20]\" -r05 -p8f \"Dell [1028]\" \"\"\n").unwrap();
        assert_eq!(
            (mm[0].slot.as_str(), mm[0].revision.as_deref()),
            ("0000:00:1f.2", Some("05"))
        );
        assert!(super::parse("00:1f.2 \"unterminated\n").is_err());
        // Found by `paddock-bench audit`'s fuzzing: a line starting with a multi-byte space.
        assert!(super::parse("\u{3000}a \"b\" \"c\" \"d\"\n").is_err());
        assert!(super::parse("Class:\tx\n").is_err());
    }
}
