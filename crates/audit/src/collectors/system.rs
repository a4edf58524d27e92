//! System, board, chassis and firmware: `dmidecode -t 0,1,2,3`, or `/sys/class/dmi/id` when
//! dmidecode is missing, not permitted, or finds no SMBIOS tables.

use serde_json::{Value, json};

use crate::collector::{Collected, Collector, Problem, tool};
use crate::host::Host;
use crate::parse::{dmidecode, meaningful};

pub struct System;

const SYSFS: &str = "/sys/class/dmi/id";

fn from_dmidecode(text: &str) -> Result<Value, Problem> {
    let records = dmidecode::parse(text).map_err(|e| Problem::Failed(e.to_string()))?;
    let first = |t: u8| dmidecode::of_type(&records, t).next();
    let pick = |t: u8, keys: &[(&str, &str)]| -> Value {
        match first(t) {
            None => Value::Null,
            Some(r) => Value::Object(
                keys.iter()
                    .map(|(out, key)| ((*out).to_string(), json!(r.value(key))))
                    .collect(),
            ),
        }
    };
    Ok(json!({
        "source": "dmidecode",
        "bios": pick(0, &[("vendor", "Vendor"), ("version", "Version"), ("release_date", "Release Date")]),
        "system": pick(1, &[("manufacturer", "Manufacturer"), ("product", "Product Name"), ("version", "Version"), ("serial", "Serial Number"), ("uuid", "UUID"), ("sku", "SKU Number"), ("family", "Family")]),
        "board": pick(2, &[("manufacturer", "Manufacturer"), ("product", "Product Name"), ("version", "Version"), ("serial", "Serial Number")]),
        "chassis": pick(3, &[("manufacturer", "Manufacturer"), ("type", "Type"), ("serial", "Serial Number"), ("asset_tag", "Asset Tag")]),
    }))
}

fn from_sysfs(host: &dyn Host) -> Option<Value> {
    let f = |name: &str| {
        host.read_text(&format!("{SYSFS}/{name}"))
            .and_then(|v| meaningful(&v))
    };
    let any = ["sys_vendor", "product_name", "bios_vendor", "board_name"]
        .iter()
        .any(|n| f(n).is_some());
    any.then(|| {
        json!({
            "source": "sysfs",
            "bios": {"vendor": f("bios_vendor"), "version": f("bios_version"), "release_date": f("bios_date")},
            "system": {"manufacturer": f("sys_vendor"), "product": f("product_name"), "version": f("product_version"),
                       "serial": f("product_serial"), "uuid": f("product_uuid"), "sku": f("product_sku"), "family": f("product_family")},
            "board": {"manufacturer": f("board_vendor"), "product": f("board_name"), "version": f("board_version"), "serial": f("board_serial")},
            "chassis": {"manufacturer": f("chassis_vendor"), "type": f("chassis_type"), "serial": f("chassis_serial"), "asset_tag": f("chassis_asset_tag")},
        })
    })
}

impl Collector for System {
    fn name(&self) -> &'static str {
        "system"
    }

    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
        let dmi = tool(
            host,
            "dmidecode",
            &["-t", "0", "-t", "1", "-t", "2", "-t", "3"],
        )
        .and_then(|text| from_dmidecode(&text));
        let section = match dmi {
            Ok(v) => v,
            Err(problem) => match from_sysfs(host) {
                Some(mut v) => {
                    v["dmidecode"] = json!(problem.to_string());
                    v
                }
                None => return Err(problem),
            },
        };
        Ok(Collected {
            section,
            findings: vec![],
        })
    }
}
