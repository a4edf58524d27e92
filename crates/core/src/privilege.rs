//! Privileges a user (or a token) holds. `admin` implies every other privilege.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    /// Everything, including managing users.
    Admin,
    /// Enqueue jobs and cancel one's own.
    SubmitJobs,
    /// List and read every job, its events and console.
    ListJobs,
    /// Cancel any user's job.
    CancelJobs,
    /// Add, change and retire supervisors; read their status.
    ManageSupervisors,
    /// List supervisors and their status.
    ListSupervisors,
    /// Type into the live console of a job one may see (`paddock job console ID --input`).
    ConsoleInput,
}

impl Privilege {
    pub const ALL: [Privilege; 7] = [
        Self::Admin,
        Self::SubmitJobs,
        Self::ListJobs,
        Self::CancelJobs,
        Self::ManageSupervisors,
        Self::ListSupervisors,
        Self::ConsoleInput,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::SubmitJobs => "submit_jobs",
            Self::ListJobs => "list_jobs",
            Self::CancelJobs => "cancel_jobs",
            Self::ManageSupervisors => "manage_supervisors",
            Self::ListSupervisors => "list_supervisors",
            Self::ConsoleInput => "console_input",
        }
    }

    /// Does a holder of `held` have `self`?
    pub fn granted_by(self, held: &[Privilege]) -> bool {
        held.iter().any(|&h| h == self || h == Privilege::Admin)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown privilege {0:?} (known: admin, submit_jobs, list_jobs, cancel_jobs, manage_supervisors, list_supervisors, console_input)"
)]
pub struct UnknownPrivilege(String);

impl FromStr for Privilege {
    type Err = UnknownPrivilege;
    fn from_str(s: &str) -> Result<Self, UnknownPrivilege> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPrivilege(s.to_string()))
    }
}
