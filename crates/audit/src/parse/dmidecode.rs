//! `dmidecode` text output: records of `Handle 0x…, DMI type N, M bytes`, a title line, then
//! tab-indented `Key: Value` lines; a key with an empty value followed by doubly indented lines
//! is a list (`Characteristics:`, `Installable Languages:`).

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub handle: String,
    pub dmi_type: u8,
    pub title: String,
    /// `(key, value)` in order; a list's value is empty and its items are in `lists`.
    pub fields: Vec<(String, String)>,
    pub lists: Vec<(String, Vec<String>)>,
}

impl Record {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A field's value unless it is a placeholder (see [`super::meaningful`]).
    pub fn value(&self, key: &str) -> Option<String> {
        self.get(key).and_then(super::meaningful)
    }

    pub fn list(&self, key: &str) -> &[String] {
        self.lists
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }
}

/// Parses the whole output. No record at all is an error (dmidecode without tables prints
/// "No SMBIOS nor DMI entry point found").
pub fn parse(text: &str) -> Result<Vec<Record>, ParseError> {
    let mut records: Vec<Record> = Vec::new();
    let mut expecting_title = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Handle ") {
            let mut parts = rest.split(',').map(str::trim);
            let handle = parts.next().unwrap_or("").to_string();
            let dmi_type = parts
                .next()
                .and_then(|p| p.strip_prefix("DMI type "))
                .and_then(|t| t.trim().parse::<u8>().ok())
                .ok_or_else(|| {
                    ParseError::new("dmidecode", format!("bad record header `{line}`"))
                })?;
            records.push(Record {
                handle,
                dmi_type,
                title: String::new(),
                fields: vec![],
                lists: vec![],
            });
            expecting_title = true;
            continue;
        }
        let Some(rec) = records.last_mut() else {
            continue; // the preamble
        };
        if line.trim().is_empty() {
            expecting_title = false;
            continue;
        }
        if expecting_title && !line.starts_with('\t') {
            rec.title = line.trim().to_string();
            expecting_title = false;
            continue;
        }
        expecting_title = false;
        if let Some(item) = line.strip_prefix("\t\t") {
            // An item of the last list (or the continuation of a hex dump).
            match rec.lists.last_mut() {
                Some((_, items)) => items.push(item.trim().to_string()),
                None => {
                    let key = rec
                        .fields
                        .last()
                        .map(|(k, _)| k.clone())
                        .unwrap_or_default();
                    rec.lists.push((key, vec![item.trim().to_string()]));
                }
            }
        } else if let Some(field) = line.strip_prefix('\t') {
            let (key, value) = match field.split_once(':') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => (field.trim().to_string(), String::new()),
            };
            if value.is_empty() {
                rec.lists.push((key.clone(), vec![]));
            }
            rec.fields.push((key, value));
        }
    }
    if records.is_empty() {
        let why = text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .unwrap_or("no output");
        return Err(ParseError::new(
            "dmidecode",
            format!("no DMI records ({why})"),
        ));
    }
    Ok(records)
}

/// The records of one type.
pub fn of_type(records: &[Record], dmi_type: u8) -> impl Iterator<Item = &Record> {
    records.iter().filter(move |r| r.dmi_type == dmi_type)
}

/// A memory size as written by dmidecode (`16 GB`, `16384 MB`, `No Module Installed`) in MiB.
pub fn size_mib(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next()? {
        "kB" | "KB" => Some(n / 1024),
        "MB" => Some(n),
        "GB" => n.checked_mul(1024),
        "TB" => n.checked_mul(1024 * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# dmidecode 3.4\nGetting SMBIOS data from sysfs.\nSMBIOS 3.4 present.\n\nHandle 0x0000, DMI type 0, 26 bytes\nBIOS Information\n\tVendor: Dell Inc.\n\tVersion: 1.5.4\n\tCharacteristics:\n\t\tPCI is supported\n\t\tBIOS is upgradeable\n\nHandle 0x1100, DMI type 17, 84 bytes\nMemory Device\n\tSize: 32 GB\n\tLocator: A1\n\tSerial Number: --\n";

    #[test]
    fn records_fields_and_lists() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].dmi_type, r[0].title.as_str()),
            (0, "BIOS Information")
        );
        assert_eq!(r[0].get("Vendor"), Some("Dell Inc."));
        assert_eq!(
            r[0].list("Characteristics"),
            ["PCI is supported", "BIOS is upgradeable"]
        );
        assert_eq!(r[1].value("Serial Number"), None);
        assert_eq!(size_mib(r[1].get("Size").unwrap()), Some(32 * 1024));
        assert_eq!(size_mib("No Module Installed"), None);
        assert!(parse("# dmidecode 3.4\nNo SMBIOS nor DMI entry point found, sorry.\n").is_err());
        assert!(parse("Handle 0x0000, DMI type zz\n").is_err());
    }
}
