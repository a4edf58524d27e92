//! Every audit parser on arbitrary bytes: errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paddock_audit::parse::*;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = dmidecode::parse(&text);
    let _ = lsblk::parse(&text);
    let _ = lscpu::parse(&text);
    let _ = lspci::parse(&text);
    let _ = ip::parse_addr(&text);
    let _ = ip::parse_route(&text);
    let _ = ipmitool::parse_sensors(&text);
    let _ = ipmitool::parse_fru(&text);
    let _ = nvidia_smi::parse(&text);
    let _ = nvidia_smi::parse_text(&text);
    let _ = nvme::parse_id_ctrl(&text);
    let _ = nvme::parse_smart_log(&text);
    let _ = proc::meminfo(&text);
    let _ = proc::cpuinfo(&text);
    let _ = proc::mounts(&text);
    let _ = smartctl::parse(&text);
    let _ = smartctl::parse_text(&text);
    let _ = smartctl::parse_scan(&text);
});
