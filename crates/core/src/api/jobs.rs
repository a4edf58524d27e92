//! Jobs (`/api/v1/jobs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::{AccessEndpoint, JobParameter};
use crate::{Actor, ExecutionState, ExitStatus, ImageId, JobId, Name, SupervisorId};

/// `POST /api/v1/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnqueueJobRequest {
    /// Image id: the manifest's sha256 digest. Kept as a string so a malformed one gets a
    /// precise 400 instead of a generic decoding error.
    pub image: String,
    /// Tag expression selecting supervisors, e.g. `board:nrf52840dk & !site:pton`.
    pub tags: String,
    /// Parameters by name. Unlike the supervisor protocol (where unknown fields are ignored so
    /// it can grow), a submitted parameter refuses unknown fields: a misspelt `secret` must not
    /// store a secret as public.
    #[serde(default, deserialize_with = "strict_parameters")]
    pub parameters: BTreeMap<String, JobParameter>,
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// Seconds the job may run once scheduled; the server default when absent.
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// Seconds the job may wait in the queue; the server default when absent.
    #[serde(default)]
    pub queue_timeout_s: Option<u64>,
    /// Higher runs first; oldest first within a priority.
    #[serde(default)]
    pub priority: i32,
}

/// `POST /api/v1/jobs/{id}/console/input`: text for the job's live console (a VM's serial
/// port), at most [`crate::protocol::CONSOLE_INPUT_MAX`] bytes, sent as it is (a line ends with
/// the `\n` the client puts there).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleInputRequest {
    pub data: String,
}

impl std::fmt::Debug for ConsoleInputRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ConsoleInputRequest {{ data: <{} bytes> }}",
            self.data.len()
        )
    }
}

/// The answer to `POST /api/v1/jobs/{id}/console/input` (202): the input went to the job's
/// supervisor, `bytes` long. Delivery to the host is not confirmed (the supervisor logs a host
/// that refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleInputResponse {
    pub bytes: usize,
}

/// Reads submitted parameters with `deny_unknown_fields` (also the puppet's job data,
/// `crate::puppet::JobData`).
pub(crate) fn strict_parameters<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, JobParameter>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Submitted {
        value: String,
        #[serde(default)]
        secret: bool,
    }
    Ok(BTreeMap::<String, Submitted>::deserialize(d)?
        .into_iter()
        .map(|(name, p)| {
            let parameter = JobParameter {
                value: p.value,
                secret: p.secret,
            };
            (name, parameter)
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnqueueJobResponse {
    pub job_id: JobId,
}

/// A parameter as read back: secret values are never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub secret: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    pub id: JobId,
    pub user: Name,
    pub image_id: ImageId,
    pub tags: String,
    pub parameters: BTreeMap<String, ParameterView>,
    pub ssh_keys: Vec<String>,
    pub timeout_s: u64,
    pub queue_timeout_s: u64,
    pub priority: i32,
    pub execution_state: ExecutionState,
    pub exit_status: Option<ExitStatus>,
    pub status_message: Option<String>,
    pub supervisor_id: Option<SupervisorId>,
    pub created_at: String,
    pub updated_at: String,
    pub terminated_at: Option<String>,
    /// How to log in to the job's host (`ssh -p PORT USER@HOST`), once its supervisor has
    /// started a host that offers it (a VM of the `qemu` driver with user-mode networking);
    /// absent otherwise and once the job has terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessEndpoint>,
}

/// `GET /api/v1/jobs?state=&user=&limit=&cursor=`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One entry of a job's event log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobEvent {
    pub id: i64,
    pub job_id: JobId,
    pub at: String,
    pub actor: Actor,
    pub from_state: Option<ExecutionState>,
    pub to_state: ExecutionState,
    pub from_status: Option<ExitStatus>,
    pub to_status: Option<ExitStatus>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobEventList {
    pub events: Vec<JobEvent>,
}
