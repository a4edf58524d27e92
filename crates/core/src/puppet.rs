//! The puppet protocol: how a job's workload (and later the puppet agent inside a VM) talks to
//! its supervisor. Newline-delimited JSON over a local stream socket whose path is in the
//! workload's environment as `PADDOCK_PUPPET_SOCKET`; one request per line, one reply per line.

use serde::{Deserialize, Serialize};

/// The environment variable naming the socket.
pub const SOCKET_ENV: &str = "PADDOCK_PUPPET_SOCKET";

/// The workload's own verdict, mapped to the `workload_finished_*` exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadOutcome {
    Success,
    Error,
    Unknown,
}

impl WorkloadOutcome {
    pub fn exit_status(self) -> crate::ExitStatus {
        match self {
            Self::Success => crate::ExitStatus::WorkloadFinishedSuccess,
            Self::Error => crate::ExitStatus::WorkloadFinishedError,
            Self::Unknown => crate::ExitStatus::WorkloadFinishedUnknown,
        }
    }
}

impl std::str::FromStr for WorkloadOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "success" => Ok(Self::Success),
            "error" => Ok(Self::Error),
            "unknown" => Ok(Self::Unknown),
            other => Err(format!(
                "unknown outcome {other:?} (use success, error or unknown)"
            )),
        }
    }
}

/// Workload → supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PuppetRequest {
    /// The host is up and the workload is running (execution state `ready`).
    Ready,
    /// The workload's result; the job terminates with the matching exit status.
    Exit {
        outcome: WorkloadOutcome,
        #[serde(default)]
        message: Option<String>,
    },
    /// The workload asks for its job to be terminated.
    Terminate,
}

/// Supervisor → workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PuppetReply {
    Ok,
    Error { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let r = PuppetRequest::Exit {
            outcome: WorkloadOutcome::Error,
            message: Some("3 tests failed".into()),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"type":"exit","outcome":"error","message":"3 tests failed"}"#
        );
        assert_eq!(
            serde_json::from_str::<PuppetRequest>(r#"{"type":"ready"}"#).unwrap(),
            PuppetRequest::Ready
        );
        assert_eq!(
            WorkloadOutcome::Success.exit_status(),
            crate::ExitStatus::WorkloadFinishedSuccess
        );
        assert!("maybe".parse::<WorkloadOutcome>().is_err());
    }
}
