//! `--report-to URL`: the report (or a check run) sent to the switchboard, which keeps it
//! with the supervisor's history and gates scheduling on the latest check run
//! (`POST /api/v1/audit/reports`, a token with the manage_supervisors privilege).

use std::path::PathBuf;
use std::time::Duration;

use paddock_core::Name;
use paddock_core::api::audit::{AuditKind, Recorded, ReportRequest};
use serde_json::Value;

/// Where to send, and as whom.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportTo {
    /// Send the result to this switchboard (`http://host:port`).
    #[arg(long = "report-to", requires = "supervisor")]
    pub url: Option<String>,
    /// The supervisor whose host this is (its name in the switchboard).
    #[arg(long)]
    pub supervisor: Option<String>,
    /// File holding an API token with the manage_supervisors privilege (default: the
    /// PADDOCK_TOKEN environment variable).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl ReportTo {
    /// Sends `report` of `kind`; the switchboard's answer.
    pub fn send(&self, kind: AuditKind, report: Value) -> Result<Option<Recorded>, String> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let supervisor = self.supervisor.as_deref().unwrap_or_default();
        // Checked here, not by the switchboard's refusal (400) as before the request was typed.
        let supervisor: Name = supervisor
            .parse()
            .map_err(|e| format!("--supervisor: {e}"))?;
        let token = match &self.token_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| format!("--token-file {}: {e}", f.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
            None => std::env::var("PADDOCK_TOKEN")
                .map_err(|_| "--report-to needs --token-file or PADDOCK_TOKEN".to_string())?,
        };
        // The one switchboard client (URL checked first, or reqwest would say only "builder
        // error"); the agent is not async, so the call runs on a runtime of its own.
        let switchboard = paddock_client::Switchboard::new(url, "--report-to", Some(token))
            .map_err(|e| e.to_string())?
            .limited(paddock_client::Timeouts {
                call: Duration::from_secs(30),
                ..Default::default()
            });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the runtime: {e}"))?;
        let body = ReportRequest {
            supervisor,
            kind,
            report,
        };
        let answer: Recorded = runtime
            .block_on(switchboard.post("/audit/reports", &body))
            .map_err(|e| match e {
                paddock_client::ClientError::Status { .. } => {
                    format!("{}/api/v1/audit/reports: {e}", switchboard.base())
                }
                e => e.to_string(),
            })?;
        Ok(Some(answer))
    }
}

/// The switchboard's answer as printed (`report sent ({…})`): its JSON, keys sorted.
pub fn shown(answer: &Recorded) -> String {
    serde_json::to_value(answer)
        .map(|v| v.to_string())
        .unwrap_or_default()
}
