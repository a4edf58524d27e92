//! `paddock-audit check --baseline FILE`: a declared host baseline evaluated on a host, one
//! machine-readable line per check and a summary line (see [`line`]).

pub mod baseline;
pub mod evaluate;
pub mod line;

use crate::host::Host;
use baseline::Check;

/// A check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub name: String,
    /// `PASS`, `WARN` (a soft check failed) or `FAIL` (a hard one).
    pub status: &'static str,
    pub detail: String,
    pub remediation: Option<String>,
}

/// Evaluates every check, in order.
pub fn run(host: &dyn Host, checks: &[Check]) -> Vec<CheckResult> {
    checks
        .iter()
        .map(|c| {
            let o = evaluate::evaluate(host, c);
            let status = match (o.passed, c.hard) {
                (true, _) => "PASS",
                (false, true) => "FAIL",
                (false, false) => "WARN",
            };
            CheckResult {
                name: c.name.clone(),
                status,
                detail: o.detail,
                remediation: c.remediation.clone(),
            }
        })
        .collect()
}

/// The output lines (results then the summary), and whether a hard check failed.
pub fn report(results: &[CheckResult]) -> (Vec<String>, bool) {
    let mut lines: Vec<String> = results
        .iter()
        .map(|r| {
            let remediation = (r.status != "PASS")
                .then_some(())
                .and(r.remediation.as_deref());
            line::result(r.status, &r.name, &r.detail, remediation)
        })
        .collect();
    let failures = results.iter().filter(|r| r.status == "FAIL").count();
    let warnings = results.iter().filter(|r| r.status == "WARN").count();
    lines.push(line::summary(results.len(), failures, warnings));
    (lines, failures > 0)
}
