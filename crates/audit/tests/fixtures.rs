//! Every parser against every public fixture of its tool (tests/data/public, and the shared
//! folder's GPL ones when present) and against the captured machines' outputs.

#![allow(clippy::unwrap_used)]

mod common;

use common::{data, fixtures};
use paddock_audit::parse::{dmidecode, ipmitool, lsblk, lscpu, lspci, nvidia_smi, nvme, smartctl};

fn read(p: &std::path::Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned()
}

#[test]
fn dmidecode_every_server() {
    for f in fixtures("dmidecode") {
        let r = dmidecode::parse(&read(&f)).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let system = dmidecode::of_type(&r, 1)
            .next()
            .unwrap_or_else(|| panic!("{name}: no type 1"));
        assert!(system.value("Manufacturer").is_some(), "{name}: {system:?}");
        // Every one of these servers has memory devices, most with some populated.
        let dimms: Vec<_> = dmidecode::of_type(&r, 17).collect();
        assert!(!dimms.is_empty(), "{name}: no memory devices");
        let populated = dimms
            .iter()
            .filter(|d| d.get("Size").and_then(dmidecode::size_mib).is_some())
            .count();
        assert!(populated > 0, "{name}: no populated DIMM");
    }
    // The anonymised serials read as absent, not as "--".
    let r = dmidecode::parse(&read(
        &data().join("public/dmidecode/linuxhw_Dell_PowerEdge_R750_D1750E589C22.txt"),
    ))
    .unwrap();
    let sys = dmidecode::of_type(&r, 1).next().unwrap();
    assert_eq!(sys.value("Product Name").as_deref(), Some("PowerEdge R750"));
    assert_eq!(sys.value("Serial Number"), None);
}

#[test]
fn smartctl_json_and_text() {
    let mut seen = 0;
    for f in fixtures("smartctl") {
        let text = read(&f);
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("scan") {
            let devices = smartctl::parse_scan(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!devices.is_empty(), "{name}");
            continue;
        }
        let s = if name.ends_with(".json") {
            smartctl::parse(&text)
        } else {
            smartctl::parse_text(&text)
        }
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(s.model.is_some() || s.device.is_some(), "{name}: {s:?}");
        // `smartctl -i` (identity only) has no verdict.
        if !name.contains("_info_") {
            assert!(
                s.passed.is_some() || !s.messages.is_empty(),
                "{name}: no verdict: {s:?}"
            );
        }
        seen += 1;
    }
    assert!(seen >= 15);
    let s = smartctl::parse_text(&read(
        &data().join("public/smartctl/linuxhw_text_sata_HPE_MB014000GWTFF_06E46BD2EC38.txt"),
    ))
    .unwrap();
    assert_eq!(
        (s.passed, s.defects, s.power_on_hours, s.temperature_c),
        (Some(true), Some(0), Some(3003), Some(20))
    );
    let s = smartctl::parse_text(&read(&data().join(
        "public/smartctl/linuxhw_text_nvme_Dell_Ent_NVMe_CM6_RI_1.92TB_155C1E9BECF6.txt",
    )))
    .unwrap();
    assert_eq!(
        (s.critical_warning, s.power_on_hours, s.serial),
        (Some(0), Some(4995), None)
    );
}

#[test]
fn nvme_cli() {
    for f in fixtures("nvme-cli") {
        let text = read(&f);
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("smart-log") {
            let l = nvme::parse_smart_log(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(l.temperature_c.is_some(), "{name}");
        } else if name.contains("id-ctrl") {
            let c = nvme::parse_id_ctrl(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(c.model.as_deref().unwrap().contains("980 PRO"), "{c:?}");
        }
        // `nvme list` outputs are not read by the collectors.
    }
}

#[test]
fn nvidia_smi_xml_and_text() {
    for f in fixtures("nvidia-smi") {
        let text = read(&f);
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".xml") {
            let r = nvidia_smi::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!r.gpus.is_empty(), "{name}");
            for g in &r.gpus {
                assert!(g.name.is_some() && g.bus_id.is_some(), "{name}: {g:?}");
                assert!(g.memory_total_mib.is_some(), "{name}: {g:?}");
            }
            if name.contains("mig") {
                assert!(r.gpus.iter().any(|g| g.mig_devices > 0), "{name}");
            }
        } else {
            // Text reports (`-q`, or a capture with `-q` sections in it).
            let sections: Vec<String> = if text.contains("# $ nvidia-smi -q\n") {
                text.split("# $ nvidia-smi -q\n")
                    .skip(1)
                    .map(|s| {
                        // Past the `####` rule line, up to the next section's rule.
                        let body = s.split_once('\n').map(|(_, b)| b).unwrap_or("");
                        body.split("\n####").next().unwrap_or("").to_string()
                    })
                    .collect()
            } else {
                vec![text.clone()]
            };
            for s in sections {
                let r = nvidia_smi::parse_text(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(!r.gpus.is_empty(), "{name}");
                assert!(r.driver_version.is_some(), "{name}");
            }
        }
    }
    // The captured H100 and H200, both ways, agree on every field. The two reports were taken
    // a moment apart: the power draw may differ by a little, nothing else.
    for machine in ["h100-firecracker-vm", "h200-firecracker-vm"] {
        let dir = data().join("hw").join(machine);
        let x = nvidia_smi::parse(&read(&dir.join("nvidia-smi-q-x"))).unwrap();
        let t = nvidia_smi::parse_text(&read(&dir.join("nvidia-smi-q"))).unwrap();
        assert_eq!(x.driver_version, t.driver_version, "{machine}");
        assert_eq!(x.cuda_version, t.cuda_version, "{machine}");
        assert_eq!(x.gpus.len(), 1, "{machine}");
        assert_eq!(t.gpus.len(), 1, "{machine}");
        let (a, b) = (&x.gpus[0], &t.gpus[0]);
        let (pa, pb) = (a.power_draw_w.unwrap(), b.power_draw_w.unwrap());
        assert!((pa - pb).abs() < 0.05 * pa, "{machine}: {pa} W vs {pb} W");
        let (mut a, mut b) = (
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap(),
        );
        a["power_draw_w"] = serde_json::Value::Null;
        b["power_draw_w"] = serde_json::Value::Null;
        assert_eq!(a, b, "{machine}: the XML and the text path differ");
        // Both report every field of a healthy GPU (nothing left unread on either path).
        for (k, v) in a.as_object().unwrap() {
            if !["power_draw_w", "mig_devices"].contains(&k.as_str()) {
                assert!(!v.is_null(), "{machine}: {k} was not read");
            }
        }
        assert_eq!(a["remapped_rows_uncorrectable"], 0, "{machine}");
        assert_eq!(a["ecc_mode"], "Enabled", "{machine}");
    }
}

#[test]
fn ipmitool_sensors() {
    for f in fixtures("ipmitool") {
        let s =
            ipmitool::parse_sensors(&read(&f)).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(s.len() > 10);
        assert!(
            s.iter()
                .any(|x| x.name == "CPU1 Temp" && x.value == Some(33.0))
        );
    }
}

#[test]
fn lsblk_lspci_lscpu_of_the_captures_and_public() {
    for f in fixtures("lsblk") {
        let d = lsblk::parse(&read(&f)).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(
            d.iter().any(|x| !x.children.is_empty()),
            "nested children: {}",
            f.display()
        );
    }
    for m in ["h100-firecracker-vm", "x86-cloud-vm"] {
        let dir = data().join("hw").join(m);
        for f in ["lsblk-json", "lsblk-json-default"] {
            let d = lsblk::parse(&read(&dir.join(f))).unwrap_or_else(|e| panic!("{m}/{f}: {e}"));
            assert!(
                d.iter().any(|x| x.all_mountpoints().contains(&"/")),
                "{m}/{f}"
            );
        }
        assert!(
            lscpu::parse(&read(&dir.join("lscpu-json")))
                .unwrap()
                .iter()
                .any(|(k, _)| k == "Model name")
        );
    }
    let pci = lspci::parse(&read(&data().join("hw/x86-cloud-vm/lspci-vmm"))).unwrap();
    assert!(pci.len() >= 5 && pci.iter().all(|d| d.slot.starts_with("0000:")));
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/public/lspci");
    if shared.is_dir() {
        for f in fixtures("lspci") {
            let d = lspci::parse(&read(&f)).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert!(!d.is_empty());
        }
    }
}

/// Issue 15 (5): the text report calls the XML's `instant_power_draw` "Instantaneous Power
/// Draw"; the text path looked for "Instant Power Draw" and fell back to the average.
#[test]
fn nvidia_smi_text_reads_the_instantaneous_power_draw() {
    let dir = data().join("hw/h100-firecracker-vm");
    let x = nvidia_smi::parse(&read(&dir.join("nvidia-smi-q-x"))).unwrap();
    let t = nvidia_smi::parse_text(&read(&dir.join("nvidia-smi-q"))).unwrap();
    // Captured a moment apart, each has its own instantaneous reading; the text's average
    // is 145.12 W.
    assert_eq!(x.gpus[0].power_draw_w, Some(145.45));
    assert_eq!(t.gpus[0].power_draw_w, Some(145.08));
    // Every `-q` section of the public H100/H200 captures: the first "Instantaneous Power
    // Draw" (the GPU's, before the memory's and the module's).
    let mut seen = 0;
    for f in fixtures("nvidia-smi") {
        let text = read(&f);
        for s in q_sections(&text) {
            let s = s.as_str();
            let Some(line) = s.lines().find(|l| l.contains("Instantaneous Power Draw")) else {
                continue;
            };
            let want: f64 = line
                .split(':')
                .nth(1)
                .unwrap()
                .trim()
                .trim_end_matches(" W")
                .parse()
                .unwrap();
            let r = nvidia_smi::parse_text(s).unwrap();
            assert_eq!(r.gpus[0].power_draw_w, Some(want), "{}", f.display());
            seen += 1;
        }
    }
    assert!(seen >= 2, "{seen}");
}

/// Issue 15 (6): masked values read as absent, as docs/audit.md promises: the all-zero GPU
/// UUID of the public H100 capture, and `NO DIMM` in the empty slots of a ThinkSystem
/// SR650 V2.
#[test]
fn masked_placeholders_read_as_absent() {
    let f = data().join(
        "public/nvidia-smi/nvidia_gpu_exporter_capture_linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt",
    );
    let text = read(&f);
    assert!(text.contains("GPU UUID                                           : GPU-00000000-0000-0000-0000-000000000000"));
    let sections = q_sections(&text);
    assert_eq!(sections.len(), 2);
    for s in sections {
        let r = nvidia_smi::parse_text(&s).unwrap();
        assert_eq!(r.gpus[0].uuid, None, "{:?}", r.gpus[0]);
        assert_eq!(r.gpus[0].serial, None, "{:?}", r.gpus[0]);
    }
    let r = dmidecode::parse(&read(
        &data().join("public/dmidecode/linuxhw_Lenovo_ThinkSystem_SR650_V2_D65FD98664FE.txt"),
    ))
    .unwrap();
    let empty: Vec<_> = dmidecode::of_type(&r, 17)
        .filter(|d| d.get("Manufacturer") == Some("NO DIMM"))
        .collect();
    assert_eq!(empty.len(), 16);
    for d in empty {
        assert_eq!(d.value("Manufacturer"), None, "{d:?}");
        assert_eq!(d.value("Part Number"), None, "{d:?}");
    }
    // A real GPU UUID and a real part number still read.
    assert!(paddock_audit::parse::meaningful("GPU-07310d02-5a07-b366-b9c8-dda734271cd2").is_some());
    assert!(paddock_audit::parse::meaningful("NO DIMMS HERE").is_some());
}

/// The `nvidia-smi -q` sections of a multi-section capture: past each `# $ nvidia-smi -q`
/// header's rule line, up to the next section's rule.
fn q_sections(text: &str) -> Vec<String> {
    text.split("# $ nvidia-smi -q\n")
        .skip(1)
        .map(|s| {
            let body = s.split_once('\n').map(|(_, b)| b).unwrap_or("");
            body.split("\n####").next().unwrap_or("").to_string()
        })
        .collect()
}
