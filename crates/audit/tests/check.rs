//! Baseline checks evaluated on this machine (files, /proc, /sys, `ip`, commands) and, for
//! the disk rules, on a scripted host whose lsblk output has mounted partitions.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use paddock_audit::check::baseline::load;
use paddock_audit::check::{line, report, run};
use paddock_audit::host::{Host, Local};

fn statuses(host: &dyn Host, yaml: &str) -> Vec<(String, &'static str, String)> {
    let checks = load("t.yaml", yaml).unwrap_or_else(|e| panic!("{e:?}"));
    run(host, &checks)
        .into_iter()
        .map(|r| (r.name, r.status, r.detail))
        .collect()
}

#[test]
fn checks_on_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("motd");
    std::fs::write(&file, "welcome to lab1\n").unwrap();
    let f = file.display();
    let first_cmdline_word = std::fs::read_to_string("/proc/cmdline")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let yaml = format!(
        r#"checks:
  - {{name: file-there, kind: path_exists, path: "{f}"}}
  - {{name: file-not-there, kind: path_exists, path: "{f}.missing"}}
  - {{name: absent, kind: path_absent, path: "{f}.missing"}}
  - {{name: contains, kind: file_contains, path: "{f}", text: lab1}}
  - {{name: not-contains, kind: file_contains, path: "{f}", text: lab2, severity: soft}}
  - {{name: ostype, kind: sysctl, key: kernel.ostype, value: Linux}}
  - {{name: ostype-wrong, kind: sysctl, key: kernel.ostype, value: Plan9}}
  - {{name: cmdline, kind: kernel_cmdline_contains, value: "{first_cmdline_word}"}}
  - {{name: no-module, kind: kernel_module_loaded, module: paddock_no_such_module}}
  - {{name: echo, kind: command, argv: [sh, -c, "echo hello"], output_matches: "^hel+o$"}}
  - {{name: echo-nomatch, kind: command, argv: [sh, -c, "echo bye"], output_matches: "^hello"}}
  - {{name: exit-1, kind: command, argv: [sh, -c, "echo broken >&2; exit 1"]}}
  - {{name: no-such-tool, kind: command, argv: [paddock-no-such-tool]}}
  - {{name: slow, kind: command, argv: [sleep, "5"], timeout_s: 1}}
  - {{name: nvme-zero, kind: count_at_least, what: nvme, min: 0}}
  - {{name: gpus-many, kind: count_at_least, what: gpus, min: 1000, severity: soft}}
  - {{name: lo, kind: interface_has_address, interface: lo, address: 127.0.0.1}}
  - {{name: lo-cidr, kind: interface_has_address, interface: lo, address: 127.0.0.1/8}}
  - {{name: lo-other, kind: interface_has_address, interface: lo, address: 127.0.0.2}}
  - {{name: no-route, kind: route_exists, destination: 198.51.100.0/24}}
  - {{name: no-disk, kind: disk_free, by_id: paddock-no-such-disk}}
"#
    );
    let got = statuses(&Local, &yaml);
    let want = [
        ("file-there", "PASS"),
        ("file-not-there", "FAIL"),
        ("absent", "PASS"),
        ("contains", "PASS"),
        ("not-contains", "WARN"),
        ("ostype", "PASS"),
        ("ostype-wrong", "FAIL"),
        ("cmdline", "PASS"),
        ("no-module", "FAIL"),
        ("echo", "PASS"),
        ("echo-nomatch", "FAIL"),
        ("exit-1", "FAIL"),
        ("no-such-tool", "FAIL"),
        ("slow", "FAIL"),
        ("nvme-zero", "PASS"),
        ("gpus-many", "WARN"),
        ("lo", "PASS"),
        ("lo-cidr", "PASS"),
        ("lo-other", "FAIL"),
        ("no-route", "FAIL"),
        ("no-disk", "FAIL"),
    ];
    for ((name, status, detail), (wn, ws)) in got.iter().zip(want) {
        assert_eq!((name.as_str(), *status), (wn, ws), "{detail}");
    }
    let detail = |n: &str| got.iter().find(|g| g.0 == n).unwrap().2.clone();
    assert!(
        detail("exit-1").contains("exit 1: broken"),
        "{}",
        detail("exit-1")
    );
    assert!(detail("no-such-tool").contains("not installed"));
    assert!(detail("slow").contains("did not finish within 1 s"));
    assert!(detail("ostype-wrong").contains("expected Plan9"));

    // A route this machine has (when it has one) passes.
    let routes = Local
        .run("ip", &["-j", "-4", "route"], Duration::from_secs(5))
        .unwrap();
    let routes = paddock_audit::parse::ip::parse_route(&routes.stdout_text()).unwrap();
    if let Some(r) = routes.first() {
        let yaml = format!(
            "checks:\n  - {{name: r, kind: route_exists, destination: \"{}\"}}\n",
            r.destination
        );
        assert_eq!(statuses(&Local, &yaml)[0].1, "PASS");
    }
}

#[test]
fn output_lines_round_trip_and_the_summary_counts() {
    let yaml = "checks:\n  - {name: a, kind: path_exists, path: /}\n  - {name: b, kind: path_exists, path: /nope, remediation: \"create it = now\"}\n  - {name: c, kind: path_exists, path: /nope, severity: soft}\n";
    let results = run(&Local, &load("t.yaml", yaml).unwrap());
    let (lines, hard_failure) = report(&results);
    assert!(hard_failure);
    assert_eq!(lines.len(), 4);
    for (l, r) in lines.iter().zip(&results) {
        let f = line::parse(l).unwrap();
        assert_eq!(f[0].1, r.status);
        assert_eq!(f[1].1, r.name);
        assert_eq!(f[2].1, r.detail);
        // Remediation only where something is wrong.
        assert_eq!(
            f.get(3).map(|x| x.1.as_str()),
            if r.status == "PASS" {
                None
            } else {
                r.remediation.as_deref()
            }
        );
    }
    assert_eq!(
        lines[3],
        "PADDOCK_CHECK summary checks=3 failures=1 warnings=1"
    );
    let (_, hard) = report(&results[2..]);
    assert!(!hard, "a soft failure alone does not fail the host");
}

#[test]
fn disk_free_sees_child_partitions_and_the_system_disk() {
    // The runbook's trap: the parent is not mounted, a partition of it is.
    let lsblk = r#"{"blockdevices":[
      {"name":"nvme0n1","type":"disk","mountpoints":[null],"children":[{"name":"nvme0n1p1","type":"part","mountpoints":["/share2"]}]},
      {"name":"nvme1n1","type":"disk","mountpoints":[null]},
      {"name":"nvme4n1","type":"disk","mountpoints":[null],"children":[{"name":"nvme4n1p2","type":"part","mountpoints":["/"]}]}]}"#;
    let mut host = common::Scripted::default().command("lsblk", lsblk);
    for (id, k) in [
        ("eui.a", "nvme0n1"),
        ("eui.b", "nvme1n1"),
        ("eui.os", "nvme4n1"),
        ("eui.ghost", "nvme9n1"),
    ] {
        host = host.link(&format!("/dev/disk/by-id/nvme-{id}"), &format!("../../{k}"));
    }
    let yaml = "checks:\n  - {name: a, kind: disk_free, by_id: nvme-eui.a}\n  - {name: b, kind: disk_free, by_id: nvme-eui.b}\n  - {name: os, kind: disk_free, by_id: nvme-eui.os}\n  - {name: ghost, kind: disk_free, by_id: nvme-eui.ghost}\n  - {name: none, kind: disk_free, by_id: /dev/disk/by-id/nvme-eui.none}\n";
    let got = statuses(&host, yaml);
    assert_eq!(got[0].1, "FAIL");
    assert!(got[0].2.contains("mounted at /share2"), "{}", got[0].2);
    assert_eq!(got[1].1, "PASS", "{}", got[1].2);
    assert_eq!(got[2].1, "FAIL");
    assert!(got[2].2.contains("system disk"), "{}", got[2].2);
    assert_eq!(got[3].1, "FAIL");
    assert!(got[3].2.contains("does not list"), "{}", got[3].2);
    assert!(got[4].2.contains("does not exist"), "{}", got[4].2);
}

/// Issue 15 item 23: a negated output match (`output_not_matches`).
#[test]
fn command_output_not_matches() {
    let yaml = r#"checks:
  - {name: no-error, kind: command, argv: [sh, -c, "echo all good"], output_not_matches: "(?i)error"}
  - {name: has-error, kind: command, argv: [sh, -c, "echo; echo ERROR: link down"], output_not_matches: "(?i)error"}
  - {name: both, kind: command, argv: [sh, -c, "echo mlx5 up"], output_matches: "mlx5", output_not_matches: "down"}
"#;
    let got = statuses(&Local, yaml);
    assert_eq!(got[0].1, "PASS", "{}", got[0].2);
    assert_eq!(got[1].1, "FAIL", "{}", got[1].2);
    assert!(got[1].2.contains("ERROR: link down"), "{}", got[1].2);
    assert_eq!(got[2].1, "PASS", "{}", got[2].2);
    let bad = load(
        "t.yaml",
        "checks:\n  - {name: x, kind: command, argv: [true], output_not_matches: \"(\"}\n",
    )
    .unwrap_err();
    assert!(
        bad.0[0]
            .to_string()
            .contains("checks[0].output_not_matches: not a regular expression"),
        "{bad:?}"
    );
}

/// Issue 15 item 23: an interface given as a glob pattern (`ibp*`, one InfiniBand port of
/// several): passes when an interface it matches has the address.
#[test]
fn interface_name_patterns() {
    let ip = r#"[{"ifindex":1,"ifname":"lo","mtu":65536,"operstate":"UNKNOWN","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
      {"ifindex":4,"ifname":"ibp24s0","mtu":4092,"operstate":"UP","addr_info":[{"family":"inet","local":"10.1.0.7","prefixlen":16}]},
      {"ifindex":5,"ifname":"ibp41s0","mtu":4092,"operstate":"DOWN","addr_info":[]}]"#;
    let host = common::Scripted::default().command("ip", ip);
    let yaml = "checks:\n  - {name: ib, kind: interface_has_address, interface: \"ibp*\", address: 10.1.0.7}\n  - {name: ib-other, kind: interface_has_address, interface: \"ibp*\", address: 10.1.0.8/16}\n  - {name: none, kind: interface_has_address, interface: \"enp?s0\", address: 10.1.0.7}\n";
    let got = statuses(&host, yaml);
    assert_eq!(got[0].1, "PASS", "{}", got[0].2);
    assert!(got[0].2.contains("ibp24s0"), "{}", got[0].2);
    assert_eq!(got[1].1, "FAIL", "{}", got[1].2);
    assert!(
        got[1].2.contains("ibp24s0") && got[1].2.contains("ibp41s0"),
        "{}",
        got[1].2
    );
    assert_eq!(got[2].1, "FAIL", "{}", got[2].2);
    assert!(got[2].2.contains("no interface matches"), "{}", got[2].2);
}

/// Issue 15 item 23: `disk_free` passes a disk with partitions or a whole-disk filesystem
/// as long as nothing is mounted; `blank_disk` fails those, and a disk with any wipefs
/// signature (this machine's `wipefs --no-act --json` output on an image with ext4 and on a
/// blank one).
#[test]
fn blank_disk_needs_no_partition_filesystem_or_signature() {
    let lsblk = r#"{"blockdevices":[
      {"name":"sda","type":"disk","mountpoints":[null],"children":[{"name":"sda1","type":"part","mountpoints":[null]}]},
      {"name":"sdb","type":"disk","fstype":"ext4","mountpoints":[null]},
      {"name":"sdc","type":"disk","mountpoints":[null]},
      {"name":"sdd","type":"disk","mountpoints":["/data"]}]}"#;
    let blank = "{\n   \"signatures\": [\n\n   ]\n}\n";
    let ext4 = "{\n   \"signatures\": [\n      {\n         \"device\": \"sdc\",\n         \"offset\": \"0x438\",\n         \"type\": \"ext4\",\n         \"uuid\": \"cd8fd5a2-8368-4829-8161-3879efa07d3e\",\n         \"label\": null\n      }\n   ]\n}\n";
    let host = |wipefs: Option<&str>| {
        let mut h = common::Scripted::default().command("lsblk", lsblk);
        if let Some(w) = wipefs {
            h = h.command("wipefs", w);
        }
        for k in ["sda", "sdb", "sdc", "sdd"] {
            h = h.link(&format!("/dev/disk/by-id/ata-{k}"), &format!("../../{k}"));
        }
        h
    };
    let yaml = "checks:\n  - {name: a, kind: blank_disk, by_id: ata-sda}\n  - {name: b, kind: blank_disk, by_id: ata-sdb}\n  - {name: c, kind: blank_disk, by_id: ata-sdc}\n  - {name: d, kind: blank_disk, by_id: ata-sdd}\n  - {name: a-free, kind: disk_free, by_id: ata-sda}\n";
    let got = statuses(&host(Some(blank)), yaml);
    assert_eq!(got[0].1, "FAIL");
    assert!(
        got[0].2.contains("partition") && got[0].2.contains("sda1"),
        "{}",
        got[0].2
    );
    assert_eq!(got[1].1, "FAIL");
    assert!(got[1].2.contains("ext4"), "{}", got[1].2);
    assert_eq!(got[2].1, "PASS", "{}", got[2].2);
    assert_eq!(got[3].1, "FAIL");
    assert!(got[3].2.contains("/data"), "{}", got[3].2);
    assert_eq!(
        got[4].1, "PASS",
        "disk_free keeps its meaning: {}",
        got[4].2
    );
    // A signature lsblk does not show (a filesystem at an offset, a stale RAID superblock).
    let got = statuses(&host(Some(ext4)), yaml);
    assert_eq!(got[2].1, "FAIL");
    assert!(got[2].2.contains("ext4 at 0x438"), "{}", got[2].2);
    // Without wipefs the disk cannot be called blank.
    let got = statuses(&host(None), yaml);
    assert_eq!(got[2].1, "FAIL");
    assert!(got[2].2.contains("wipefs"), "{}", got[2].2);
}

/// A public dmidecode output (`tests/data/public/dmidecode/NAME.txt`).
fn dmidecode(name: &str) -> String {
    std::fs::read_to_string(common::data().join(format!("public/dmidecode/{name}.txt"))).unwrap()
}

/// `text` with the first `from` after `after` replaced by `to` (one socket's record edited).
fn edit_after(text: &str, after: &str, from: &str, to: &str) -> String {
    let start = text.find(after).unwrap();
    let at = start + text[start..].find(from).unwrap();
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

const R750: &str = "linuxhw_Dell_PowerEdge_R750_D1750E589C22";

/// Issue 15 item 23: `cpu_sockets` requires populated-and-enabled sockets and enabled cores
/// per socket, from SMBIOS type 4. Real outputs: the Dell R750 (two 20-core Xeon Silver
/// 4316), the Supermicro SSG-6028R (`SOCKET 1` unpopulated), the HP DL380p Gen8 (`Proc 2`
/// "Populated, Idle" on a healthy machine: HP firmware reports the non-boot processor so).
/// No public capture has a disabled socket or disabled cores: those are the R750's output
/// with one line edited.
#[test]
fn cpu_sockets_need_enabled_sockets_and_cores() {
    let yaml = "checks:\n  - {name: two, kind: cpu_sockets, min_sockets: 2}\n  - {name: cores, kind: cpu_sockets, min_cores_per_socket: 20}\n  - {name: both, kind: cpu_sockets, min_sockets: 2, min_cores_per_socket: 24}\n";
    let on = |dmi: &str| statuses(&common::Scripted::default().command("dmidecode", dmi), yaml);

    let got = on(&dmidecode(R750));
    assert_eq!(got[0].1, "PASS", "{}", got[0].2);
    assert!(got[0].2.contains("2 of 2 sockets"), "{}", got[0].2);
    assert_eq!(got[1].1, "PASS", "{}", got[1].2);
    assert_eq!(got[2].1, "FAIL", "{}", got[2].2);
    assert!(
        got[2].2.contains("CPU1: 20 of 20 cores enabled"),
        "{}",
        got[2].2
    );

    let got = on(&dmidecode("netbox-agent_SM_SSG-6028R"));
    assert_eq!(got[0].1, "FAIL", "{}", got[0].2);
    assert!(
        got[0].2.contains("1 of 2 sockets") && got[0].2.contains("SOCKET 1 Unpopulated"),
        "{}",
        got[0].2
    );

    let got = on(&dmidecode("netbox-agent_HP_DL380p_Gen8"));
    assert_eq!(got[0].1, "PASS", "an idle socket is in use: {}", got[0].2);

    let disabled = edit_after(
        &dmidecode(R750),
        "Socket Designation: CPU2",
        "Status: Populated, Enabled",
        "Status: Populated, Disabled By BIOS",
    );
    let got = on(&disabled);
    assert_eq!(got[0].1, "FAIL", "{}", got[0].2);
    assert!(
        got[0].2.contains("CPU2 Populated, Disabled By BIOS"),
        "{}",
        got[0].2
    );
    assert_eq!(
        got[1].1, "FAIL",
        "a disabled socket has no usable cores: {}",
        got[1].2
    );

    let fewer = edit_after(
        &dmidecode(R750),
        "Socket Designation: CPU1",
        "Core Enabled: 20",
        "Core Enabled: 16",
    );
    let got = on(&fewer);
    assert_eq!(got[0].1, "PASS", "{}", got[0].2);
    assert_eq!(got[1].1, "FAIL", "{}", got[1].2);
    assert!(
        got[1].2.contains("CPU1: 16 of 20 cores enabled"),
        "{}",
        got[1].2
    );

    // Without dmidecode (or without tables) nothing can be said: it fails.
    let got = statuses(&common::Scripted::default(), yaml);
    assert_eq!(got[0].1, "FAIL");
    assert!(
        got[0].2.contains("dmidecode is not installed"),
        "{}",
        got[0].2
    );
    let got = on("# dmidecode 3.4\nNo SMBIOS nor DMI entry point found, sorry.\n");
    assert_eq!(got[0].1, "FAIL");
    assert!(got[0].2.contains("no DMI records"), "{}", got[0].2);
}

/// A scripted sysfs (no public capture has a machine's SR-IOV sysfs files): a ConnectX-6 Dx
/// (15b3:101d, mlx5_core) with two ports, the first with 4 of 8 VFs configured, the second
/// with none, one VF (15b3:101e) of the first, and an NVMe drive without SR-IOV.
fn sriov_host() -> common::Scripted {
    let sys = "/sys/bus/pci/devices";
    let mut h = common::Scripted::default();
    for (slot, vendor, device, driver, vfs) in [
        (
            "0000:3b:00.0",
            "0x15b3",
            "0x101d",
            "mlx5_core",
            Some(("4", "8")),
        ),
        (
            "0000:3b:00.1",
            "0x15b3",
            "0x101d",
            "mlx5_core",
            Some(("0", "8")),
        ),
        ("0000:3b:00.2", "0x15b3", "0x101e", "mlx5_core", None),
        ("0000:5e:00.0", "0x144d", "0xa824", "nvme", None),
    ] {
        h = h
            .file(&format!("{sys}/{slot}/vendor"), &format!("{vendor}\n"))
            .file(&format!("{sys}/{slot}/device"), &format!("{device}\n"))
            .link(
                &format!("{sys}/{slot}/driver"),
                &format!("../../../bus/pci/drivers/{driver}"),
            );
        if let Some((num, total)) = vfs {
            h = h
                .file(&format!("{sys}/{slot}/sriov_numvfs"), &format!("{num}\n"))
                .file(
                    &format!("{sys}/{slot}/sriov_totalvfs"),
                    &format!("{total}\n"),
                );
        }
    }
    h.link(&format!("{sys}/0000:3b:00.2/physfn"), "../0000:3b:00.0")
}

/// Issue 15 item 23: `sriov_vfs` requires enough VFs on the physical functions it selects
/// (by slot, vendor/device id, driver); a selected device without SR-IOV fails.
#[test]
fn sriov_vfs_needs_enough_vfs() {
    let yaml = r#"checks:
  - {name: port0, kind: sriov_vfs, slot: "3b:00.0", min_numvfs: 4}
  - {name: port0-more, kind: sriov_vfs, slot: "0000:3b:00.0", min_numvfs: 8}
  - {name: port0-total, kind: sriov_vfs, slot: "3b:00.0", min_numvfs: 1, min_totalvfs: 16}
  - {name: cx6, kind: sriov_vfs, vendor_id: "15b3", device_id: "0x101D", min_numvfs: 1}
  - {name: cx6-none, kind: sriov_vfs, driver: mlx5_core, min_numvfs: 0}
  - {name: nvme, kind: sriov_vfs, driver: nvme, min_numvfs: 1}
  - {name: vf, kind: sriov_vfs, slot: "3b:00.2", min_numvfs: 0}
  - {name: intel, kind: sriov_vfs, vendor_id: "8086", min_numvfs: 1}
"#;
    let got = statuses(&sriov_host(), yaml);
    let want = [
        ("port0", "PASS", "0000:3b:00.0: 4 of 8 VFs"),
        (
            "port0-more",
            "FAIL",
            "4 VFs configured, expected at least 8",
        ),
        (
            "port0-total",
            "FAIL",
            "8 VFs possible, expected at least 16",
        ),
        (
            "cx6",
            "FAIL",
            "0000:3b:00.1: 0 VFs configured, expected at least 1",
        ),
        ("cx6-none", "PASS", "0000:3b:00.1: 0 of 8 VFs"),
        ("nvme", "FAIL", "0000:5e:00.0: no SR-IOV"),
        (
            "vf",
            "FAIL",
            "no PCI physical function matches slot=0000:3b:00.2",
        ),
        (
            "intel",
            "FAIL",
            "no PCI physical function matches vendor_id=0x8086",
        ),
    ];
    for ((name, status, detail), (wn, ws, wd)) in got.iter().zip(want) {
        assert_eq!((name.as_str(), *status), (wn, ws), "{detail}");
        assert!(detail.contains(wd), "{name}: {detail}");
    }
    // The VF is not one of the devices a driver selects (it has no VFs of its own).
    assert!(!got[4].2.contains("3b:00.2"), "{}", got[4].2);
}

/// Issue 15 item 23: the new kinds' parameters are checked like the others', each error
/// located.
#[test]
fn cpu_sockets_and_sriov_vfs_errors_are_located() {
    let text = "checks:\n  - {name: a, kind: cpu_sockets}\n  - {name: b, kind: cpu_sockets, min_sockets: two}\n  - {name: c, kind: sriov_vfs, min_numvfs: 4}\n  - {name: d, kind: sriov_vfs, vendor_id: mellanox, slot: \"3b:00\", min_numvfs: -1}\n  - {name: e, kind: sriov_vfs, driver: mlx5_core}\n  - {name: f, kind: cpu_sockets, min_sockets: 2, slot: \"3b:00.0\"}\n";
    let e = load("b.yaml", text).unwrap_err();
    let lines: Vec<String> = e.0.iter().map(|d| d.to_string()).collect();
    for w in [
        "b.yaml:2:6: checks[0]: cpu_sockets needs min_sockets, min_cores_per_socket or both",
        "b.yaml:3:47: checks[1].min_sockets: expected a whole number",
        "b.yaml:4:6: checks[2]: sriov_vfs needs a device",
        "b.yaml:5:43: checks[3].vendor_id: `mellanox` is not a PCI id",
        "b.yaml:5:59: checks[3].slot: `3b:00` is not a PCI address",
        "b.yaml:5:80: checks[3].min_numvfs: expected a whole number",
        "b.yaml:6:6: checks[4].min_numvfs: missing field `min_numvfs`",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(w)), "{w}\n{lines:#?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("b.yaml:7:50: checks[5].slot: unknown field `slot`")),
        "{lines:#?}"
    );
}
