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
    /// The audit gate of every site that sets none (see [`RequireAudit`]); absent: the
    /// switchboard's configured `require_audit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_audit: Option<RequireAudit>,
}

/// What a supervisor's host must have passed before the scheduler gives it jobs (issue 15
/// item 8). A failing check run blocks a supervisor whatever this says (`audit_blocked`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequireAudit {
    /// Fail-open (the default): a host never checked, or whose inventory's verdict is FAILED,
    /// is schedulable.
    #[default]
    None,
    /// The host's latest baseline check run must exist and have no hard failure.
    Check,
    /// As `check`, and the latest inventory's verdict must not be FAILED (an inventory is
    /// not required, a FAILED one blocks).
    CheckAndInventory,
}

impl RequireAudit {
    pub const ALL: [(&'static str, RequireAudit); 3] = [
        ("none", RequireAudit::None),
        ("check", RequireAudit::Check),
        ("check_and_inventory", RequireAudit::CheckAndInventory),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequireAudit::None => "none",
            RequireAudit::Check => "check",
            RequireAudit::CheckAndInventory => "check_and_inventory",
        }
    }
}

impl std::fmt::Display for RequireAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RequireAudit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RequireAudit::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, r)| *r)
            .ok_or_else(|| format!("`{s}`: expected none, check or check_and_inventory"))
    }
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
    /// The site's audit gate; absent: `defaults.require_audit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_audit: Option<RequireAudit>,
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
