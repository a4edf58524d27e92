//! The collector contract: one section of the inventory each, from commands and files of a
//! [`Host`]. A missing tool is `skipped`, a failing or unparsable one `failed` with why;
//! neither stops the others. Collectors run in parallel, each within a time limit; the local
//! commands of a collector past it are killed with everything they started.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::host::{Host, HostError};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Failure,
}

/// Something worth an operator's attention (an uncorrected ECC error, a failing disk, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub collector: String,
    /// A stable identifier of the kind of finding (`gpu.ecc_uncorrected`, …).
    pub code: String,
    pub message: String,
}

/// A collector's section of the report and its findings.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub section: serde_json::Value,
    pub findings: Vec<Finding>,
}

/// Why a collector produced nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Its tool or data source is absent here (not an error of the host).
    #[error("{0}")]
    Skipped(String),
    /// Its tool failed, timed out or printed something unparsable.
    #[error("{0}")]
    Failed(String),
}

/// One section of the inventory.
pub trait Collector: Send + Sync {
    fn name(&self) -> &'static str;
    fn collect(&self, host: &dyn Host) -> Result<Collected, Problem>;
}

/// How long one command of a collector may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a tool and returns its stdout; not installed → skipped, failing → failed.
pub fn tool(host: &dyn Host, program: &str, args: &[&str]) -> Result<String, Problem> {
    match host.run(program, args, COMMAND_TIMEOUT) {
        Ok(out) if out.success() => Ok(out.stdout_text()),
        // A shell reports a missing program as 127 (the remote case).
        Ok(out) if out.status == Some(127) => {
            Err(Problem::Skipped(format!("{program} is not installed")))
        }
        Ok(out) => Err(Problem::Failed(format!(
            "{program} {}: {}",
            args.join(" "),
            out.complaint()
        ))),
        Err(HostError::NotFound(_)) => Err(Problem::Skipped(format!("{program} is not installed"))),
        Err(e) => Err(Problem::Failed(e.to_string())),
    }
}

/// The status of one collector run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Skipped,
    Failed,
}

/// A collector's run: what the report lists under `collectors`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub status: Status,
    pub duration_ms: u64,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs `collectors` in parallel on `host`; each gets at most `limit`. Results are in the
/// order given.
pub fn run_all(
    host: Arc<dyn Host>,
    collectors: Vec<Arc<dyn Collector>>,
    limit: Duration,
) -> Vec<(&'static str, Run, Collected)> {
    let (tx, rx) = mpsc::channel();
    let names: Vec<&'static str> = collectors.iter().map(|c| c.name()).collect();
    let mut threads = Vec::new();
    for (i, c) in collectors.into_iter().enumerate() {
        let (tx, host) = (tx.clone(), host.clone());
        let handle = std::thread::spawn(move || {
            let span = tracing::info_span!("collector", name = c.name());
            let _g = span.enter();
            let t0 = Instant::now();
            let result = c.collect(host.as_ref());
            let _ = tx.send((i, t0.elapsed(), result));
        });
        threads.push(handle.thread().id());
    }
    drop(tx);
    let mut results: Vec<Option<(Duration, Result<Collected, Problem>)>> =
        names.iter().map(|_| None).collect();
    let deadline = Instant::now() + limit;
    while results.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, took, r)) => results[i] = Some((took, r)),
            Err(_) => break,
        }
    }
    // The collectors past the limit are given up on: the commands they run here stop now.
    for (r, thread) in results.iter().zip(&threads) {
        if r.is_none() {
            crate::host::kill_local_commands_of(*thread);
        }
    }
    names
        .into_iter()
        .zip(results)
        .map(|(name, r)| {
            let (took, result) = r.unwrap_or((
                limit,
                Err(Problem::Failed(format!(
                    "did not finish within {} s",
                    limit.as_secs()
                ))),
            ));
            let duration_ms = took.as_millis() as u64;
            match result {
                Ok(c) => (
                    name,
                    Run {
                        status: Status::Ok,
                        duration_ms,
                        error: None,
                    },
                    c,
                ),
                Err(p) => {
                    let status = match p {
                        Problem::Skipped(_) => Status::Skipped,
                        Problem::Failed(_) => Status::Failed,
                    };
                    if status == Status::Failed {
                        tracing::warn!(collector = name, "failed: {p}");
                    }
                    (
                        name,
                        Run {
                            status,
                            duration_ms,
                            error: Some(p.to_string()),
                        },
                        Collected::default(),
                    )
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Local;
    use crate::host::tests::{left_behind, marker};

    /// Runs a command that would take far longer than the collector's limit (its own limit
    /// is long).
    struct Stuck(String);

    impl Collector for Stuck {
        fn name(&self) -> &'static str {
            "stuck"
        }
        fn collect(&self, host: &dyn Host) -> Result<Collected, Problem> {
            let m = &self.0;
            host.run(
                "sh",
                &["-c", &format!("sleep {m} & sleep {m}")],
                Duration::from_secs(600),
            )
            .map_err(|e| Problem::Failed(e.to_string()))?;
            Ok(Collected::default())
        }
    }

    /// Issue 15 (7): a collector that does not finish within the limit is reported failed, and
    /// the commands it was running are killed with everything they started, rather than left
    /// to run on (after `collect` exits, re-parented to PID 1).
    #[test]
    fn a_collector_past_its_limit_leaves_no_process_behind() {
        let m = marker(1000);
        let t0 = Instant::now();
        let results = run_all(
            Arc::new(Local),
            vec![Arc::new(Stuck(m.clone()))],
            Duration::from_millis(300),
        );
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert_eq!(results[0].1.status, Status::Failed);
        assert_eq!(left_behind(&m), Vec::<String>::new(), "still running");
    }
}
