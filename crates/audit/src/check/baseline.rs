//! The baseline file: YAML, a list of checks, each with a name, a kind and its parameters, a
//! severity (`hard`: a failure fails the host; `soft`: a warning) and remediation text.
//! Every error names `file:line:column: field: message`, all of them in one run.

use paddock_core::deployments::decode::{Reader, join};
use paddock_core::deployments::yaml;
use paddock_core::deployments::{Diagnostic, Diagnostics};

/// What a check verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    SystemdUnitActive {
        unit: String,
    },
    KernelCmdlineContains {
        value: String,
    },
    KernelModuleLoaded {
        module: String,
    },
    PathExists {
        path: String,
    },
    PathAbsent {
        path: String,
    },
    FileContains {
        path: String,
        text: String,
    },
    Sysctl {
        key: String,
        value: String,
    },
    /// `interface` is a name, or a glob pattern (`*`, `?`: `ibp*`) that passes when any
    /// interface it matches has the address.
    InterfaceHasAddress {
        interface: String,
        address: String,
    },
    RouteExists {
        destination: String,
        via: Option<String>,
        dev: Option<String>,
    },
    /// `argv` run without a shell; passes when it exits 0, its output matches
    /// `output_matches` (if set) and does not match `output_not_matches` (if set).
    Command {
        argv: Vec<String>,
        output_matches: Option<String>,
        output_not_matches: Option<String>,
        timeout_s: u64,
    },
    CountAtLeast {
        what: Countable,
        min: u64,
    },
    /// Present by a stable id, not mounted (nor any child partition), not the disk of `/`.
    DiskFree {
        by_id: String,
    },
    /// As [`Kind::DiskFree`], and blank: no partition, no whole-disk filesystem, no signature
    /// that `wipefs --no-act` finds (partition tables, filesystems, RAID or LVM superblocks).
    BlankDisk {
        by_id: String,
    },
    /// The SMBIOS processor records (`dmidecode -t 4`): at least `min_sockets` sockets
    /// populated and in use (enabled, or idle until the OS starts them), and every populated
    /// socket in use with at least `min_cores_per_socket` cores enabled. At least one is set.
    CpuSockets {
        min_sockets: Option<u64>,
        min_cores_per_socket: Option<u64>,
    },
    /// Every SR-IOV physical function `select` picks (virtual functions are never picked)
    /// has at least `min_numvfs` VFs configured (`sriov_numvfs`) and, when set, can have at
    /// least `min_totalvfs` (`sriov_totalvfs`). A picked device without SR-IOV fails.
    SriovVfs {
        select: PciSelector,
        min_numvfs: u64,
        min_totalvfs: Option<u64>,
    },
}

/// Which PCI devices a check is about: every field set must match (at least one is set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciSelector {
    /// `0000:3b:00.0` (a slot given as `3b:00.0` is in domain 0000), lower case.
    pub slot: Option<String>,
    /// `0x15b3`, as sysfs writes it (given as `15b3`, `0x15B3`).
    pub vendor_id: Option<String>,
    pub device_id: Option<String>,
    /// The bound driver's name (`mlx5_core`).
    pub driver: Option<String>,
}

impl PciSelector {
    /// `vendor_id=0x15b3 driver=mlx5_core`, for details.
    pub fn describe(&self) -> String {
        [
            ("slot", &self.slot),
            ("vendor_id", &self.vendor_id),
            ("device_id", &self.device_id),
            ("driver", &self.driver),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// A PCI vendor or device id in sysfs's form (`0x15b3`): one to four hex digits, with or
/// without `0x`.
fn pci_id(text: &str) -> Option<String> {
    let t = text.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if hex.is_empty() || hex.len() > 4 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("0x{:0>4}", hex.to_ascii_lowercase()))
}

/// A PCI address in sysfs's form (`0000:3b:00.0`); `3b:00.0` is in domain 0000.
fn pci_slot(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let full = if t.matches(':').count() == 1 {
        format!("0000:{t}")
    } else {
        t
    };
    let (rest, function) = full.rsplit_once('.')?;
    let mut parts = rest.split(':');
    let (domain, bus, device) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    (parts.next().is_none()
        && hex(domain, 4)
        && hex(bus, 2)
        && hex(device, 2)
        && function.len() == 1
        && function.chars().all(|c| ('0'..='7').contains(&c)))
    .then_some(full)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Countable {
    Gpus,
    Nvme,
    IommuGroups,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub kind: Kind,
    /// A failed hard check fails the host (exit status 1); a failed soft one warns.
    pub hard: bool,
    pub remediation: Option<String>,
}

/// The kinds and their parameters (the required ones first).
pub const KINDS: &[(&str, &[&str], &[&str])] = &[
    ("systemd_unit_active", &["unit"], &[]),
    ("kernel_cmdline_contains", &["value"], &[]),
    ("kernel_module_loaded", &["module"], &[]),
    ("path_exists", &["path"], &[]),
    ("path_absent", &["path"], &[]),
    ("file_contains", &["path", "text"], &[]),
    ("sysctl", &["key", "value"], &[]),
    ("interface_has_address", &["interface", "address"], &[]),
    ("route_exists", &["destination"], &["via", "dev"]),
    (
        "command",
        &["argv"],
        &["output_matches", "output_not_matches", "timeout_s"],
    ),
    ("count_at_least", &["what", "min"], &[]),
    ("disk_free", &["by_id"], &[]),
    ("blank_disk", &["by_id"], &[]),
    ("cpu_sockets", &[], &["min_sockets", "min_cores_per_socket"]),
    (
        "sriov_vfs",
        &["min_numvfs"],
        &["slot", "vendor_id", "device_id", "driver", "min_totalvfs"],
    ),
];

const COMMON: &[&str] = &["name", "kind", "severity", "remediation"];

/// Reads a baseline; `file` names it in errors.
pub fn load(file: &str, text: &str) -> Result<Vec<Check>, Diagnostics> {
    let root = yaml::parse(file, text).map_err(Diagnostics)?;
    let mut r = Reader::new(file);
    let mut checks = Vec::new();
    if let Some(top) = r.fields(&root, "", &["checks"])
        && let Some(list) = r.required(&top, "", "checks")
    {
        checks = r.list(list, "checks", |r, node, path| check(r, node, path));
    }
    let mut errors = r.errors;
    // Duplicate names, from the tree (a check with other errors still has its name).
    let mut seen: Vec<String> = Vec::new();
    for (name, at) in names(&root) {
        if seen.contains(&name) {
            errors.push(Diagnostic::new(
                file,
                at,
                "checks",
                format!("check name `{name}` is used twice"),
            ));
        }
        seen.push(name);
    }
    if errors.is_empty() {
        Ok(checks)
    } else {
        Err(Diagnostics(errors).sorted())
    }
}

/// `(name, position)` of every check that has a scalar name.
fn names(root: &yaml::Node) -> Vec<(String, paddock_core::deployments::Pos)> {
    let yaml::Value::Map(top) = &root.value else {
        return vec![];
    };
    let Some((_, list)) = top.iter().find(|(k, _)| k.name == "checks") else {
        return vec![];
    };
    let yaml::Value::Seq(items) = &list.value else {
        return vec![];
    };
    items
        .iter()
        .filter_map(|i| match &i.value {
            yaml::Value::Map(m) => m.iter().find(|(k, _)| k.name == "name").map(|(_, v)| v),
            _ => None,
        })
        .filter_map(|v| match &v.value {
            yaml::Value::Scalar { text, .. } => Some((text.clone(), v.at)),
            _ => None,
        })
        .collect()
}

fn check(r: &mut Reader, node: &yaml::Node, path: &str) -> Option<Check> {
    // The kind decides the allowed keys; read it first.
    let kind_name = match &node.value {
        yaml::Value::Map(m) => m
            .iter()
            .find(|(k, _)| k.name == "kind")
            .and_then(|(_, v)| match &v.value {
                yaml::Value::Scalar { text, .. } => Some((text.clone(), v.at)),
                _ => None,
            }),
        _ => None,
    };
    let spec = kind_name
        .as_ref()
        .and_then(|(k, _)| KINDS.iter().find(|(n, _, _)| n == k));
    let mut allowed: Vec<&str> = COMMON.to_vec();
    match spec {
        Some((_, req, opt)) => {
            allowed.extend(req.iter());
            allowed.extend(opt.iter());
        }
        // An unknown kind: its parameters are not errors of their own.
        None => {
            for (_, req, opt) in KINDS {
                for k in req.iter().chain(opt.iter()) {
                    if !allowed.contains(k) {
                        allowed.push(k);
                    }
                }
            }
        }
    }
    let f = r.fields(node, path, &allowed)?;
    let name = r
        .required(&f, path, "name")
        .and_then(|n| r.text(n, &join(path, "name")));
    if let Some(n) = &name
        && (n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)))
    {
        let at = f.get("name").map(|n| n.at).unwrap_or(f.at);
        r.error(
            at,
            &join(path, "name"),
            format!("`{n}`: use letters, digits, `_`, `.`, `-`"),
        );
    }
    r.required(&f, path, "kind");
    if let (Some((k, at)), None) = (&kind_name, spec) {
        r.error(
            *at,
            &join(path, "kind"),
            format!(
                "unknown kind `{k}`; one of: {}",
                KINDS
                    .iter()
                    .map(|(n, _, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let hard = match f.get("severity") {
        None => true,
        Some(s) => match r.text(s, &join(path, "severity")).as_deref() {
            Some("hard") => true,
            Some("soft") => false,
            Some(other) => {
                r.error(
                    s.at,
                    &join(path, "severity"),
                    format!("`{other}`: hard or soft"),
                );
                true
            }
            None => true,
        },
    };
    let remediation = f
        .get("remediation")
        .and_then(|n| r.text(n, &join(path, "remediation")));
    let (kind_name, _, _) = spec?;
    let req = |r: &mut Reader, key: &str| -> Option<String> {
        let n = r.required(&f, path, key)?;
        r.text(n, &join(path, key))
    };
    let kind = match *kind_name {
        "systemd_unit_active" => Kind::SystemdUnitActive {
            unit: req(r, "unit")?,
        },
        "kernel_cmdline_contains" => Kind::KernelCmdlineContains {
            value: req(r, "value")?,
        },
        "kernel_module_loaded" => Kind::KernelModuleLoaded {
            module: req(r, "module")?,
        },
        "path_exists" => Kind::PathExists {
            path: req(r, "path")?,
        },
        "path_absent" => Kind::PathAbsent {
            path: req(r, "path")?,
        },
        "file_contains" => {
            let (path_v, text) = (req(r, "path"), req(r, "text"));
            Kind::FileContains {
                path: path_v?,
                text: text?,
            }
        }
        "sysctl" => {
            let (key, value) = (req(r, "key"), req(r, "value"));
            Kind::Sysctl {
                key: key?,
                value: value?,
            }
        }
        "interface_has_address" => {
            let (interface, address) = (req(r, "interface"), req(r, "address"));
            Kind::InterfaceHasAddress {
                interface: interface?,
                address: address?,
            }
        }
        "route_exists" => Kind::RouteExists {
            destination: req(r, "destination")?,
            via: f.get("via").and_then(|n| r.text(n, &join(path, "via"))),
            dev: f.get("dev").and_then(|n| r.text(n, &join(path, "dev"))),
        },
        "command" => {
            let argv_node = r.required(&f, path, "argv")?;
            let argv = r.list(argv_node, &join(path, "argv"), |r, n, p| r.text(n, p));
            if argv.is_empty() {
                r.error(argv_node.at, &join(path, "argv"), "an empty command");
                return None;
            }
            let mut regex = |key: &str| -> Result<Option<String>, ()> {
                let Some(n) = f.get(key) else {
                    return Ok(None);
                };
                let re = r.text(n, &join(path, key)).ok_or(())?;
                if let Err(e) = regex_lite::Regex::new(&re) {
                    r.error(
                        n.at,
                        &join(path, key),
                        format!("not a regular expression: {e}"),
                    );
                    return Err(());
                }
                Ok(Some(re))
            };
            let (output_matches, output_not_matches) =
                (regex("output_matches"), regex("output_not_matches"));
            let (Ok(output_matches), Ok(output_not_matches)) = (output_matches, output_not_matches)
            else {
                return None;
            };
            let timeout_s = match f.get("timeout_s") {
                Some(n) => r.unsigned(n, &join(path, "timeout_s"))?.max(1),
                None => 30,
            };
            Kind::Command {
                argv,
                output_matches,
                output_not_matches,
                timeout_s,
            }
        }
        "count_at_least" => {
            let what_node = r.required(&f, path, "what");
            let min_node = r.required(&f, path, "min");
            let what = what_node.and_then(|n| {
                let t = r.text(n, &join(path, "what"))?;
                match t.as_str() {
                    "gpus" => Some(Countable::Gpus),
                    "nvme" => Some(Countable::Nvme),
                    "iommu_groups" => Some(Countable::IommuGroups),
                    other => {
                        r.error(
                            n.at,
                            &join(path, "what"),
                            format!("`{other}`: one of gpus, nvme, iommu_groups"),
                        );
                        None
                    }
                }
            });
            let min = min_node.and_then(|n| r.unsigned(n, &join(path, "min")));
            Kind::CountAtLeast {
                what: what?,
                min: min?,
            }
        }
        "disk_free" => Kind::DiskFree {
            by_id: req(r, "by_id")?,
        },
        "blank_disk" => Kind::BlankDisk {
            by_id: req(r, "by_id")?,
        },
        "cpu_sockets" => {
            let mut opt = |key: &str| -> Result<Option<u64>, ()> {
                match f.get(key) {
                    Some(n) => r.unsigned(n, &join(path, key)).map(Some).ok_or(()),
                    None => Ok(None),
                }
            };
            let (min_sockets, min_cores_per_socket) =
                (opt("min_sockets"), opt("min_cores_per_socket"));
            let (Ok(min_sockets), Ok(min_cores_per_socket)) = (min_sockets, min_cores_per_socket)
            else {
                return None;
            };
            if min_sockets.is_none() && min_cores_per_socket.is_none() {
                r.error(
                    f.at,
                    path,
                    "cpu_sockets needs min_sockets, min_cores_per_socket or both",
                );
                return None;
            }
            Kind::CpuSockets {
                min_sockets,
                min_cores_per_socket,
            }
        }
        "sriov_vfs" => {
            // Ok(None): not given; Err: given and wrong (its error recorded).
            let mut field = |key: &str,
                             norm: fn(&str) -> Option<String>,
                             what: &str|
             -> Result<Option<String>, ()> {
                let Some(n) = f.get(key) else {
                    return Ok(None);
                };
                let t = r.text(n, &join(path, key)).ok_or(())?;
                match norm(&t) {
                    Some(v) => Ok(Some(v)),
                    None => {
                        r.error(n.at, &join(path, key), format!("`{t}` is not {what}"));
                        Err(())
                    }
                }
            };
            let slot = field("slot", pci_slot, "a PCI address (0000:3b:00.0 or 3b:00.0)");
            let vendor_id = field("vendor_id", pci_id, "a PCI id (15b3 or 0x15b3)");
            let device_id = field("device_id", pci_id, "a PCI id (101d or 0x101d)");
            let driver = field(
                "driver",
                |t| Some(t.trim().to_string()).filter(|t| !t.is_empty()),
                "a driver name",
            );
            let min_numvfs = r
                .required(&f, path, "min_numvfs")
                .and_then(|n| r.unsigned(n, &join(path, "min_numvfs")));
            let min_totalvfs = match f.get("min_totalvfs") {
                Some(n) => Some(r.unsigned(n, &join(path, "min_totalvfs"))?),
                None => None,
            };
            let (Ok(slot), Ok(vendor_id), Ok(device_id), Ok(driver)) =
                (slot, vendor_id, device_id, driver)
            else {
                return None;
            };
            let select = PciSelector {
                slot,
                vendor_id,
                device_id,
                driver,
            };
            if select == PciSelector::default() {
                r.error(
                    f.at,
                    path,
                    "sriov_vfs needs a device: slot, vendor_id, device_id and/or driver",
                );
                return None;
            }
            Kind::SriovVfs {
                select,
                min_numvfs: min_numvfs?,
                min_totalvfs,
            }
        }
        _ => return None,
    };
    Some(Check {
        name: name?,
        kind,
        hard,
        remediation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_located() {
        let text = "checks:\n  - name: kvm\n    kind: kernel_module_loaded\n    module: kvm\n  - name: bad\n    kind: kernel_modul_loaded\n  - name: kvm\n    kind: path_exists\n    pth: /dev/kvm\n    severity: medium\n  - name: cmd\n    kind: command\n    argv: [true]\n    output_matches: \"(\"\n";
        let e = load("b.yaml", text).unwrap_err();
        let lines: Vec<String> = e.0.iter().map(|d| d.to_string()).collect();
        let want = [
            "b.yaml:6:11: checks[1].kind: unknown kind `kernel_modul_loaded`",
            "b.yaml:7:11: checks: check name `kvm` is used twice",
            "b.yaml:9:5: checks[2].pth: unknown field `pth`",
            "b.yaml:7:5: checks[2].path: missing field `path`",
            "b.yaml:10:15: checks[2].severity: `medium`: hard or soft",
            "b.yaml:14:21: checks[3].output_matches: not a regular expression",
        ];
        for w in want {
            assert!(lines.iter().any(|l| l.starts_with(w)), "{w}\n{lines:#?}");
        }
        let ok = load("b.yaml", "checks:\n  - name: kvm\n    kind: kernel_module_loaded\n    module: kvm\n    severity: soft\n    remediation: load it\n").unwrap();
        assert_eq!(
            ok[0].kind,
            Kind::KernelModuleLoaded {
                module: "kvm".into()
            }
        );
        assert!(!ok[0].hard);
    }

    #[test]
    fn pci_ids_and_slots() {
        assert_eq!(pci_id("15b3").as_deref(), Some("0x15b3"));
        assert_eq!(pci_id("0x15B3").as_deref(), Some("0x15b3"));
        assert_eq!(pci_id("8").as_deref(), Some("0x0008"));
        for bad in ["", "0x", "15b3a", "mlx5", "0x-1", "１５"] {
            assert_eq!(pci_id(bad), None, "{bad}");
        }
        assert_eq!(pci_slot("3B:00.1").as_deref(), Some("0000:3b:00.1"));
        assert_eq!(pci_slot("0001:3b:00.7").as_deref(), Some("0001:3b:00.7"));
        for bad in [
            "3b:00",
            "3b:00.8",
            "0000:3b:00:00.0",
            "zz:00.0",
            "3b:0.0",
            ".",
            ":",
        ] {
            assert_eq!(pci_slot(bad), None, "{bad}");
        }
    }
}
