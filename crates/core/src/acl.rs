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

    fn matches(&self, who: &Subject<'_>) -> bool {
        self.users.iter().any(|u| u == who.user)
            || self.privileges.iter().any(|p| p.granted_by(who.privileges))
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

    fn decide(&self, who: &Subject<'_>) -> Option<Decision> {
        if self.deny.matches(who) {
            Some(Decision::Deny)
        } else if self.allow.matches(who) {
            Some(Decision::Allow)
        } else {
            None
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

/// Decides whether `who` may use a supervisor whose ACL is `supervisor`, under the instance-level
/// ACL `instance`.
pub fn evaluate(supervisor: &Acl, instance: &Acl, who: Subject<'_>) -> Decision {
    if let Some(d) = supervisor.decide(&who).or_else(|| instance.decide(&who)) {
        return d;
    }
    if supervisor.is_empty() && instance.is_empty() {
        Decision::Allow
    } else {
        Decision::Deny
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
}
