//! The deployments repo's state on the switchboard (`/api/v1/deployment`): what is applied,
//! the newest rejected commit, and what the deploy daemon last reported (docs/deployments.md).

use serde::{Deserialize, Serialize};

use crate::deployments::{Change, DesiredState};

/// `GET /api/v1/deployment`, and the answer of every other call on the resource: the last
/// applied deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Empty before the first apply.
    pub commit: String,
    pub generation: i64,
    /// Milliseconds since the epoch; 0 before the first apply.
    pub applied_at: i64,
    /// The newest rejected commit since the last apply, with its errors; withdrawn by the
    /// deploy daemon when none of its sources holds that commit any more.
    pub last_error: Option<Rejection>,
    /// What the deploy daemon last reported it saw (remote commit, working tree, host
    /// activation); `null` until it reports. Read as none when it does not read as a
    /// [`Report`] (from an older switchboard, which kept any JSON object): what is applied
    /// is still read.
    #[serde(default, deserialize_with = "report_or_none")]
    pub report: Option<Report>,
}

fn report_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Report>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

/// A commit the deploy daemon refused (invalid YAML, failed references, …):
/// `POST /api/v1/deployment/rejection`, and `last_error` of [`Applied`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub commit: String,
    /// Milliseconds since the epoch (set by the switchboard when it records the rejection).
    #[serde(default)]
    pub at: i64,
    /// The first `file:line:column: field: message` lines (see [`Rejection::bounded`]), or
    /// one line for a repository problem.
    pub errors: Vec<String>,
    /// How many errors the commit has in all; `errors` may hold fewer. Absent from older
    /// daemons' reports and older rows: the number of `errors`.
    #[serde(default)]
    pub total_errors: usize,
}

impl Rejection {
    /// Within the limits: the first `MAX_REPORTED_ERRORS` lines, each cut to
    /// `MAX_ERROR_LINE_BYTES`, and the total (at least the number of lines sent).
    pub fn bounded(mut self) -> Self {
        use crate::deployments::limits::{MAX_REPORTED_ERRORS, cut_line};
        self.total_errors = self.total_errors.max(self.errors.len());
        self.errors.truncate(MAX_REPORTED_ERRORS);
        for e in &mut self.errors {
            *e = cut_line(e);
        }
        self
    }
}

/// `POST /api/v1/deployment/rejection`: the deploy daemon reports a commit it refused. The
/// switchboard records it as a [`Rejection`], stamped with the time it arrived (`at`, which
/// the daemon does not send). Fields it does not know are ignored, as they always were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionRequest {
    pub commit: String,
    /// The first `file:line:column: field: message` lines, each cut to a bounded length.
    pub errors: Vec<String>,
    /// How many errors the commit has in all; absent from older daemons' reports: the
    /// number of `errors`.
    #[serde(default)]
    pub total_errors: usize,
}

impl RejectionRequest {
    /// The rejection to record (`at` is the switchboard's to set), within the limits.
    pub fn into_rejection(self) -> Rejection {
        Rejection {
            commit: self.commit,
            at: 0,
            errors: self.errors,
            total_errors: self.total_errors,
        }
        .bounded()
    }
}

/// `POST /api/v1/deployment`: apply a validated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// The commit id the state was read from.
    pub commit: String,
    /// Increases with every state the daemon sends; an older one is refused (409).
    pub generation: i64,
    pub state: DesiredState,
}

/// The answer to `POST /api/v1/deployment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResponse {
    pub applied: Applied,
    /// One line per change (`+ supervisor lab1/x (id)`, …); empty when nothing changed.
    pub summary: Vec<String>,
    pub changes: Vec<Change>,
}

/// `DELETE /api/v1/deployment/rejection?commit=`: withdraw the recorded rejection if it is
/// still of `commit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearRejectionQuery {
    /// The rejected commit (as reported) that no source holds any more.
    pub commit: String,
}

/// What the deploy daemon reports after each turn (`POST /api/v1/deployment/report`, shown
/// as `report` by `GET /deployment` and `paddock deploy status`): the remote branch's commit,
/// the working tree, the last host activation, and from these the pending commit and the
/// drift between the live state and the remote.
///
/// Read leniently as part of an answer; the switchboard refuses a posted report with a field
/// it does not know ([`parse_report`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The repository (a path, or a URL without its password) and branch.
    pub repo: String,
    pub branch: String,
    /// The branch's newest commit as last read; `None` when it could not be read.
    pub remote_commit: Option<String>,
    /// Why the branch could not be read (deleted branch, unreachable remote, …).
    pub remote_error: Option<String>,
    pub worktree: Option<WorktreeReport>,
    /// The remote commit when it is not the live one (rejected, or not yet applied).
    pub pending: Option<String>,
    /// How the live state differs from the remote, in words; `None` when it is the remote's.
    pub drift: Option<String>,
    pub activation: Option<ActivationRecord>,
    /// Milliseconds since the epoch.
    pub checked_at: i64,
}

/// The deploy daemon's working tree, in its [`Report`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorktreeReport {
    pub path: String,
    /// The checked-out commit (empty before the first commit).
    pub head: String,
    /// Files under `db/` that differ from `head`.
    pub edited: Vec<String>,
    /// What the working tree applies as (`head`, or `head+edits-…`).
    pub commit: String,
    /// Commits `head` has that the remote branch lacks; `None` when unknown or diverged.
    pub ahead: Option<usize>,
}

/// One host activation and what came of it (in a [`Report`], and the deploy daemon's
/// `activation.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRecord {
    pub commit: String,
    /// Id of `hosts/<host>/` in that commit.
    pub tree: String,
    /// Milliseconds since the epoch.
    pub started_at: i64,
    pub finished_at: i64,
    /// `activated`, `activation failed, rolled back`, `unhealthy, rolled back`, or the same
    /// with `rollback failed`, or `activation failed` without a rollback command.
    pub outcome: String,
    /// Every command run: `(command, exit status or why it did not finish)`.
    pub steps: Vec<(String, String)>,
    /// The last lines of the output of the last command run.
    pub output_tail: String,
}

/// A posted report, refusing any field [`Report`] does not have (as every request body is
/// read): the error names the first unknown one by its path (`worktree.hed`).
pub fn parse_report(body: &serde_json::Value) -> Result<Report, String> {
    let report = Report::deserialize(body).map_err(|e| e.to_string())?;
    // Every field of the report is serialized (none is skipped), so a key of the body that
    // its typed value lacks is one the type does not know.
    let known = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    match unknown_field(body, &known, "") {
        Some(path) => Err(format!("unknown field `{path}`")),
        None => Ok(report),
    }
}

/// The path of the first key of `raw` (recursively) that `known` does not have.
fn unknown_field(raw: &serde_json::Value, known: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    let join = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match (raw, known) {
        (Value::Object(r), Value::Object(k)) => r.iter().find_map(|(key, v)| match k.get(key) {
            None => Some(join(key)),
            Some(kv) => unknown_field(v, kv, &join(key)),
        }),
        (Value::Array(r), Value::Array(k)) => r
            .iter()
            .zip(k)
            .enumerate()
            .find_map(|(i, (rv, kv))| unknown_field(rv, kv, &format!("{at}[{i}]"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Report {
        Report {
            repo: "git@forge.example:lab/deployments.git".into(),
            branch: "main".into(),
            remote_commit: Some("a".repeat(40)),
            remote_error: None,
            worktree: Some(WorktreeReport {
                path: "/srv/deployments".into(),
                head: "a".repeat(40),
                edited: vec!["db/sites/lab1.yaml".into()],
                commit: format!("{}+edits-0123456789ab", "a".repeat(40)),
                ahead: Some(0),
            }),
            pending: None,
            drift: Some("live state is ahead of the remote: …".into()),
            activation: Some(ActivationRecord {
                commit: "a".repeat(40),
                tree: "b".repeat(40),
                started_at: 1_700_000_000_000,
                finished_at: 1_700_000_001_000,
                outcome: "activated".into(),
                steps: vec![("true".into(), "exit 0".into())],
                output_tail: String::new(),
            }),
            checked_at: 1_700_000_002_000,
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
        let applied = Applied {
            commit: "c1".into(),
            generation: 3,
            applied_at: 1_700_000_000_000,
            last_error: Some(Rejection {
                commit: "bad".into(),
                at: 1_700_000_000_500,
                errors: vec!["db/sites/lab1.yaml:1:1: x: bad".into()],
                total_errors: 4,
            }),
            report: Some(report()),
        };
        round_trip(&applied);
        round_trip(&Applied {
            last_error: None,
            report: None,
            ..applied.clone()
        });
        round_trip(&ApplyRequest {
            commit: "c1".into(),
            generation: 1,
            state: DesiredState::default(),
        });
        round_trip(&ApplyResponse {
            applied,
            summary: vec![],
            changes: vec![],
        });
        round_trip(&RejectionRequest {
            commit: "bad".into(),
            errors: vec!["db/sites/lab1.yaml:1:1: x: bad".into()],
            total_errors: 4,
        });
        round_trip(&ClearRejectionQuery {
            commit: "c1+edits-0123456789ab".into(),
        });
    }

    /// The wire shape as the switchboard answered before the types moved here.
    #[test]
    fn todays_wire_shape_parses_and_is_written_the_same() {
        let wire = json!({
            "commit": "c1",
            "generation": 2,
            "applied_at": 1_700_000_000_000_i64,
            "last_error": {
                "commit": "bad",
                "at": 1_700_000_000_500_i64,
                "errors": ["db/sites/lab1.yaml:29:11: supervisors[2].kind: `netbot` is not a host kind"],
                "total_errors": 1
            },
            "report": {
                "repo": "/srv/R.git",
                "branch": "main",
                "remote_commit": null,
                "remote_error": "branch `main` does not exist",
                "worktree": {
                    "path": "/srv/W",
                    "head": "",
                    "edited": [],
                    "commit": "",
                    "ahead": null
                },
                "pending": null,
                "drift": "the remote branch could not be read",
                "activation": {
                    "commit": "c1",
                    "tree": "t1",
                    "started_at": 1,
                    "finished_at": 2,
                    "outcome": "activation failed, rolled back",
                    "steps": [["nixos-rebuild switch", "exit 1"], ["rollback", "exit 0"]],
                    "output_tail": "error: …"
                },
                "checked_at": 3
            }
        });
        let applied: Applied = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(
            applied
                .report
                .as_ref()
                .unwrap()
                .activation
                .as_ref()
                .unwrap()
                .steps[0]
                .1,
            "exit 1"
        );
        assert_eq!(serde_json::to_value(&applied).unwrap(), wire);
        // An older rejection row: no `at`, no `total_errors`.
        let old: Rejection =
            serde_json::from_value(json!({"commit": "x", "errors": ["a"]})).unwrap();
        assert_eq!((old.at, old.total_errors), (0, 0));
        assert_eq!(old.bounded().total_errors, 1);
        // A report that is not one (an older switchboard stored any object): none.
        let mut free = wire.clone();
        free["report"] = json!({"free": "form"});
        let a: Applied = serde_json::from_value(free).unwrap();
        assert_eq!((a.commit.as_str(), a.report), ("c1", None));
        // The apply answer.
        let answer = json!({"applied": wire, "summary": [], "changes": []});
        let r: ApplyResponse = serde_json::from_value(answer.clone()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), answer);
    }

    #[test]
    fn a_posted_report_with_an_unknown_field_is_refused() {
        let mut body = serde_json::to_value(report()).unwrap();
        assert_eq!(parse_report(&body), Ok(report()));
        body["worktree"]["hed"] = json!("x");
        assert_eq!(
            parse_report(&body),
            Err("unknown field `worktree.hed`".to_string())
        );
        let mut body = serde_json::to_value(report()).unwrap();
        body["pad"] = json!("x");
        assert_eq!(parse_report(&body), Err("unknown field `pad`".to_string()));
        assert!(parse_report(&json!({"repo": "r"})).is_err());
        // An answer is read leniently: a newer switchboard may say more.
        let mut answer = serde_json::to_value(report()).unwrap();
        answer["new"] = json!(1);
        assert!(serde_json::from_value::<Report>(answer).is_ok());
    }

    /// The rejection body as the deploy daemon wrote it with `json!` (keys sorted, no `at`).
    #[test]
    fn a_rejection_request_is_written_as_the_daemon_wrote_it() {
        let wire =
            r#"{"commit":"c2","errors":["db/sites/lab1.yaml:3:5: kind: bad"],"total_errors":7}"#;
        let req = RejectionRequest {
            commit: "c2".into(),
            errors: vec!["db/sites/lab1.yaml:3:5: kind: bad".into()],
            total_errors: 7,
        };
        assert_eq!(serde_json::to_string(&req).unwrap(), wire);
        assert_eq!(serde_json::from_str::<RejectionRequest>(wire).unwrap(), req);
        // An older daemon's: no total; a client's `at` is not the switchboard's time.
        let old: RejectionRequest =
            serde_json::from_value(json!({"commit": "x", "errors": ["a", "b"], "at": 5})).unwrap();
        let r = old.into_rejection();
        assert_eq!((r.at, r.total_errors), (0, 2));
    }
}
