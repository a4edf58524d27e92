//! Supervisors (`/api/v1/supervisors`).

use serde::{Deserialize, Serialize};

use crate::acl::Acl;
use crate::{JobId, Name, SupervisorId, Tag};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSupervisorRequest {
    pub name: Name,
    pub site: Name,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub acl: Acl,
    /// Defaults to true when an admin registers it (a supervisor added by hand is meant to be
    /// used), false otherwise; only an admin may ask for true.
    #[serde(default)]
    pub ready_for_service: Option<bool>,
}

/// The answer to a supervisor's creation; the only one that carries its token.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewSupervisor {
    pub id: SupervisorId,
    pub name: Name,
    pub token: String,
}

impl std::fmt::Debug for NewSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSupervisor")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Changes to a supervisor; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSupervisorRequest {
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub retired: Option<bool>,
    #[serde(default)]
    pub ready_for_service: Option<bool>,
    #[serde(default)]
    pub acl: Option<Acl>,
    /// A free-text note; an empty one clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupervisorView {
    pub id: SupervisorId,
    pub name: Name,
    pub site: Name,
    pub tags: Vec<Tag>,
    pub acl: Acl,
    pub retired: bool,
    pub ready_for_service: bool,
    /// The host's latest audit check run had a hard failure: no new jobs until one passes.
    #[serde(default)]
    pub audit_blocked: bool,
    /// The host's latest audit check run exists and passed (what `require_audit: check`
    /// needs).
    #[serde(default)]
    pub audit_check_passed: bool,
    /// The host's latest inventory's verdict is FAILED (what `require_audit:
    /// check_and_inventory` refuses).
    #[serde(default)]
    pub inventory_failed: bool,
    pub connected: bool,
    pub current_job: Option<JobId>,
    pub last_seen: Option<String>,
    pub created_at: String,
    /// The free-text comment (for a supervisor the deployments repo declares, the repo's).
    #[serde(default)]
    pub comment: Option<String>,
    /// What the deployments repo declares of the host (`local`, `qemu`, `netboot`); `null`
    /// for a supervisor added by hand.
    #[serde(default)]
    pub kind: Option<String>,
    /// The repo's PDU name and port of the host.
    #[serde(default)]
    pub pdu: Option<String>,
    #[serde(default)]
    pub pdu_port: Option<String>,
    /// The repo's MAC address of the DUT (netboot).
    #[serde(default)]
    pub mac: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupervisorList {
    pub supervisors: Vec<SupervisorView>,
}
