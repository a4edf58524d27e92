//! Access control lists with CI-tron's semantics (reference 002, "Access Control Lists"):
//!
//! - two levels: the supervisor's own ACL is evaluated first, the instance ACL only when no
//!   supervisor rule matched;
//! - within a level, `deny` is evaluated before `allow`;
//! - when no rule matched: allow if no rule is set at either level, deny otherwise.
//!
//! A rule matches a user by name (`users`) or by a privilege the user holds (`privileges`),
//! with the same implication as everywhere else: `admin` holds every privilege, so a
//! `deny: {privileges: [submit_jobs]}` rule denies admins too.

use serde::{Deserialize, Serialize};

use crate::{Name, Privilege};

/// One list of matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRules {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<Name>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<Privilege>,
}

impl AclRules {
    fn is_empty(&self) -> bool {
        self.users.is_empty() && self.privileges.is_empty()
    }

    /// The first matcher of this list that matches `who`: by name first, then by privilege.
    fn matching(&self, who: &Subject<'_>) -> Option<Matcher> {
        if let Some(u) = self.users.iter().find(|u| *u == who.user) {
            return Some(Matcher::User(u.clone()));
        }
        self.privileges
            .iter()
            .find(|p| p.granted_by(who.privileges))
            .map(|p| Matcher::Privilege(*p))
    }
}

/// An ACL: deny rules and allow rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    #[serde(default, skip_serializing_if = "AclRules::is_empty")]
    pub deny: AclRules,
    #[serde(default, skip_serializing_if = "AclRules::is_empty")]
    pub allow: AclRules,
}

impl Acl {
    /// True when the ACL sets no rule at all.
    pub fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty()
    }

    fn decide(&self, who: &Subject<'_>) -> Option<(Decision, Matcher)> {
        if let Some(m) = self.deny.matching(who) {
            Some((Decision::Deny, m))
        } else {
            self.allow.matching(who).map(|m| (Decision::Allow, m))
        }
    }
}

/// The user a decision is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user: &'a Name,
    pub privileges: &'a [Privilege],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// Which ACL a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Supervisor,
    Instance,
}

/// What of a rule matched the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// The user's name is in the rule's `users`.
    User(Name),
    /// The user holds (or, as an admin, implies) this privilege of the rule's `privileges`.
    Privilege(Privilege),
}

/// Why [`explain`] decided as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A rule matched: the decision is the rule's (`Deny` for a `deny` rule).
    Rule { level: Level, matcher: Matcher },
    /// No rule at either level: allowed.
    NoRules,
    /// Rules exist but none matched: denied.
    NoRuleMatched,
}

/// A decision with the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub decision: Decision,
    pub reason: Reason,
}

impl std::fmt::Display for Explanation {
    /// E.g. `supervisor deny rule matched user bob`, `instance allow rule matched privilege
    /// submit_jobs`, `no ACL rule matched and rules exist`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            Reason::Rule { level, matcher } => {
                let level = match level {
                    Level::Supervisor => "supervisor",
                    Level::Instance => "instance",
                };
                let rule = match self.decision {
                    Decision::Allow => "allow",
                    Decision::Deny => "deny",
                };
                match matcher {
                    Matcher::User(u) => write!(f, "{level} {rule} rule matched user {u}"),
                    Matcher::Privilege(p) => {
                        write!(f, "{level} {rule} rule matched privilege {p}")
                    }
                }
            }
            Reason::NoRules => f.write_str("no ACL rule is set"),
            Reason::NoRuleMatched => f.write_str("no ACL rule matched and rules exist"),
        }
    }
}

/// Decides whether `who` may use a supervisor whose ACL is `supervisor`, under the instance-level
/// ACL `instance`.
pub fn evaluate(supervisor: &Acl, instance: &Acl, who: Subject<'_>) -> Decision {
    explain(supervisor, instance, who).decision
}

/// [`evaluate`], saying which rule decided (for error messages).
pub fn explain(supervisor: &Acl, instance: &Acl, who: Subject<'_>) -> Explanation {
    let matched = supervisor
        .decide(&who)
        .map(|(d, m)| (d, Level::Supervisor, m))
        .or_else(|| instance.decide(&who).map(|(d, m)| (d, Level::Instance, m)));
    if let Some((decision, level, matcher)) = matched {
        return Explanation {
            decision,
            reason: Reason::Rule { level, matcher },
        };
    }
    if supervisor.is_empty() && instance.is_empty() {
        Explanation {
            decision: Decision::Allow,
            reason: Reason::NoRules,
        }
    } else {
        Explanation {
            decision: Decision::Deny,
            reason: Reason::NoRuleMatched,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::*;

    fn acl(deny: &[&str], allow: &[&str]) -> Acl {
        let rules = |xs: &[&str]| {
            let mut r = AclRules::default();
            for x in xs {
                match x.strip_prefix("priv:") {
                    Some(p) => r.privileges.push(p.parse().unwrap()),
                    None => r.users.push(x.parse().unwrap()),
                }
            }
            r
        };
        Acl {
            deny: rules(deny),
            allow: rules(allow),
        }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn table() {
        let none: (&[&str], &[&str]) = (&[], &[]);
        #[rustfmt::skip]
        let cases: &[(&str, (&[&str], &[&str]), (&[&str], &[&str]), &str, &[Privilege], Decision)] = &[
            // what,                                 supervisor (deny, allow), instance (deny, allow), user, privileges, decision
            ("no rule anywhere: allow",                none,                  none,                   "eve", &[], Allow),
            ("supervisor allow",                       (&[], &["ann"]),       none,                   "ann", &[], Allow),
            ("rule set, none matched: deny",           (&[], &["ann"]),       none,                   "bob", &[], Deny),
            ("instance rule alone makes default deny", none,                  (&[], &["ann"]),        "bob", &[], Deny),
            ("instance allow applies",                 none,                  (&[], &["ann"]),        "ann", &[], Allow),
            ("deny before allow, same level",          (&["ann"], &["ann"]),  none,                   "ann", &[], Deny),
            ("supervisor allow beats instance deny",   (&[], &["ann"]),       (&["ann"], &[]),        "ann", &[], Allow),
            ("supervisor deny beats instance allow",   (&["ann"], &[]),       (&[], &["ann"]),        "ann", &[], Deny),
            ("instance deny when supervisor silent",   (&[], &["bob"]),       (&["ann"], &[]),        "ann", &[], Deny),
            ("deny only: others denied by default",    (&["ann"], &[]),       none,                   "bob", &[], Deny),
            ("allow by privilege",                     (&[], &["priv:admin"]), none,                  "bob", &[Privilege::Admin], Allow),
            ("deny by privilege",                      (&["priv:submit_jobs"], &["bob"]), none,       "bob", &[Privilege::SubmitJobs], Deny),
            ("admin holds every privilege: allow",     (&[], &["priv:submit_jobs"]), none,            "root", &[Privilege::Admin], Allow),
            ("admin holds every privilege: deny",      (&["priv:submit_jobs"], &["root"]), none,      "root", &[Privilege::Admin], Deny),
            ("instance allow by implied privilege",    none,                  (&[], &["priv:list_jobs"]), "root", &[Privilege::Admin], Allow),
            ("a lesser privilege implies no other",    (&[], &["priv:cancel_jobs"]), none,            "bob", &[Privilege::SubmitJobs], Deny),
        ];
        for (what, (sd, sa), (id, ia), user, privs, expect) in cases {
            let user: Name = user.parse().unwrap();
            let who = Subject {
                user: &user,
                privileges: privs,
            };
            assert_eq!(evaluate(&acl(sd, sa), &acl(id, ia), who), *expect, "{what}");
        }
    }

    #[test]
    fn explanations_name_the_rule() {
        let bob: Name = "bob".parse().unwrap();
        let root: Name = "root".parse().unwrap();
        let who = |user, privileges| Subject { user, privileges };
        let cases: &[(Acl, Acl, Subject<'_>, Decision, &str)] = &[
            (
                acl(&["bob"], &[]),
                Acl::default(),
                who(&bob, &[]),
                Deny,
                "supervisor deny rule matched user bob",
            ),
            (
                acl(&[], &["ann"]),
                acl(&["priv:submit_jobs"], &[]),
                who(&root, &[Privilege::Admin]),
                Deny,
                "instance deny rule matched privilege submit_jobs",
            ),
            (
                acl(&[], &["priv:submit_jobs"]),
                Acl::default(),
                who(&bob, &[Privilege::SubmitJobs]),
                Allow,
                "supervisor allow rule matched privilege submit_jobs",
            ),
            (
                Acl::default(),
                acl(&[], &["ann"]),
                who(&bob, &[]),
                Deny,
                "no ACL rule matched and rules exist",
            ),
            (
                Acl::default(),
                Acl::default(),
                who(&bob, &[]),
                Allow,
                "no ACL rule is set",
            ),
        ];
        for (sup, inst, who, decision, text) in cases {
            let e = explain(sup, inst, *who);
            assert_eq!(e.decision, *decision, "{text}");
            assert_eq!(e.to_string(), *text);
        }
    }
}
