//! The supervisor WebSocket protocol (`paddock.v1`): JSON text frames, one message per frame,
//! tagged by `type`. Changes are additive: unknown optional fields are ignored by both sides.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::deployments::HostKind;
use crate::{ExecutionState, ExitStatus, ImageId, JobId, Name, SupervisorId, Tag};

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

/// Where a user logs in to a job's host with SSH: `ssh -p PORT USER@HOST` (`paddock job ssh`).
/// Not a secret: logging in takes a private key matching one of the job's SSH keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEndpoint {
    /// A host name or an IP address (an IPv6 address without brackets).
    pub host: String,
    pub port: u16,
    /// The user to log in as.
    pub user: String,
}

impl AccessEndpoint {
    /// Longest host name (DNS's limit).
    pub const MAX_HOST: usize = 253;
    /// Longest user name.
    pub const MAX_USER: usize = 64;

    /// Refuses what could not be a host, port and user for `ssh`: every character is checked,
    /// so nothing in it can be taken for an option or shell syntax (a host or user starting
    /// with `-` is refused).
    pub fn check(&self) -> Result<(), String> {
        let host_ok = !self.host.is_empty()
            && self.host.len() <= Self::MAX_HOST
            && !self.host.starts_with(['-', '.'])
            && self
                .host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        if !host_ok {
            return Err(format!(
                "access host {:?} is not a host name or an IP address (at most {} bytes)",
                self.host,
                Self::MAX_HOST
            ));
        }
        if self.port == 0 {
            return Err("access port 0".into());
        }
        let user_ok = !self.user.is_empty()
            && self.user.len() <= Self::MAX_USER
            && !self.user.starts_with(['-', '.'])
            && self
                .user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !user_ok {
            return Err(format!(
                "access user {:?} is not a user name (A-Z a-z 0-9 . _ -, at most {} bytes)",
                self.user,
                Self::MAX_USER
            ));
        }
        Ok(())
    }
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
    /// How a user reaches a job's host (a VM's forwarded sshd), sent once the host is started
    /// and before its `ready`. The switchboard keeps it with the job until the job terminates
    /// (and refuses one that [`AccessEndpoint::check`] refuses).
    JobAccess {
        job_id: JobId,
        access: AccessEndpoint,
    },
    /// Answer to `status_request`.
    Status {
        #[serde(default)]
        running_jobs: Vec<RunningJob>,
    },
    Heartbeat,
}

/// The most bytes of console input one `console_input` message (and one API request) carries.
pub const CONSOLE_INPUT_MAX: usize = 4096;

/// Console input as it travels (`console_input`): the text, whose `Debug` shows only its
/// length, so that no log of a message ever holds what a user typed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConsoleInput(pub String);

impl fmt::Debug for ConsoleInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
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
    /// `config` is a [`SupervisorConfig`]; kept as JSON here so that a configuration a
    /// supervisor cannot read (a newer switchboard's) does not make the message unreadable.
    Config {
        generation: u64,
        config: serde_json::Value,
    },
    /// Input for the live console of a job the supervisor runs (`POST
    /// /api/v1/jobs/{id}/console/input`): the supervisor hands `data` to the job's host (a VM's
    /// serial port). At most [`CONSOLE_INPUT_MAX`] bytes; never logged (only its length).
    /// Fire and forget: input for a job the supervisor does not run, for a host without console
    /// input, or over the bound is dropped with a warning in the supervisor's log (its length).
    ConsoleInput {
        job_id: JobId,
        data: ConsoleInput,
    },
    /// A message from the supervisor was refused (for example an illegal transition).
    Refused {
        job_id: Option<JobId>,
        reason: String,
    },
    Heartbeat,
}

/// The live configuration a supervisor receives (`config` of [`SwitchboardMessage::Config`]):
/// its own declaration in the applied deployment, with its site's image stores and its PDU
/// (built by `deployments::supervisor_config`). The token hash is not in it.
///
/// The fields are in the order of their names, as the switchboard wrote this object before it
/// was typed (a JSON map, keys sorted). Fields it does not know are ignored (changes are
/// additive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorConfig {
    #[serde(default)]
    pub comment: Option<String>,
    /// The site's image store URLs, in the order supervisors try them (after their own).
    #[serde(default)]
    pub image_stores: Vec<String>,
    pub kind: HostKind,
    /// MAC address of the DUT (netboot), lower case.
    #[serde(default)]
    pub mac: Option<String>,
    pub name: Name,
    /// The PDU that powers the supervisor's host, if the deployment names one.
    #[serde(default)]
    pub pdu: Option<PduConfig>,
    #[serde(default = "yes")]
    pub ready_for_service: bool,
    #[serde(default)]
    pub retired: bool,
    pub site: Name,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

fn yes() -> bool {
    true
}

/// The PDU of a [`SupervisorConfig`], with the supervisor's port on it (fields in the order
/// of their names, as [`SupervisorConfig`]'s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PduConfig {
    /// Driver-specific settings, as written in the deployment.
    #[serde(default)]
    pub config: serde_json::Value,
    pub driver: Name,
    pub name: Name,
    /// The PDU port (a number or the PDU's own port name), as text.
    #[serde(default)]
    pub port: Option<String>,
}

impl SupervisorConfig {
    /// Reads a pushed configuration.
    pub fn read(config: &serde_json::Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(config)
    }

    /// As `config` of [`SwitchboardMessage::Config`] carries it.
    pub fn to_value(&self) -> serde_json::Value {
        // Cannot fail: every map of it has string keys.
        serde_json::to_value(self).unwrap_or_default()
    }
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
    fn job_access_wire_format_and_bounds() {
        let id: JobId = "0190b6d8-7c2e-7000-8000-000000000001".parse().unwrap();
        let access = AccessEndpoint {
            host: "rack1.lab".into(),
            port: 40022,
            user: "paddock".into(),
        };
        let m = SupervisorMessage::JobAccess {
            job_id: id,
            access: access.clone(),
        };
        let s = serde_json::to_string(&m).unwrap();
        assert_eq!(
            s,
            r#"{"type":"job_access","job_id":"0190b6d8-7c2e-7000-8000-000000000001","access":{"host":"rack1.lab","port":40022,"user":"paddock"}}"#
        );
        assert_eq!(serde_json::from_str::<SupervisorMessage>(&s).unwrap(), m);
        assert!(access.check().is_ok());
        for host in ["127.0.0.1", "::1", "a-b.example.org", "lab_1"] {
            let a = AccessEndpoint {
                host: host.into(),
                ..access.clone()
            };
            assert!(a.check().is_ok(), "{host}");
        }
        let bad = [
            AccessEndpoint {
                host: "-oProxyCommand=x".into(),
                ..access.clone()
            },
            AccessEndpoint {
                host: "a b".into(),
                ..access.clone()
            },
            AccessEndpoint {
                host: "".into(),
                ..access.clone()
            },
            AccessEndpoint {
                host: "a".repeat(254),
                ..access.clone()
            },
            AccessEndpoint {
                port: 0,
                ..access.clone()
            },
            AccessEndpoint {
                user: "-l".into(),
                ..access.clone()
            },
            AccessEndpoint {
                user: "root@x".into(),
                ..access.clone()
            },
            AccessEndpoint {
                user: "u".repeat(65),
                ..access.clone()
            },
        ];
        for a in bad {
            assert!(a.check().is_err(), "{a:?}");
        }
        // A port out of range is not a u16: the message is unreadable.
        let wide = s.replace("40022", "70000");
        assert!(serde_json::from_str::<SupervisorMessage>(&wide).is_err());
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

    fn config() -> SupervisorConfig {
        SupervisorConfig {
            comment: Some("bench 3".into()),
            image_stores: vec!["http://127.0.0.1:8081".into()],
            kind: HostKind::Netboot,
            mac: Some("52:54:00:12:34:56".into()),
            name: "lab1-nrf52".parse().unwrap(),
            pdu: Some(PduConfig {
                config: serde_json::json!({"on": "echo on", "ports": 8}),
                driver: "command".parse().unwrap(),
                name: "rack1-pdu".parse().unwrap(),
                port: Some("3".into()),
            }),
            ready_for_service: true,
            retired: false,
            site: "lab1".parse().unwrap(),
            tags: vec!["fw:v2".parse().unwrap()],
        }
    }

    #[test]
    fn a_supervisor_config_round_trips() {
        for c in [
            config(),
            SupervisorConfig {
                pdu: None,
                mac: None,
                comment: None,
                tags: vec![],
                ..config()
            },
        ] {
            let text = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<SupervisorConfig>(&text).unwrap(), c);
            assert_eq!(SupervisorConfig::read(&c.to_value()).unwrap(), c);
        }
    }

    /// The `config` message as the switchboard wrote it before the configuration was typed
    /// (`json!`: keys sorted), byte for byte.
    #[test]
    fn a_config_message_is_written_as_before() {
        let wire = r#"{"type":"config","generation":4,"config":{"comment":"bench 3","image_stores":["http://127.0.0.1:8081"],"kind":"netboot","mac":"52:54:00:12:34:56","name":"lab1-nrf52","pdu":{"config":{"on":"echo on","ports":8},"driver":"command","name":"rack1-pdu","port":"3"},"ready_for_service":true,"retired":false,"site":"lab1","tags":["fw:v2"]}}"#;
        let m = SwitchboardMessage::Config {
            generation: 4,
            config: config().to_value(),
        };
        assert_eq!(serde_json::to_string(&m).unwrap(), wire);
        let SwitchboardMessage::Config { config: c, .. } = serde_json::from_str(wire).unwrap()
        else {
            panic!("not a config")
        };
        assert_eq!(SupervisorConfig::read(&c).unwrap(), config());
        // Written straight from the struct: the same bytes.
        let from_struct = serde_json::to_string(&config()).unwrap();
        assert!(wire.contains(&from_struct), "{from_struct}");
        // No PDU, no MAC: `null`, as before.
        let bare = r#"{"comment":null,"image_stores":[],"kind":"qemu","mac":null,"name":"a","pdu":null,"ready_for_service":true,"retired":false,"site":"s","tags":[]}"#;
        let c: SupervisorConfig = serde_json::from_str(bare).unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), bare);
        // A newer switchboard's field is ignored.
        let mut v = config().to_value();
        v["future"] = serde_json::json!(1);
        assert_eq!(SupervisorConfig::read(&v).unwrap(), config());
    }

    #[test]
    fn console_input_is_never_shown_by_debug() {
        let m = SwitchboardMessage::ConsoleInput {
            job_id: "00000000-0000-0000-0000-000000000001".parse().unwrap(),
            data: ConsoleInput("hunter2\n".into()),
        };
        let wire = serde_json::to_string(&m).unwrap();
        assert!(wire.contains(r#""type":"console_input""#), "{wire}");
        assert!(wire.contains(r#""data":"hunter2\n""#), "{wire}");
        assert_eq!(
            serde_json::from_str::<SwitchboardMessage>(&wire).unwrap(),
            m
        );
        let shown = format!("{m:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<8 bytes>"), "{shown}");
    }
}
