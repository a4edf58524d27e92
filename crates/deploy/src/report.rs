//! What the deploy daemon reports to the switchboard after each turn (`POST
//! /api/v1/deployment/report`, shown by `GET /deployment` and `paddock deploy status`): the
//! remote branch's commit, the working tree, the last host activation, and from these the
//! pending commit and the drift between the live state and the remote. The wire types are
//! `paddock_core::api::deployment`'s; what the daemon makes of them is here.

pub use paddock_core::api::deployment::{Report, WorktreeReport};

/// Equal apart from when they were made: no need to send `new` again.
pub fn same(old: &Report, new: &Report) -> bool {
    Report {
        checked_at: 0,
        ..old.clone()
    } == Report {
        checked_at: 0,
        ..new.clone()
    }
}

/// The pending commit and the drift, from the live commit, the remote's, and the working tree.
pub fn drift(
    live: &str,
    remote: Option<&str>,
    worktree: Option<&WorktreeReport>,
) -> (Option<String>, Option<String>) {
    let pending = remote.filter(|r| *r != live).map(str::to_string);
    if let Some(w) = worktree.filter(|w| w.commit == live && Some(live) != remote) {
        let mut parts = Vec::new();
        if !w.edited.is_empty() {
            parts.push(format!(
                "uncommitted edits to {} in {}",
                w.edited.join(", "),
                w.path
            ));
        }
        if remote != Some(w.head.as_str()) {
            parts.push(match w.ahead {
                Some(n) if n > 0 => format!("{n} local commit(s) not pushed"),
                Some(_) => "the working tree's commit is the remote's".to_string(),
                None => format!(
                    "the working tree's commit {} is not a descendant of the remote's",
                    short(&w.head)
                ),
            });
        }
        return (
            pending,
            Some(format!(
                "live state is ahead of the remote: {}",
                parts.join("; ")
            )),
        );
    }
    let drift = match remote {
        Some(r) if r != live && live.is_empty() => Some(format!(
            "nothing applied yet; the remote is at {}",
            short(r)
        )),
        Some(r) if r != live => Some(format!(
            "live state {} is not the remote's {}",
            short(live),
            short(r)
        )),
        None => Some("the remote branch could not be read".to_string()),
        _ => None,
    };
    (pending, drift)
}

fn short(commit: &str) -> &str {
    match commit.char_indices().nth(12) {
        Some((i, _)) if !commit.contains('+') => &commit[..i],
        _ => commit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(commit: &str, head: &str, edited: &[&str], ahead: Option<usize>) -> WorktreeReport {
        WorktreeReport {
            path: "/srv/deployments".into(),
            head: head.into(),
            edited: edited.iter().map(|s| s.to_string()).collect(),
            commit: commit.into(),
            ahead,
        }
    }

    #[test]
    fn drift_in_words() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        assert_eq!(drift(&a, Some(&a), None), (None, None));
        let (p, d) = drift(&a, Some(&b), None);
        assert_eq!(p.as_deref(), Some(b.as_str()));
        assert!(d.unwrap().contains("is not the remote's"));
        // Edits on top of the remote's commit, applied from the working tree.
        let edited = format!("{a}+edits-0123456789ab");
        let w = tree(&edited, &a, &["db/sites/lab1.yaml"], Some(0));
        let (p, d) = drift(&edited, Some(&a), Some(&w));
        assert_eq!(p.as_deref(), Some(a.as_str()));
        let d = d.unwrap();
        assert!(d.starts_with("live state is ahead of the remote"), "{d}");
        assert!(
            d.contains("db/sites/lab1.yaml") && !d.contains("not pushed"),
            "{d}"
        );
        // A local commit, not pushed.
        let w = tree(&b, &b, &[], Some(1));
        let d = drift(&b, Some(&a), Some(&w)).1.unwrap();
        assert!(d.contains("1 local commit(s) not pushed"), "{d}");
        // Pushed: the remote catches up, no drift.
        assert_eq!(drift(&b, Some(&b), Some(&w)), (None, None));
        // The remote moved on while the tree's state is live? Not the tree's doing.
        assert!(
            drift(&a, None, None)
                .1
                .unwrap()
                .contains("could not be read")
        );
    }
}
