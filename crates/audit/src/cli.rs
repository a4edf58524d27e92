//! The `paddock-audit` command line (the binary is installed by paddock-cli). Exit codes:
//! `collect` 0 when a report was written (whatever its verdict); `check` 0 when every hard
//! check passed, 1 when one failed, 2 on a bad baseline or usage; `check-config` 0 or 1, as
//! every service's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::collector::Collector;
use crate::host::{Host, Local};

#[derive(Debug, Parser)]
#[command(
    name = "paddock-audit",
    version,
    about = "Hardware inventory of a host as JSON, and baseline checks",
    after_help = "Collectors: system, cpu, memory, storage, pcie, network, power, gpu, kernel. \
                  A missing tool is `skipped`, a failing one `failed`; neither stops the others. \
                  See docs/audit.md."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where to run: this machine, or `--host` over SSH.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// Audit this host over SSH instead of the local machine (commands run there, files are
    /// read there).
    #[arg(long)]
    pub host: Option<String>,
    /// SSH user (default: $USER).
    #[arg(long, requires = "host")]
    pub user: Option<String>,
    /// SSH port.
    #[arg(long, default_value_t = 22, requires = "host")]
    pub port: u16,
    /// Private key for SSH (default: the SSH agent).
    #[arg(long, requires = "host")]
    pub identity: Option<PathBuf>,
    /// known_hosts file the host key is checked against (default: ~/.ssh/known_hosts).
    #[arg(long, requires = "host")]
    pub known_hosts: Option<PathBuf>,
    /// Do not check the host key (a lab host you are setting up; never for production).
    #[arg(long, requires = "host")]
    pub no_host_key_check: bool,
}

impl Remote {
    /// The host to inspect.
    pub fn connect(&self) -> Result<Arc<dyn Host>, String> {
        let Some(host) = &self.host else {
            return Ok(Arc::new(Local));
        };
        let user = self
            .user
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into());
        let target = crate::ssh::Target {
            host: host.clone(),
            port: self.port,
            user,
            identity: self.identity.clone(),
            known_hosts: self.known_hosts.clone(),
            no_host_key_check: self.no_host_key_check,
            connect_timeout: Duration::from_secs(15),
        };
        let ssh = crate::ssh::Ssh::connect(&target).map_err(|e| e.to_string())?;
        Ok(Arc::new(ssh))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collectors and write the report (JSON).
    Collect {
        /// Write the report here (atomically: a temporary file renamed into place);
        /// standard output otherwise.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Only these collectors, comma-separated (e.g. `cpu,storage`).
        #[arg(long, value_delimiter = ',')]
        collectors: Vec<String>,
        /// Time limit of each collector, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout_s: u64,
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        report_to: crate::report_to::ReportTo,
    },
    /// Evaluate a baseline: one `PADDOCK_CHECK status=PASS|WARN|FAIL check=… detail=…
    /// remediation=…` line per check, then `PADDOCK_CHECK summary checks=N failures=F
    /// warnings=W`. Exit status 1 when a hard check fails, 2 on a bad baseline.
    Check {
        /// The baseline (YAML; see examples/baselines/ and docs/audit.md).
        #[arg(long)]
        baseline: PathBuf,
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        report_to: crate::report_to::ReportTo,
    },
    /// The service's run: collect (written to `output`), check the baseline if one is set,
    /// send both if `report_to` is set. Exit status as `check`'s.
    Run {
        /// The TOML configuration file (see audit.example.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a configuration file (fields, collectors, the baseline whole, the token file):
    /// print the settings, one a line, or every problem as `FILE:LINE: field: …` (exit 1).
    CheckConfig {
        /// The TOML configuration file (see audit.example.toml).
        #[arg(long)]
        config: PathBuf,
        /// Do not read the token file (a build-time check, where secrets do not exist yet).
        #[arg(long)]
        no_secrets: bool,
    },
    /// Serve a report file as a page (`/`) and as JSON (`/report.json`), re-read on every
    /// request (the live audit ISO's screen).
    Serve {
        /// The report `collect --output` writes.
        #[arg(long, default_value = "/var/lib/paddock-audit/report.json")]
        report: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8099")]
        listen: std::net::SocketAddr,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key; read again when the
        /// files change). Plain HTTP without.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
}

/// The collectors named (all when none); an unknown name is an error listing the known ones.
pub fn select(names: &[String]) -> Result<Vec<Arc<dyn Collector>>, String> {
    let all = crate::collectors::all();
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|c| c.name() == n.trim())
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "unknown collector `{n}`; known: {}",
                        crate::collectors::names().join(", ")
                    )
                })
        })
        .collect()
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed into
/// place: a reader never sees half a report.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn collect(
    host: Arc<dyn Host>,
    output: Option<PathBuf>,
    names: &[String],
    timeout_s: u64,
    report_to: &crate::report_to::ReportTo,
) -> Result<(), String> {
    let collectors = select(names)?;
    let report = crate::report::collect(host, collectors, Duration::from_secs(timeout_s.max(1)));
    let sent = report_to.send(
        paddock_core::api::audit::AuditKind::Collect,
        serde_json::to_value(&report).map_err(|e| e.to_string())?,
    );
    let mut json = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
    json.push(b'\n');
    match output {
        Some(path) => {
            write_atomically(&path, &json).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!(
                "paddock-audit: {} ({} failures, {} warnings) -> {}",
                match report.summary.verdict {
                    crate::report::Verdict::Ok => "OK",
                    crate::report::Verdict::Warning => "WARNING",
                    crate::report::Verdict::Failed => "FAILED",
                },
                report.summary.failures,
                report.summary.warnings,
                path.display()
            );
        }
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&json)
                .map_err(|e| format!("stdout: {e}"))?;
        }
    }
    // Written first, then the sending's outcome: a switchboard down loses no report.
    if let Some(answer) = sent? {
        eprintln!(
            "paddock-audit: report sent ({})",
            crate::report_to::shown(&answer)
        );
    }
    Ok(())
}

fn read_baseline(baseline: &Path) -> Result<Vec<crate::check::baseline::Check>, String> {
    let text =
        std::fs::read_to_string(baseline).map_err(|e| format!("{}: {e}", baseline.display()))?;
    crate::check::baseline::load(&baseline.display().to_string(), &text).map_err(|errors| {
        for e in &errors.0 {
            eprintln!("{e}");
        }
        format!(
            "{}: {} error(s) in the baseline; nothing checked",
            baseline.display(),
            errors.0.len()
        )
    })
}

fn check(
    host: &dyn Host,
    checks: &[crate::check::baseline::Check],
    report_to: &crate::report_to::ReportTo,
) -> Result<u8, String> {
    let results = crate::check::run(host, checks);
    let (lines, hard_failure) = crate::check::report(&results);
    for l in &lines {
        println!("{l}");
    }
    let failures = results.iter().filter(|r| r.status == "FAIL").count();
    let warnings = results.iter().filter(|r| r.status == "WARN").count();
    let run = serde_json::json!({
        "host": host.describe(),
        "checks": results.iter().map(|r| serde_json::json!({
            "name": r.name, "status": r.status, "detail": r.detail, "remediation": r.remediation,
        })).collect::<Vec<_>>(),
        "summary": {"checks": results.len(), "failures": failures, "warnings": warnings},
    });
    if let Some(answer) = report_to.send(paddock_core::api::audit::AuditKind::Check, run)? {
        eprintln!(
            "paddock-audit: check run sent ({})",
            crate::report_to::shown(&answer)
        );
    }
    Ok(if hard_failure { 1 } else { 0 })
}

fn run_service(path: &Path) -> Result<u8, String> {
    // One `error: ` line per problem, as check-config prints them.
    let c = crate::config::Config::load(path).map_err(|e| e.lines().join("\nerror: "))?;
    let host: Arc<dyn Host> = Arc::new(Local);
    let report_to = c.report_to();
    let collected = collect(
        host.clone(),
        Some(c.output.clone()),
        &c.collectors,
        c.timeout_s,
        &report_to,
    );
    // A switchboard that cannot be reached does not keep the baseline from being checked (its
    // lines still reach the journal); the run fails afterwards.
    let checked = match &c.baseline {
        Some(b) => read_baseline(b).and_then(|checks| check(host.as_ref(), &checks, &report_to)),
        None => Ok(0),
    };
    match (collected, checked) {
        (Ok(()), checked) => checked,
        (Err(e), Ok(_)) => Err(e),
        (Err(e), Err(f)) => Err(format!("{e}\nerror: {f}")),
    }
}

/// Parses the arguments and runs; the exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    paddock_core::logging::init("warn");
    let result = match cli.command {
        Command::Collect {
            output,
            collectors,
            timeout_s,
            remote,
            report_to,
        } => select(&collectors)
            .and_then(|_| remote.connect())
            .and_then(|host| collect(host, output, &collectors, timeout_s, &report_to))
            .map(|_| 0),
        Command::CheckConfig { config, no_secrets } => {
            // As every service's check-config: 0 valid, 1 not (never 2, which is usage here).
            return match crate::config::Config::load_checking(&config, !no_secrets) {
                Ok(c) => {
                    if let Some(t) = c
                        .token_file
                        .as_ref()
                        .filter(|t| !no_secrets && paddock_core::credential::outside_its_unit(t))
                    {
                        eprintln!("{}", paddock_core::credential::not_checked("token_file", t));
                    }
                    println!("{}: ok\n{}", config.display(), c.summary());
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    for line in e.lines() {
                        eprintln!("error: {line}");
                    }
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Command::Run { config } => run_service(&config),
        Command::Serve {
            report,
            listen,
            tls_cert,
            tls_key,
        } => {
            let tls = tls_cert
                .zip(tls_key)
                .map(|(cert_file, key_file)| paddock_http::TlsFiles {
                    cert_file,
                    key_file,
                });
            crate::serve::serve(report, listen, tls).map(|_| 0)
        }
        Command::Check {
            baseline,
            remote,
            report_to,
        } => {
            // The baseline is read before connecting: a bad one never costs a connection.
            read_baseline(&baseline).and_then(|checks| {
                let host = remote.connect()?;
                check(host.as_ref(), &checks, &report_to)
            })
        }
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            // Run-time failures share the usage code here (docs/errors.md says why).
            std::process::ExitCode::from(paddock_core::service::exit::USAGE)
        }
    }
}
