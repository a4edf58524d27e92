//! Audit reports of the supervisors' hosts (`/api/v1/audit/reports`, docs/audit.md): sent by
//! `paddock-audit collect|check --report-to`, kept with history; the latest check run gates
//! scheduling.
//!
//! The report itself stays JSON ([`serde_json::Value`]): a `paddock-audit collect` report
//! (format `paddock-audit/1`, large and versioned by its own `format`) or a check run
//! (`{host, checks, summary}`). The switchboard checks the shape of its `summary` only.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Name, SupervisorId};

/// `collect` (an inventory) or `check` (a baseline run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    Collect,
    Check,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Collect => "collect",
            AuditKind::Check => "check",
        }
    }
}

/// `POST /api/v1/audit/reports` (a token with the manage_supervisors privilege).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// The supervisor whose host was audited.
    pub supervisor: Name,
    pub kind: AuditKind,
    /// A `paddock-audit collect` report, or a check run `{checks, summary}`.
    pub report: Value,
}

/// The answer to `POST /api/v1/audit/reports` (201): what storing the report did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The stored report's id (`GET /api/v1/audit/reports/{id}`).
    pub id: i64,
    pub supervisor_id: SupervisorId,
    /// Whether the supervisor is now kept from new jobs by its audit.
    pub audit_blocked: bool,
}

/// A stored report: `GET /api/v1/audit/reports/{id}` (with its body), and each of the
/// history's (without).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: i64,
    pub supervisor_id: SupervisorId,
    /// `collect` or `check` ([`AuditKind::as_str`]).
    pub kind: String,
    /// Milliseconds since the epoch.
    pub received_at: i64,
    /// `OK`, `WARNING` or `FAILED`.
    pub verdict: String,
    pub failures: i64,
    pub warnings: i64,
    /// The report as sent; absent from the history's entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
}

/// `GET /api/v1/audit/reports?supervisor=&kind=&limit=`: a supervisor's newest reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    pub supervisor: Name,
    #[serde(default)]
    pub kind: Option<AuditKind>,
    /// How many (default 20, at most 1000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// The answer to `GET /api/v1/audit/reports`: newest first, without their bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditHistory {
    pub reports: Vec<AuditRecord>,
}

/// `GET /api/v1/audit/reports/latest?supervisor=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestQuery {
    pub supervisor: Name,
}

/// The answer to `GET /api/v1/audit/reports/latest`: the newest check run and the newest
/// inventory of a supervisor's host, with their bodies; `null` where none arrived yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestAudits {
    pub check: Option<AuditRecord>,
    pub collect: Option<AuditRecord>,
}

impl LatestAudits {
    /// The newest report of `kind`.
    pub fn of(&self, kind: AuditKind) -> Option<&AuditRecord> {
        match kind {
            AuditKind::Collect => self.collect.as_ref(),
            AuditKind::Check => self.check.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUPERVISOR: &str = "0192f3a0-0000-7000-8000-000000000001";

    fn record(report: Option<Value>) -> AuditRecord {
        AuditRecord {
            id: 7,
            supervisor_id: SUPERVISOR.parse().unwrap(),
            kind: "check".into(),
            received_at: 1_700_000_000_000,
            verdict: "WARNING".into(),
            failures: 0,
            warnings: 1,
            report,
        }
    }

    fn round_trip<T>(v: &T)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let text = serde_json::to_string(v).unwrap();
        assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), v, "{text}");
    }

    #[test]
    fn every_type_round_trips() {
        let run = json!({"host": "local", "checks": [], "summary": {"checks": 0, "failures": 0, "warnings": 1}});
        round_trip(&ReportRequest {
            supervisor: "lab1-a".parse().unwrap(),
            kind: AuditKind::Check,
            report: run.clone(),
        });
        round_trip(&Recorded {
            id: 7,
            supervisor_id: SUPERVISOR.parse().unwrap(),
            audit_blocked: true,
        });
        round_trip(&record(Some(run.clone())));
        round_trip(&AuditHistory {
            reports: vec![record(None)],
        });
        round_trip(&HistoryQuery {
            supervisor: "lab1-a".parse().unwrap(),
            kind: Some(AuditKind::Collect),
            limit: Some(5),
        });
        round_trip(&LatestQuery {
            supervisor: "lab1-a".parse().unwrap(),
        });
        round_trip(&LatestAudits {
            check: Some(record(Some(run))),
            collect: None,
        });
    }

    /// The bodies as `paddock-audit --report-to` and the switchboard wrote them before the
    /// types moved here.
    #[test]
    fn todays_wire_shape_parses_and_is_written_the_same() {
        // The agent's request (`json!`: keys sorted).
        let wire = r#"{"kind":"collect","report":{"format":"paddock-audit/1","summary":{"failures":0,"verdict":"OK","warnings":0}},"supervisor":"lab1-a"}"#;
        let req: ReportRequest = serde_json::from_str(wire).unwrap();
        assert_eq!(req.kind, AuditKind::Collect);
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::from_str::<Value>(wire).unwrap()
        );
        assert!(
            serde_json::from_str::<ReportRequest>(
                r#"{"kind":"check","report":{},"supervisor":"a","extra":1}"#
            )
            .is_err(),
            "a request with a field it does not know is refused"
        );
        // The answer to the post (written from the struct: its order).
        let wire = format!(r#"{{"id":3,"supervisor_id":"{SUPERVISOR}","audit_blocked":false}}"#);
        let r: Recorded = serde_json::from_str(&wire).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), wire);
        // One report (written from the struct).
        let wire = format!(
            r#"{{"id":7,"supervisor_id":"{SUPERVISOR}","kind":"check","received_at":1700000000000,"verdict":"WARNING","failures":0,"warnings":1,"report":{{"checks":[],"summary":{{"checks":0,"failures":0,"warnings":1}}}}}}"#
        );
        let r: AuditRecord = serde_json::from_str(&wire).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), wire);
        // The history (written through `json!`: keys sorted), entries without `report`.
        let wire = json!({"reports": [{
            "failures": 0, "id": 7, "kind": "check", "received_at": 1_700_000_000_000_i64,
            "supervisor_id": SUPERVISOR, "verdict": "WARNING", "warnings": 1
        }]});
        let h: AuditHistory = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(h.reports, [record(None)]);
        assert_eq!(
            serde_json::to_value(&h).unwrap().to_string(),
            wire.to_string()
        );
        // The latest (through `json!` too): `null` where none arrived.
        let wire = json!({"check": serde_json::to_value(record(Some(json!({})))).unwrap(), "collect": null});
        let l: LatestAudits = serde_json::from_value(wire.clone()).unwrap();
        assert!(l.of(AuditKind::Collect).is_none());
        assert_eq!(l.of(AuditKind::Check).map(|r| r.warnings), Some(1));
        assert_eq!(
            serde_json::to_value(&l).unwrap().to_string(),
            wire.to_string()
        );
    }
}
