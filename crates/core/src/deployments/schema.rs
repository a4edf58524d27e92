//! The desired state the deployments repo declares (what `db/` holds), as the switchboard
//! receives it. Git holds no secrets and no observed state: a supervisor's credential appears
//! only as the sha256 of its token.

use serde::{Deserialize, Serialize};

use crate::acl::Acl;
use crate::{Name, Privilege, SupervisorId, Tag};

/// `db/switchboard.yaml` and every `db/sites/<site>.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    pub switchboard: SwitchboardDb,
    /// Sorted by name.
    pub sites: Vec<Site>,
}

/// `db/switchboard.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchboardDb {
    pub users: Vec<UserSpec>,
    /// The instance-level ACL, evaluated when no supervisor rule matched.
    #[serde(default)]
    pub acl: Acl,
    #[serde(default)]
    pub defaults: Defaults,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub name: Name,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub privileges: Vec<Privilege>,
}

/// Instance defaults; absent ones keep the switchboard's configured values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub queue_timeout_s: Option<u64>,
    #[serde(default)]
    pub job_timeout_s: Option<u64>,
}

/// `db/sites/<name>.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: Name,
    /// Image store URLs of the site, in the order supervisors try them.
    #[serde(default)]
    pub image_stores: Vec<String>,
    #[serde(default)]
    pub pdus: Vec<PduSpec>,
    #[serde(default)]
    pub supervisors: Vec<SupervisorSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PduSpec {
    pub name: Name,
    pub driver: Name,
    /// Driver-specific settings, as written.
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub comment: Option<String>,
}

/// What drives a supervisor's host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    Local,
    Qemu,
    Netboot,
}

impl HostKind {
    pub const ALL: [(&'static str, HostKind); 3] = [
        ("local", HostKind::Local),
        ("qemu", HostKind::Qemu),
        ("netboot", HostKind::Netboot),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorSpec {
    pub id: SupervisorId,
    pub name: Name,
    pub kind: HostKind,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub pdu: Option<Name>,
    /// The PDU port (a number or the PDU's own port name), written as text.
    #[serde(default)]
    pub pdu_port: Option<String>,
    #[serde(default)]
    pub retired: bool,
    #[serde(default = "yes")]
    pub ready_for_service: bool,
    #[serde(default)]
    pub acl: Acl,
    #[serde(default)]
    pub comment: Option<String>,
    /// sha256 (hex) of the supervisor's token; without it the switchboard mints a token an
    /// admin fetches once (`paddock supervisor token reset`).
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// MAC address of the DUT (netboot), lower case.
    #[serde(default)]
    pub mac: Option<String>,
}

fn yes() -> bool {
    true
}
