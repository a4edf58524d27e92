//! The supervisor WebSocket protocol (`paddock.v1`): JSON text frames, one message per frame,
//! tagged by `type`. Changes are additive: unknown optional fields are ignored by both sides.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ExecutionState, ExitStatus, ImageId, JobId, SupervisorId};

/// The WebSocket sub-protocol both sides must agree on.
pub const SUBPROTOCOL: &str = "paddock.v1";

/// A job parameter. Secret values are delivered to the supervisor but never logged (`Debug`
/// redacts them) and never returned by a read API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParameter {
    pub value: String,
    #[serde(default)]
    pub secret: bool,
}

impl fmt::Debug for JobParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.secret {
            "<redacted>"
        } else {
            self.value.as_str()
        };
        f.debug_struct("JobParameter")
            .field("value", &value)
            .field("secret", &self.secret)
            .finish()
    }
}

/// A job as a supervisor sees it when told to start it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartJob {
    pub job_id: JobId,
    pub image_id: ImageId,
    #[serde(default)]
    pub parameters: BTreeMap<String, JobParameter>,
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// Seconds the job may run once scheduled; the switchboard enforces it too.
    pub timeout_s: u64,
}

/// A job a supervisor runs, as it reports it in `hello` and `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningJob {
    pub job_id: JobId,
    pub execution_state: ExecutionState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleStream {
    Stdout,
    Stderr,
    /// The host's serial console.
    Serial,
}

/// Supervisor → switchboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SupervisorMessage {
    /// First message after connecting: what the supervisor still runs.
    Hello {
        #[serde(default)]
        running_jobs: Vec<RunningJob>,
        /// Generation of the last `config` it applied, if any.
        #[serde(default)]
        config_generation: Option<u64>,
        #[serde(default)]
        agent_version: Option<String>,
    },
    /// A job's state changed on the supervisor.
    JobState {
        job_id: JobId,
        #[serde(default)]
        execution_state: Option<ExecutionState>,
        #[serde(default)]
        exit_status: Option<ExitStatus>,
        #[serde(default)]
        message: Option<String>,
    },
    /// Console output of a job's host.
    Console {
        job_id: JobId,
        stream: ConsoleStream,
        data: String,
    },
    /// Console output of a job the supervisor had to drop (it could not deliver it), in
    /// bytes, since the last such report; sent before the job's next output or report. The
    /// switchboard writes a marker line into the console and an event.
    ConsoleDropped {
        job_id: JobId,
        bytes: u64,
        reason: String,
    },
    /// Answer to `status_request`.
    Status {
        #[serde(default)]
        running_jobs: Vec<RunningJob>,
    },
    Heartbeat,
}

/// Switchboard → supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SwitchboardMessage {
    /// Sent once the `hello` is accepted.
    Welcome {
        supervisor_id: SupervisorId,
        heartbeat_interval_s: u64,
    },
    StartJob(StartJob),
    StopJob {
        job_id: JobId,
        reason: String,
    },
    StatusRequest,
    /// Live configuration from the deployments DB; older generations must be ignored.
    Config {
        generation: u64,
        config: serde_json::Value,
    },
    /// A message from the supervisor was refused (for example an illegal transition).
    Refused {
        job_id: Option<JobId>,
        reason: String,
    },
    Heartbeat,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_stable() {
        let id: JobId = "0190b6d8-7c2e-7000-8000-000000000001".parse().unwrap();
        let m = SupervisorMessage::JobState {
            job_id: id,
            execution_state: Some(ExecutionState::Ready),
            exit_status: None,
            message: None,
        };
        let s = serde_json::to_string(&m).unwrap();
        assert_eq!(
            s,
            r#"{"type":"job_state","job_id":"0190b6d8-7c2e-7000-8000-000000000001","execution_state":"ready","exit_status":null,"message":null}"#
        );
        // Old peers omit optional fields; new fields are ignored.
        let old: SupervisorMessage =
            serde_json::from_str(r#"{"type":"hello","future_field":1}"#).unwrap();
        assert!(matches!(old, SupervisorMessage::Hello { .. }));
    }

    #[test]
    fn secret_parameters_are_redacted_in_debug() {
        let p = JobParameter {
            value: "hunter2".into(),
            secret: true,
        };
        assert!(!format!("{p:?}").contains("hunter2"));
        let p = JobParameter {
            value: "visible".into(),
            secret: false,
        };
        assert!(format!("{p:?}").contains("visible"));
    }
}
