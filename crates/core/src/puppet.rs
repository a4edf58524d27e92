//! The puppet protocol: how a job's workload (and the guest puppet inside a VM) talks to its
//! supervisor. Newline-delimited JSON over a local stream socket whose path is in the
//! workload's environment as `PADDOCK_PUPPET_SOCKET`, or over a VM's virtio-serial port; one
//! request per line, one reply per line. Both sides use these types; unknown fields are
//! refused, and lines are bounded ([`MAX_REQUEST_LINE`], [`MAX_REPLY_LINE`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::JobId;
use crate::protocol::JobParameter;

/// The environment variable naming the socket.
pub const SOCKET_ENV: &str = "PADDOCK_PUPPET_SOCKET";
/// Longest request line a supervisor (or the guest puppet's relay) reads, newline excluded.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;
/// Longest reply line a client reads, newline excluded: room for a job's data (the
/// switchboard's enqueue body is bounded to `max_body_bytes`, 1 MiB by default).
pub const MAX_REPLY_LINE: usize = 4 * 1024 * 1024;
/// At most this many parameters and this many SSH keys in [`JobData`].
pub const MAX_JOB_DATA_ITEMS: usize = 1024;

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
#[serde(
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields,
    from = "RequestWire"
)]
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
    /// The guest puppet asks for the job's data ([`PuppetReply::JobData`]). Served on a VM's
    /// puppet port only (the local driver writes the files itself); it changes nothing in the
    /// job, and the guest puppet's relay never passes it on.
    JobData,
}

impl PuppetRequest {
    /// Whether this request is the workload reporting (ready, a result, a termination), as
    /// opposed to asking for data.
    pub fn is_report(&self) -> bool {
        !matches!(self, PuppetRequest::JobData)
    }
}

/// Supervisor → workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields,
    from = "ReplyWire"
)]
pub enum PuppetReply {
    Ok,
    Error {
        message: String,
    },
    /// The answer to [`PuppetRequest::JobData`].
    JobData(JobData),
}

// How the two enums are read: serde ignores extra fields beside the tag of an internally
// tagged unit variant even with `deny_unknown_fields`; read as empty struct variants, they are
// refused.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RequestWire {
    Ready {},
    Exit {
        outcome: WorkloadOutcome,
        #[serde(default)]
        message: Option<String>,
    },
    Terminate {},
    JobData {},
}

impl From<RequestWire> for PuppetRequest {
    fn from(w: RequestWire) -> PuppetRequest {
        match w {
            RequestWire::Ready {} => PuppetRequest::Ready,
            RequestWire::Exit { outcome, message } => PuppetRequest::Exit { outcome, message },
            RequestWire::Terminate {} => PuppetRequest::Terminate,
            RequestWire::JobData {} => PuppetRequest::JobData,
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ReplyWire {
    Ok {},
    Error { message: String },
    JobData(JobData),
}

impl From<ReplyWire> for PuppetReply {
    fn from(w: ReplyWire) -> PuppetReply {
        match w {
            ReplyWire::Ok {} => PuppetReply::Ok,
            ReplyWire::Error { message } => PuppetReply::Error { message },
            ReplyWire::JobData(d) => PuppetReply::JobData(d),
        }
    }
}

/// What a VM's guest needs at boot: written by `paddock-puppet guest` under `/run/paddock/`
/// (`crate::job_files`). Secret values are never logged: `Debug` redacts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobData {
    pub job_id: JobId,
    /// Parameters by name; each refuses unknown fields, so a misspelt `secret` is an error
    /// rather than a secret written world-readable.
    #[serde(default, deserialize_with = "crate::api::jobs::strict_parameters")]
    pub parameters: BTreeMap<String, JobParameter>,
    /// The job's SSH public keys, one line each.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
}

impl JobData {
    /// Checks the bounds a guest relies on before writing files: at most
    /// [`MAX_JOB_DATA_ITEMS`] parameters and keys, parameter names that are file names
    /// (`crate::job_files::valid_name`), keys of one non-empty line. The error names the
    /// culprit, never a value.
    pub fn check(&self) -> Result<(), String> {
        if self.parameters.len() > MAX_JOB_DATA_ITEMS || self.ssh_keys.len() > MAX_JOB_DATA_ITEMS {
            return Err(format!(
                "more than {MAX_JOB_DATA_ITEMS} parameters or SSH keys"
            ));
        }
        if let Some(bad) = self
            .parameters
            .keys()
            .find(|n| !crate::job_files::valid_name(n))
        {
            return Err(format!("invalid parameter name {bad:?}"));
        }
        crate::job_files::authorized_keys(&self.ssh_keys).map(|_| ())
    }
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

    fn data() -> JobData {
        JobData {
            job_id: "0190d6b8-3c1a-7f00-8000-000000000001".parse().unwrap(),
            parameters: BTreeMap::from([
                (
                    "board".to_string(),
                    JobParameter {
                        value: "nrf52".into(),
                        secret: false,
                    },
                ),
                (
                    "token".to_string(),
                    JobParameter {
                        value: "s3cret".into(),
                        secret: true,
                    },
                ),
            ]),
            ssh_keys: vec!["ssh-ed25519 AAAAC3 alice@lab".into()],
        }
    }

    #[test]
    fn job_data_both_ways() {
        let req = serde_json::to_string(&PuppetRequest::JobData).unwrap();
        assert_eq!(req, r#"{"type":"job_data"}"#);
        assert_eq!(
            serde_json::from_str::<PuppetRequest>(&req).unwrap(),
            PuppetRequest::JobData
        );
        assert!(!PuppetRequest::JobData.is_report());
        assert!(PuppetRequest::Ready.is_report());

        let reply = PuppetReply::JobData(data());
        let line = serde_json::to_string(&reply).unwrap();
        assert_eq!(
            line,
            r#"{"type":"job_data","job_id":"0190d6b8-3c1a-7f00-8000-000000000001","parameters":{"board":{"value":"nrf52","secret":false},"token":{"value":"s3cret","secret":true}},"ssh_keys":["ssh-ed25519 AAAAC3 alice@lab"]}"#
        );
        assert_eq!(serde_json::from_str::<PuppetReply>(&line).unwrap(), reply);
        // Optional parts may be absent.
        let bare: PuppetReply = serde_json::from_str(
            r#"{"type":"job_data","job_id":"0190d6b8-3c1a-7f00-8000-000000000001"}"#,
        )
        .unwrap();
        assert!(matches!(bare, PuppetReply::JobData(d) if d.parameters.is_empty()));
        // Secrets stay out of Debug.
        let dbg = format!("{:?}", data());
        assert!(!dbg.contains("s3cret") && dbg.contains("nrf52"), "{dbg}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        for line in [
            r#"{"type":"ready","extra":1}"#,
            r#"{"type":"terminate","force":true}"#,
            r#"{"type":"job_data","all":true}"#,
            r#"{"type":"exit","outcome":"success","mesage":"typo"}"#,
            r#"{"type":"explode"}"#,
        ] {
            assert!(
                serde_json::from_str::<PuppetRequest>(line).is_err(),
                "{line}"
            );
        }
        let id = "0190d6b8-3c1a-7f00-8000-000000000001";
        for line in [
            r#"{"type":"ok","more":1}"#.to_string(),
            r#"{"type":"error","message":"m","code":3}"#.to_string(),
            format!(r#"{{"type":"job_data","job_id":"{id}","extra":[]}}"#),
            // A misspelt `secret` must not pass for a public parameter.
            format!(
                r#"{{"type":"job_data","job_id":"{id}","parameters":{{"t":{{"value":"v","secert":true}}}}}}"#
            ),
        ] {
            assert!(
                serde_json::from_str::<PuppetReply>(&line).is_err(),
                "{line}"
            );
        }
    }

    #[test]
    fn job_data_bounds() {
        data().check().unwrap();
        let mut d = data();
        d.parameters.insert(
            "../etc/shadow".into(),
            JobParameter {
                value: "x".into(),
                secret: false,
            },
        );
        assert!(d.check().unwrap_err().contains("invalid parameter name"));
        let mut d = data();
        d.ssh_keys.push("ssh-rsa A\nssh-rsa B".into());
        assert!(d.check().unwrap_err().contains("ssh_keys[1]"));
        let mut d = data();
        d.ssh_keys = vec!["k".into(); MAX_JOB_DATA_ITEMS + 1];
        assert!(d.check().unwrap_err().contains("more than"));
    }
}
