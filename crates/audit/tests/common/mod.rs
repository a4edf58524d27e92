//! A captured machine (`tests/data/hw/<name>/`, see its README) replayed as a [`Host`]:
//! each command answers with the output captured for it (or is absent, as it was there),
//! and /proc, /etc and /sys read the captured files. The sysfs summaries of the capture
//! (`sysfs-pci`, `sysfs-net`: one line per device, `key=value` fields) become a small
//! sysfs tree in a temporary directory.

#![allow(dead_code, clippy::unwrap_used)]

pub mod sshd;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use paddock_audit::host::{CmdOutput, Host, HostError, Local};

pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The public fixtures of `tool`: the project's copies, plus the shared folder's (GPL ones
/// included) when it exists next to the checkout.
pub fn fixtures(tool: &str) -> Vec<PathBuf> {
    let mut dirs = vec![data().join("public").join(tool)];
    let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/public")
        .join(tool);
    if shared.is_dir() {
        dirs.push(shared);
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for d in dirs.into_iter().filter(|d| d.is_dir()) {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if !files.iter().any(|f| f.file_name() == p.file_name()) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no fixtures for {tool}");
    files
}

pub struct Captured {
    dir: PathBuf,
    /// `program` → capture file (and whether it existed there).
    commands: HashMap<&'static str, (&'static str, bool)>,
    /// Absolute path → capture file name.
    files: HashMap<&'static str, &'static str>,
    sys: tempfile::TempDir,
}

impl Captured {
    pub fn new(name: &str) -> Captured {
        let dir = data().join("hw").join(name);
        let tools = std::fs::read_to_string(dir.join("TOOLS")).unwrap();
        let present = |t: &str| {
            tools
                .lines()
                .any(|l| l.starts_with(&format!("{t}:")) && !l.ends_with("absent"))
        };
        let mut commands = HashMap::new();
        for (program, file) in [
            ("lsblk", "lsblk-json"),
            ("lscpu", "lscpu-json"),
            ("lspci", "lspci-vmm"),
            ("dmidecode", "dmidecode"),
            ("ip", "ip-addr-json"),
            ("nvidia-smi", "nvidia-smi-q-x"),
            ("smartctl", "smartctl"),
            ("nvme", "nvme"),
            ("ipmitool", "ipmitool"),
        ] {
            commands.insert(program, (file, present(program)));
        }
        let sys = tempfile::tempdir().unwrap();
        // sysfs-pci: `0000:00:06.0 vendor=0x10de device=… class=… driver=nvidia numa=-1 iommu_group= …`
        if let Ok(text) = std::fs::read_to_string(dir.join("sysfs-pci")) {
            for line in text.lines() {
                let mut f = line.split_whitespace();
                let Some(slot) = f.next() else { continue };
                let d = sys.path().join("bus/pci/devices").join(slot);
                std::fs::create_dir_all(&d).unwrap();
                for kv in f {
                    let Some((k, v)) = kv.split_once('=') else {
                        continue;
                    };
                    if v.is_empty() {
                        continue;
                    }
                    let file = match k {
                        "numa" => "numa_node",
                        "link_speed" => "current_link_speed",
                        "link_width" => "current_link_width",
                        "driver" | "iommu_group" => continue,
                        other => other,
                    };
                    std::fs::write(d.join(file), format!("{v}\n")).unwrap();
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("sysfs-net")) {
            for line in text.lines() {
                let mut f = line.split_whitespace();
                let Some(name) = f.next() else { continue };
                let d = sys.path().join("class/net").join(name);
                std::fs::create_dir_all(&d).unwrap();
                for kv in f {
                    let Some((k, v)) = kv.split_once('=') else {
                        continue;
                    };
                    if !v.is_empty() && k != "driver" {
                        let file = if k == "addr" { "address" } else { k };
                        std::fs::write(d.join(file), format!("{v}\n")).unwrap();
                    }
                }
            }
        }
        let files = HashMap::from([
            ("/proc/cpuinfo", "cpuinfo"),
            ("/proc/meminfo", "meminfo"),
            ("/proc/cmdline", "cmdline"),
            ("/proc/modules", "modules"),
            ("/proc/mounts", "mounts"),
            ("/etc/os-release", "os-release"),
        ]);
        Captured {
            dir,
            commands,
            files,
            sys,
        }
    }

    fn sys_path(&self, path: &str) -> Option<PathBuf> {
        path.strip_prefix("/sys/").map(|p| self.sys.path().join(p))
    }
}

impl Host for Captured {
    fn describe(&self) -> String {
        format!("capture {}", self.dir.display())
    }

    fn run(&self, program: &str, _args: &[&str], _t: Duration) -> Result<CmdOutput, HostError> {
        let Some((file, present)) = self.commands.get(program) else {
            return Err(HostError::NotFound(program.into()));
        };
        if !present {
            return Err(HostError::NotFound(program.into()));
        }
        let out = std::fs::read(self.dir.join(file)).unwrap_or_default();
        let err = std::fs::read(self.dir.join(format!("{file}.err"))).unwrap_or_default();
        let failed = out.is_empty();
        Ok(CmdOutput {
            status: Some(if failed { 1 } else { 0 }),
            stdout: out,
            stderr: err,
        })
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, HostError> {
        if let Some(p) = self.sys_path(path) {
            return Local.read(p.to_str().unwrap());
        }
        if path == "/proc/sys/kernel/osrelease" {
            // `uname -a`: Linux HOST RELEASE …
            let uname = std::fs::read_to_string(self.dir.join("uname")).unwrap_or_default();
            return uname
                .split_whitespace()
                .nth(2)
                .map(|r| r.as_bytes().to_vec())
                .ok_or_else(|| HostError::NotFound(path.into()));
        }
        match self.files.get(path) {
            Some(f) => {
                std::fs::read(self.dir.join(f)).map_err(|_| HostError::NotFound(path.into()))
            }
            None => Err(HostError::NotFound(path.into())),
        }
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, HostError> {
        match self.sys_path(dir) {
            Some(p) => Local.list(p.to_str().unwrap()),
            None => Err(HostError::NotFound(dir.into())),
        }
    }

    fn link(&self, path: &str) -> Result<String, HostError> {
        Err(HostError::NotFound(path.into()))
    }

    fn exists(&self, path: &str) -> bool {
        self.sys_path(path).is_some_and(|p| p.exists()) || self.files.contains_key(path)
    }
}

/// A host made of scripted answers: commands (program → stdout), files, symbolic links;
/// directories are what those paths imply. For the rules that need hardware this machine
/// lacks (disks with partitions, failing drives, ECC errors, degraded links).
#[derive(Default)]
pub struct Scripted {
    pub commands: HashMap<String, String>,
    pub files: HashMap<String, String>,
    pub links: HashMap<String, String>,
}

impl Scripted {
    pub fn command(mut self, program: &str, stdout: &str) -> Self {
        self.commands.insert(program.into(), stdout.into());
        self
    }
    pub fn file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.into(), text.into());
        self
    }
    pub fn link(mut self, path: &str, target: &str) -> Self {
        self.links.insert(path.into(), target.into());
        self
    }
    fn paths(&self) -> impl Iterator<Item = &String> {
        self.files.keys().chain(self.links.keys())
    }
}

impl Host for Scripted {
    fn describe(&self) -> String {
        "scripted".into()
    }
    fn run(&self, program: &str, _: &[&str], _: Duration) -> Result<CmdOutput, HostError> {
        match self.commands.get(program) {
            Some(out) => Ok(CmdOutput {
                status: Some(0),
                stdout: out.clone().into_bytes(),
                stderr: vec![],
            }),
            None => Err(HostError::NotFound(program.into())),
        }
    }
    fn read(&self, p: &str) -> Result<Vec<u8>, HostError> {
        self.files
            .get(p)
            .map(|t| t.clone().into_bytes())
            .ok_or_else(|| HostError::NotFound(p.into()))
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, HostError> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let mut names: Vec<String> = self
            .paths()
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('/').next())
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(HostError::NotFound(dir.into()));
        }
        Ok(names)
    }
    fn link(&self, p: &str) -> Result<String, HostError> {
        self.links
            .get(p)
            .cloned()
            .ok_or_else(|| HostError::NotFound(p.into()))
    }
    fn exists(&self, p: &str) -> bool {
        let prefix = format!("{}/", p.trim_end_matches('/'));
        self.paths().any(|x| x == p || x.starts_with(&prefix))
    }
}
