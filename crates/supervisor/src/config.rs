//! The supervisor's configuration file (TOML). Every field is documented here and in
//! `supervisor.example.toml`, which a test parses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use paddock_core::SupervisorId;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the switchboard, `http://HOST:PORT` (the WebSocket is
    /// `/api/v1/supervisor/socket` under it).
    pub switchboard_url: String,
    /// This supervisor's id, as `paddock supervisor add` printed it. Optional: the token
    /// identifies the supervisor; when set, a switchboard that welcomes a different id is refused.
    #[serde(default)]
    pub supervisor_id: Option<SupervisorId>,
    /// File holding the supervisor's bearer token (one line). Keep it mode 0600.
    pub token_file: PathBuf,
    /// Directory for job directories (`jobs/<job id>/`). A relative path is relative to the
    /// configuration file's directory and made absolute when the file is read (it need not
    /// exist then). Created at start when missing; leftovers of a crashed run are cleaned up
    /// at start.
    pub work_dir: PathBuf,
    /// Where images come from.
    #[serde(default)]
    pub images: ImagesConfig,
    /// The host driver and its settings.
    #[serde(default)]
    pub driver: DriverConfig,
    /// Reconnect backoff: first delay, in milliseconds.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Reconnect backoff: largest delay, in milliseconds (the delay doubles up to it, with
    /// random jitter).
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Console output on its way to the switchboard, in bytes. While connected, a workload
    /// that outputs faster than the switchboard takes it waits; while disconnected, output past
    /// this is dropped and the switchboard is told how much.
    #[serde(default = "default_console_budget_bytes")]
    pub console_budget_bytes: usize,
}

fn default_reconnect_min_ms() -> u64 {
    500
}
fn default_reconnect_max_ms() -> u64 {
    30_000
}
fn default_console_budget_bytes() -> usize {
    crate::connection::CONSOLE_BUDGET
}

/// Image sources: local store directories first, then store servers through the cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Local store directories (`images/aa/bb/cc/<id>`, `blobs/aa/bb/cc/<sha256>`). Every
    /// manifest and blob is verified against its digest before use.
    pub stores: Vec<PathBuf>,
    /// Image store servers (`http://HOST:PORT`), tried in order: the first that has the image
    /// serves it.
    pub urls: Vec<String>,
    /// Where images from servers are cached. Default: `work_dir/cache`.
    pub cache_dir: Option<PathBuf>,
    /// Largest size of the cache in bytes; least recently used blobs not in use by a running
    /// job are removed beyond it.
    pub cache_max_bytes: u64,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            stores: Vec::new(),
            urls: Vec::new(),
            cache_dir: None,
            cache_max_bytes: 20 * 1024 * 1024 * 1024,
        }
    }
}

/// Which driver starts the host: `local` (a process) or `qemu` (a VM); `netboot` follows.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DriverConfig {
    Local(LocalDriverConfig),
    Qemu(QemuDriverConfig),
}

/// Which QEMU accelerator runs the VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accel {
    /// KVM when a short probe shows that a KVM guest runs on this machine, else TCG.
    Auto,
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Auto => "auto",
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// A VM's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// QEMU's user-mode network (SLIRP: the guest reaches out through the supervisor's
    /// host, DHCP included) with the guest's sshd (port 22) forwarded to a per-job port of
    /// the supervisor (`ssh_listen`, `ssh_ports`).
    User,
    /// No network device (a tap or bridge can still be given in `extra_args`).
    None,
}

/// The `qemu` driver: each job runs in its own QEMU VM (see `docs/supervisor.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QemuDriverConfig {
    /// The QEMU system emulator: a path, or a name looked up on `PATH`.
    pub qemu: String,
    /// `qemu-img`, which makes each job's disk overlay and checks the image's backing chain.
    pub qemu_img: String,
    /// `-machine` type.
    pub machine: String,
    /// Virtual CPUs (`-smp`).
    pub cpus: u32,
    /// Guest memory in MiB (`-m`).
    pub memory_mib: u64,
    /// Arguments appended to QEMU's command line (devices, `-cpu`, ...). Never put secrets
    /// here: QEMU's command line is visible to every user of the machine.
    pub extra_args: Vec<String>,
    /// `auto`, `kvm` or `tcg`.
    pub accel: Accel,
    /// Seconds from QEMU's start until the host is ready; past it the job ends
    /// `supervisor_host_start_error`.
    pub boot_timeout_s: u64,
    /// Seconds between the ACPI power-down request and killing QEMU when a job is stopped.
    pub stop_grace_s: u64,
    /// `user` (default): user-mode networking with the guest's port 22 forwarded to a per-job
    /// port; `none`: no network device.
    pub network: Network,
    /// The address the forwarded SSH ports listen on (an IPv4 address; `network = "user"`).
    pub ssh_listen: String,
    /// The ports given to jobs, `START-END` (inclusive): each job takes one that is free when
    /// it starts.
    pub ssh_ports: String,
    /// The name users reach this supervisor by, shown with the job (`paddock job status`,
    /// `paddock job ssh`). Default: `ssh_listen`, or this machine's host name when `ssh_listen`
    /// is `0.0.0.0`.
    pub ssh_host: Option<String>,
    /// The guest user a job's SSH keys log in as (the NixOS module's `jobUser`).
    pub ssh_user: String,
}

/// The defaults of the SSH port fields.
pub const DEFAULT_SSH_PORTS: &str = "42000-42999";

impl Default for QemuDriverConfig {
    fn default() -> Self {
        QemuDriverConfig {
            qemu: "qemu-system-x86_64".into(),
            qemu_img: "qemu-img".into(),
            machine: "q35".into(),
            cpus: 1,
            memory_mib: 512,
            extra_args: Vec::new(),
            accel: Accel::Auto,
            boot_timeout_s: 300,
            stop_grace_s: 10,
            network: Network::User,
            ssh_listen: "127.0.0.1".into(),
            ssh_ports: DEFAULT_SSH_PORTS.into(),
            ssh_host: None,
            ssh_user: "paddock".into(),
        }
    }
}

/// Reads `START-END` (1 – 65535, START ≤ END).
pub fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let bad = || format!("{s:?} is not a port range START-END (1 to 65535, START <= END)");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

impl QemuDriverConfig {
    /// The forwarded ports' address (checked by `validate`).
    pub fn ssh_listen_addr(&self) -> Result<std::net::Ipv4Addr, String> {
        self.ssh_listen
            .parse()
            .map_err(|_| format!("{:?} is not an IPv4 address", self.ssh_listen))
    }

    /// What users are told to connect to: `ssh_host`, else `ssh_listen` unless it is
    /// `0.0.0.0`, else this machine's host name.
    pub fn access_host(&self) -> String {
        if let Some(h) = &self.ssh_host {
            return h.clone();
        }
        match self.ssh_listen_addr() {
            Ok(a) if !a.is_unspecified() => a.to_string(),
            _ => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into()),
        }
    }
}

/// QEMU options the driver sets itself; `extra_args` may not repeat them.
pub const QEMU_RESERVED_ARGS: &[&str] = &[
    "-qmp",
    "-monitor",
    "-serial",
    "-daemonize",
    "-pidfile",
    "-S",
    "-name",
    "-accel",
    "-kernel",
    "-initrd",
    "-append",
    "-runas",
    "-chroot",
];

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig::Local(LocalDriverConfig::default())
    }
}

/// The `local` driver: the workload runs as a child process of the supervisor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalDriverConfig {
    /// `PATH` of the workload. The directory of the supervisor's own executable is put first,
    /// so `paddock-puppet` installed beside it is found.
    pub path: String,
    /// Extra environment variables for every workload.
    pub env: BTreeMap<String, String>,
    /// Seconds between SIGTERM and SIGKILL when a job's process group is stopped.
    pub stop_grace_s: u64,
}

impl Default for LocalDriverConfig {
    fn default() -> Self {
        LocalDriverConfig {
            path: "/usr/local/bin:/usr/bin:/bin".into(),
            env: BTreeMap::new(),
            stop_grace_s: 5,
        }
    }
}

impl QemuDriverConfig {
    fn validate(&self, bad: &mut Vec<(&'static str, String)>) {
        for (field, v) in [
            ("driver.qemu", &self.qemu),
            ("driver.qemu_img", &self.qemu_img),
        ] {
            if v.trim().is_empty() || v.contains('\0') {
                bad.push((field, "must name a program".into()));
            }
        }
        if self.machine.is_empty() || self.machine.contains(['\0', ' ']) {
            bad.push((
                "driver.machine",
                format!("{:?} is not a machine type", self.machine),
            ));
        }
        if !(1..=1024).contains(&self.cpus) {
            bad.push(("driver.cpus", "must be 1 to 1024".into()));
        }
        if !(16..=16 * 1024 * 1024).contains(&self.memory_mib) {
            bad.push(("driver.memory_mib", "must be 16 to 16777216".into()));
        }
        if !(1..=86_400).contains(&self.boot_timeout_s) {
            bad.push(("driver.boot_timeout_s", "must be 1 to 86400".into()));
        }
        if self.stop_grace_s > 3600 {
            bad.push(("driver.stop_grace_s", "must be at most 3600".into()));
        }
        if self.network == Network::User {
            if let Err(e) = self.ssh_listen_addr() {
                bad.push(("driver.ssh_listen", e));
            }
            if let Err(e) = parse_port_range(&self.ssh_ports) {
                bad.push(("driver.ssh_ports", e));
            }
        }
        if let Some(h) = &self.ssh_host {
            let probe = paddock_core::protocol::AccessEndpoint {
                host: h.clone(),
                port: 22,
                user: "u".into(),
            };
            if let Err(e) = probe.check() {
                bad.push(("driver.ssh_host", e));
            }
        }
        let probe = paddock_core::protocol::AccessEndpoint {
            host: "h".into(),
            port: 22,
            user: self.ssh_user.clone(),
        };
        if let Err(e) = probe.check() {
            bad.push(("driver.ssh_user", e));
        }
        for a in &self.extra_args {
            if a.contains('\0') {
                bad.push(("driver.extra_args", "an argument holds a NUL byte".into()));
            } else if let Some(r) = QEMU_RESERVED_ARGS
                .iter()
                .find(|r| a == *r || a.strip_prefix('-') == Some(*r))
            {
                bad.push((
                    "driver.extra_args",
                    format!("{r} is set by the driver and may not be given here"),
                ));
            }
        }
    }
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every problem of the file (syntax, unknown fields, wrong types, bad values), each at
    /// its line.
    #[error(transparent)]
    Parse(#[from] paddock_core::config_file::ConfigError),
    /// `token_file` names a file that cannot be read (the caller names the configuration).
    #[error("token_file: reading {path}")]
    TokenRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token_file: {path} is empty")]
    TokenEmpty { path: PathBuf },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        message: String,
    },
}

/// The absolute directory of the configuration file `path`, without touching the file system
/// beyond the current directory: nothing has to exist yet, and symbolic links are kept as
/// written.
fn config_dir(path: &Path) -> std::io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::path::absolute(dir)
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates; `path` names the file in errors and anchors relative paths.
    /// Relative paths in the file are taken relative to the file's directory and made
    /// absolute (a relative `path` is taken from the current directory), so every path the
    /// supervisor derives from them is absolute.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut c: Config = paddock_core::config_file::parse_toml(path, text)?;
        // Made absolute once, here: the workload runs in its own directory and is started by
        // a path under `work_dir`, so a path relative to the supervisor's working directory
        // would name nothing there (and the process may be started from anywhere).
        let base = config_dir(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        for p in [&mut c.token_file, &mut c.work_dir]
            .into_iter()
            .chain(c.images.stores.iter_mut())
            .chain(c.images.cache_dir.iter_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        // Every problem of the values at once, each at its field's line.
        if let Err(bad) = c.validate() {
            paddock_core::config_file::Problems::check(path, text, bad)?;
        }
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), Vec<(&'static str, String)>> {
        let mut bad = Vec::new();
        let url = &self.switchboard_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bad.push((
                "switchboard_url",
                format!("{url:?} must start with http:// or https://"),
            ));
        }
        if let Some(u) = self
            .images
            .urls
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            bad.push((
                "images.urls",
                format!("{u:?} must start with http:// or https://"),
            ));
        }
        if let Err(e) = paddock_core::transport::require_plain(url) {
            bad.push(("switchboard_url", e.to_string()));
        }
        for u in &self.images.urls {
            if let Err(e) = paddock_core::transport::require_plain(u) {
                bad.push(("images.urls", e.to_string()));
            }
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            bad.push((
                "reconnect_min_ms",
                "must be at least 1 and at most reconnect_max_ms".into(),
            ));
        }
        if self.console_budget_bytes < 64 * 1024 {
            bad.push(("console_budget_bytes", "must be at least 65536".into()));
        }
        match &self.driver {
            DriverConfig::Local(l) => {
                if l.path.is_empty() {
                    bad.push(("driver.path", "must not be empty".into()));
                }
                if let Some(k) = l.env.keys().find(|k| k.is_empty() || k.contains('=')) {
                    bad.push(("driver.env", format!("bad variable name {k:?}")));
                }
            }
            DriverConfig::Qemu(q) => q.validate(&mut bad),
        }
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }

    /// The token, read from `token_file`.
    pub fn token(&self) -> Result<String, ConfigError> {
        let text =
            std::fs::read_to_string(&self.token_file).map_err(|source| ConfigError::TokenRead {
                path: self.token_file.clone(),
                source,
            })?;
        let token = text.trim().to_string();
        if token.is_empty() {
            return Err(ConfigError::TokenEmpty {
                path: self.token_file.clone(),
            });
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn example_parses() {
        let text = include_str!("../supervisor.example.toml");
        let c = Config::parse(Path::new("/etc/paddock/supervisor.toml"), text).unwrap();
        assert_eq!(c.switchboard_url, "http://127.0.0.1:8080");
        assert!(c.work_dir.is_absolute());
        let DriverConfig::Local(l) = &c.driver else {
            panic!("the example uses the local driver")
        };
        assert_eq!(l.stop_grace_s, 5);
    }

    /// The example's commented qemu block, uncommented, is valid and holds the defaults.
    #[test]
    fn example_qemu_block_parses() {
        let text = include_str!("../supervisor.example.toml");
        let (top, _) = text.split_once("\n[driver]\n").unwrap();
        let (_, qemu) = text.split_once("# [driver]\n").unwrap();
        let qemu: String = qemu
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = Config::parse(
            Path::new("/etc/paddock/supervisor.toml"),
            &format!("{top}\n[driver]\n{qemu}"),
        )
        .unwrap();
        let DriverConfig::Qemu(q) = &c.driver else {
            panic!("{:?}", c.driver)
        };
        let d = QemuDriverConfig::default();
        assert_eq!(q.network, d.network);
        assert_eq!(q.ssh_listen, d.ssh_listen);
        assert_eq!(q.ssh_ports, d.ssh_ports);
        assert_eq!(q.ssh_user, d.ssh_user);
        assert_eq!(q.ssh_host.as_deref(), Some("rack1.lab.example"));
    }

    #[test]
    fn relative_paths_become_absolute_from_the_config_file() {
        let text = "switchboard_url = \"http://x\"\ntoken_file = \"t\"\nwork_dir = \"work\"\n[images]\nstores = [\"s\"]\ncache_dir = \"c\"\n";
        let cwd = std::env::current_dir().unwrap();
        for (config, dir) in [
            ("s.toml", cwd.clone()),
            ("etc/s.toml", cwd.join("etc")),
            ("/etc/paddock/s.toml", PathBuf::from("/etc/paddock")),
        ] {
            let c = Config::parse(Path::new(config), text).unwrap();
            assert_eq!(c.work_dir, dir.join("work"), "{config}");
            assert_eq!(c.token_file, dir.join("t"), "{config}");
            assert_eq!(c.images.stores, [dir.join("s")], "{config}");
            assert_eq!(c.images.cache_dir, Some(dir.join("c")), "{config}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse(
            Path::new("s.toml"),
            "switchboard_url = \"ftp://x\"\ntoken_file = \"t\"\nwork_dir = \"w\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("switchboard_url"), "{e}");
        // No TLS in this build: https:// is refused when the file is read, naming the field.
        for (text, field) in [
            ("switchboard_url = \"https://x\"\n", "switchboard_url"),
            (
                "switchboard_url = \"http://x\"\n[images]\nurls = [\"https://s\"]\n",
                "images.urls",
            ),
        ] {
            let text = format!("{text}token_file = \"t\"\nwork_dir = \"w\"\n");
            // [images] opened above: the rest goes before it.
            let text = match text.split_once("[images]") {
                Some((a, b)) => {
                    let (urls, rest) = b.trim_start().split_once('\n').unwrap();
                    format!("{a}{rest}[images]\n{urls}\n")
                }
                None => text,
            };
            let e = Config::parse(Path::new("s.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(field) && e.contains("no TLS"), "{text}: {e}");
        }
        let e = Config::parse(
            Path::new("s.toml"),
            "switchboard_url = \"http://x\"\ntoken_file = \"t\"\nwork_dir = \"w\"\nbogus = 1\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Config::parse(
            Path::new("s.toml"),
            "switchboard_url = \"http://x\"\ntoken_file = \"t\"\nwork_dir = \"w\"\n[driver]\nkind = \"vmware\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("vmware"), "{e}");
    }

    const BASE: &str = "switchboard_url = \"http://x\"\ntoken_file = \"t\"\nwork_dir = \"w\"\n";

    #[test]
    fn qemu_driver_defaults() {
        let c = Config::parse(
            Path::new("s.toml"),
            &format!("{BASE}[driver]\nkind = \"qemu\"\n"),
        )
        .unwrap();
        let DriverConfig::Qemu(q) = &c.driver else {
            panic!("{:?}", c.driver)
        };
        assert_eq!(q.qemu, "qemu-system-x86_64");
        assert_eq!(q.qemu_img, "qemu-img");
        assert_eq!(q.machine, "q35");
        assert_eq!(q.accel, Accel::Auto);
        assert_eq!((q.cpus, q.memory_mib), (1, 512));
    }

    #[test]
    fn qemu_driver_errors_are_located() {
        let text =
            format!("{BASE}[driver]\nkind = \"qemu\"\ncpus = 0\nmemory_mib = 1\naccel = \"hax\"\n");
        let e = Config::parse(Path::new("s.toml"), &text)
            .unwrap_err()
            .to_string();
        // A value serde refuses inside the tagged [driver] table is reported at the table's
        // line (serde reads a tagged table whole), naming the value.
        assert!(
            e.contains("s.toml:4") && e.contains("driver") && e.contains("hax"),
            "{e}"
        );
        let text = format!(
            "{BASE}[driver]\nkind = \"qemu\"\ncpus = 0\nmemory_mib = 1\nextra_args = [\"-qmp\", \"stdio\"]\nboot_timeout_s = 0\n"
        );
        let e = Config::parse(Path::new("s.toml"), &text)
            .unwrap_err()
            .to_string();
        for (line, field) in [
            (6, "cpus"),
            (7, "memory_mib"),
            (8, "extra_args"),
            (9, "boot_timeout_s"),
        ] {
            assert!(
                e.contains(&format!("s.toml:{line}")) && e.contains(field),
                "{field}: {e}"
            );
        }
        assert!(e.contains("-qmp is set by the driver"), "{e}");
    }

    #[test]
    fn qemu_network_defaults_and_errors() {
        let c = Config::parse(
            Path::new("s.toml"),
            &format!("{BASE}[driver]\nkind = \"qemu\"\n"),
        )
        .unwrap();
        let DriverConfig::Qemu(q) = &c.driver else {
            panic!("{:?}", c.driver)
        };
        assert_eq!(q.network, Network::User);
        assert_eq!(q.ssh_listen, "127.0.0.1");
        assert_eq!(parse_port_range(&q.ssh_ports).unwrap(), 42000..=42999);
        assert_eq!(q.ssh_user, "paddock");
        // A loopback listener: users on this machine connect to it as it is.
        assert_eq!(q.access_host(), "127.0.0.1");
        let any = QemuDriverConfig {
            ssh_listen: "0.0.0.0".into(),
            ..q.clone()
        };
        assert!(!any.access_host().is_empty() && any.access_host() != "0.0.0.0");
        let named = QemuDriverConfig {
            ssh_host: Some("rack1.lab".into()),
            ..any
        };
        assert_eq!(named.access_host(), "rack1.lab");

        let text = format!(
            "{BASE}[driver]\nkind = \"qemu\"\nssh_listen = \"localhost\"\nssh_ports = \"2000-1000\"\nssh_host = \"-oProxyCommand=x\"\nssh_user = \"a b\"\nnetwork = \"user\"\n"
        );
        let e = Config::parse(Path::new("s.toml"), &text)
            .unwrap_err()
            .to_string();
        for (line, field) in [
            (6, "ssh_listen"),
            (7, "ssh_ports"),
            (8, "ssh_host"),
            (9, "ssh_user"),
        ] {
            assert!(
                e.contains(&format!("s.toml:{line}")) && e.contains(field),
                "{field}: {e}"
            );
        }
        for bad in ["", "1", "0-10", "10-", "a-b", "1-70000"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_port_range("22-22").unwrap(), 22..=22);
        // Without user networking the SSH fields are not used, and not checked.
        let text =
            format!("{BASE}[driver]\nkind = \"qemu\"\nnetwork = \"none\"\nssh_ports = \"x\"\n");
        Config::parse(Path::new("s.toml"), &text).unwrap();
        let text = format!("{BASE}[driver]\nkind = \"qemu\"\nnetwork = \"tap\"\n");
        let e = Config::parse(Path::new("s.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tap"), "{e}");
    }
}
