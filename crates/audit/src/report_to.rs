//! `--report-to URL`: the report (or a check run) sent to the switchboard, which keeps it
//! with the supervisor's history and gates scheduling on the latest check run
//! (`POST /api/v1/audit/reports`, a token with the manage_supervisors privilege).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

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
    /// Sends `report` of `kind` (`collect` or `check`); the switchboard's answer.
    pub fn send(&self, kind: &str, report: &Value) -> Result<Option<Value>, String> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        paddock_core::transport::require_plain(url).map_err(|e| format!("--report-to {e}"))?;
        // Checked here, or reqwest would say only "builder error".
        match reqwest::Url::parse(url) {
            Ok(u) if u.scheme() == "http" && u.has_host() => {}
            Ok(_) => {
                return Err(format!(
                    "--report-to {url:?} is not an http:// URL (expected http://HOST:PORT)"
                ));
            }
            Err(e) => {
                return Err(format!(
                    "--report-to {url:?} is not a URL: {e} (expected http://HOST:PORT)"
                ));
            }
        }
        let supervisor = self.supervisor.clone().unwrap_or_default();
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
        let endpoint = format!("{}/api/v1/audit/reports", url.trim_end_matches('/'));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = http
            .post(&endpoint)
            .bearer_auth(token)
            .json(&json!({"supervisor": supervisor, "kind": kind, "report": report}))
            .send()
            .map_err(|e| {
                // The URL once, then every cause (reqwest's own text is only "error sending
                // request", with the URL again).
                format!(
                    "{endpoint}: {}",
                    paddock_core::error_text::with_causes(&e.without_url())
                )
            })?;
        let status = resp.status();
        let body: Value = resp.json().unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!(
                "{endpoint}: HTTP {status}: {}",
                body["error"].as_str().unwrap_or("")
            ));
        }
        Ok(Some(body))
    }
}
