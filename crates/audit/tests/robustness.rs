//! No parser panics on malformed input: every fixture cut at many points, bytes flipped,
//! and arbitrary strings (proptest). `fuzz/fuzz_targets/audit_parsers.rs` does the same with
//! cargo-fuzz for longer runs.

#![allow(clippy::unwrap_used)]

mod common;

use paddock_audit::parse::*;
use proptest::prelude::*;

fn all_parsers(text: &str) {
    let _ = dmidecode::parse(text);
    let _ = lsblk::parse(text);
    let _ = lscpu::parse(text);
    let _ = lspci::parse(text);
    let _ = ip::parse_addr(text);
    let _ = ip::parse_route(text);
    let _ = ipmitool::parse_sensors(text);
    let _ = ipmitool::parse_fru(text);
    let _ = nvidia_smi::parse(text);
    let _ = nvidia_smi::parse_text(text);
    let _ = nvme::parse_id_ctrl(text);
    let _ = nvme::parse_smart_log(text);
    let _ = proc::meminfo(text);
    let _ = proc::cpuinfo(text);
    let _ = proc::mounts(text);
    let _ = proc::modules(text);
    let _ = smartctl::parse(text);
    let _ = smartctl::parse_text(text);
    let _ = smartctl::parse_scan(text);
}

/// Every fixture (public and captured), truncated at 16 points and with bytes flipped.
#[test]
fn truncated_and_mangled_fixtures() {
    let mut files = Vec::new();
    for tool in [
        "dmidecode",
        "ipmitool",
        "lsblk",
        "nvidia-smi",
        "nvme-cli",
        "smartctl",
    ] {
        files.extend(common::fixtures(tool));
    }
    for m in ["h100-firecracker-vm", "x86-cloud-vm"] {
        for e in std::fs::read_dir(common::data().join("hw").join(m)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    let mut runs = 0;
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for i in 0..16usize {
            let cut = bytes.len() * i / 16;
            all_parsers(&String::from_utf8_lossy(&bytes[..cut]));
            let mut mangled = bytes.clone();
            if !mangled.is_empty() {
                let at = (i * 7919) % mangled.len();
                mangled[at] = mangled[at].wrapping_add(1 + i as u8);
            }
            all_parsers(&String::from_utf8_lossy(&mangled));
            runs += 2;
        }
    }
    assert!(runs > 1500, "{runs}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn arbitrary_text(s in "\\PC{0,400}") {
        all_parsers(&s);
    }

    #[test]
    fn tool_shaped_text(s in "(Handle 0x[0-9A-F]{4}, DMI type [0-9]{1,3}, [0-9]+ bytes\\n[A-Za-z ]{0,20}\\n(\\t\\t?[A-Za-z ]{0,10}: ?[a-z0-9 ]{0,10}\\n){0,5}){0,4}") {
        all_parsers(&s);
    }
}
