//! The pure half of applying a deployment: what is live (as a [`DesiredState`] built from the
//! switchboard's rows) and what the repo wants → the list of changes. Applying is the
//! switchboard's job (one transaction); planning has no I/O, so it is tested on its own and
//! timed on large fleets.
//!
//! Rules: users and supervisors are matched by name and id; a supervisor that leaves the repo
//! is retired (never deleted: jobs refer to it), a user that leaves it loses its privileges.
//! Applying the same state twice gives an empty plan.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::schema::*;
use crate::acl::Acl;
use crate::{Name, SupervisorId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    AddUser {
        user: UserSpec,
    },
    UpdateUser {
        user: UserSpec,
        fields: Vec<String>,
    },
    /// The user left the repo: it keeps its history, loses its privileges.
    RemoveUser {
        name: Name,
    },
    SetInstanceAcl {
        acl: Acl,
    },
    SetDefaults {
        defaults: Defaults,
    },
    SetSiteStores {
        site: Name,
        image_stores: Vec<String>,
    },
    SetSiteRequireAudit {
        site: Name,
        require_audit: Option<crate::deployments::RequireAudit>,
    },
    AddSupervisor {
        site: Name,
        supervisor: SupervisorSpec,
    },
    UpdateSupervisor {
        site: Name,
        supervisor: SupervisorSpec,
        fields: Vec<String>,
    },
    /// The supervisor left the repo: retired (a running job finishes; nothing new is
    /// scheduled on it).
    RetireSupervisor {
        id: SupervisorId,
        name: Name,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddUser { user } => write!(f, "+ user {}", user.name),
            Change::UpdateUser { user, fields } => {
                write!(f, "~ user {} ({})", user.name, fields.join(", "))
            }
            Change::RemoveUser { name } => write!(f, "- user {name} (privileges removed)"),
            Change::SetInstanceAcl { .. } => write!(f, "~ instance acl"),
            Change::SetDefaults { .. } => write!(f, "~ defaults"),
            Change::SetSiteStores { site, .. } => write!(f, "~ site {site} image_stores"),
            Change::SetSiteRequireAudit { site, .. } => write!(f, "~ site {site} require_audit"),
            Change::AddSupervisor { site, supervisor } => {
                write!(
                    f,
                    "+ supervisor {site}/{} ({})",
                    supervisor.name, supervisor.id
                )
            }
            Change::UpdateSupervisor {
                site,
                supervisor,
                fields,
            } => write!(
                f,
                "~ supervisor {site}/{} ({})",
                supervisor.name,
                fields.join(", ")
            ),
            Change::RetireSupervisor { id, name } => {
                write!(
                    f,
                    "- supervisor {name} ({id}) retired: no longer in the repo"
                )
            }
        }
    }
}

/// The changes that turn `live` into `desired`, in a stable order: users, instance settings,
/// then sites and supervisors by name.
pub fn plan(live: &DesiredState, desired: &DesiredState) -> Vec<Change> {
    let mut out = Vec::new();
    let old_users: HashMap<&Name, &UserSpec> = live
        .switchboard
        .users
        .iter()
        .map(|u| (&u.name, u))
        .collect();
    for u in &desired.switchboard.users {
        match old_users.get(&u.name) {
            None => out.push(Change::AddUser { user: u.clone() }),
            Some(old) => {
                let mut fields = vec![];
                if old.email != u.email {
                    fields.push("email".to_string());
                }
                if sorted(&old.privileges) != sorted(&u.privileges) {
                    fields.push("privileges".to_string());
                }
                if !fields.is_empty() {
                    out.push(Change::UpdateUser {
                        user: u.clone(),
                        fields,
                    });
                }
            }
        }
    }
    let new_users: HashMap<&Name, ()> = desired
        .switchboard
        .users
        .iter()
        .map(|u| (&u.name, ()))
        .collect();
    for u in &live.switchboard.users {
        if !new_users.contains_key(&u.name) && !u.privileges.is_empty() {
            out.push(Change::RemoveUser {
                name: u.name.clone(),
            });
        }
    }
    if live.switchboard.acl != desired.switchboard.acl {
        out.push(Change::SetInstanceAcl {
            acl: desired.switchboard.acl.clone(),
        });
    }
    if live.switchboard.defaults != desired.switchboard.defaults {
        out.push(Change::SetDefaults {
            defaults: desired.switchboard.defaults.clone(),
        });
    }

    let old_sites: HashMap<&Name, &Site> = live.sites.iter().map(|s| (&s.name, s)).collect();
    let old_sups: HashMap<SupervisorId, (&Name, &SupervisorSpec)> = live
        .sites
        .iter()
        .flat_map(|s| s.supervisors.iter().map(move |v| (v.id, (&s.name, v))))
        .collect();
    let mut kept: HashMap<SupervisorId, ()> = HashMap::new();
    for site in &desired.sites {
        let old_stores = old_sites.get(&site.name).map(|s| &s.image_stores);
        if old_stores.unwrap_or(&Vec::new()) != &site.image_stores {
            out.push(Change::SetSiteStores {
                site: site.name.clone(),
                image_stores: site.image_stores.clone(),
            });
        }
        let old_gate = old_sites.get(&site.name).and_then(|s| s.require_audit);
        if old_gate != site.require_audit {
            out.push(Change::SetSiteRequireAudit {
                site: site.name.clone(),
                require_audit: site.require_audit,
            });
        }
        for sup in &site.supervisors {
            kept.insert(sup.id, ());
            match old_sups.get(&sup.id) {
                None => out.push(Change::AddSupervisor {
                    site: site.name.clone(),
                    supervisor: sup.clone(),
                }),
                Some((old_site, old)) => {
                    let fields = supervisor_diff(old_site, old, &site.name, sup);
                    if !fields.is_empty() {
                        out.push(Change::UpdateSupervisor {
                            site: site.name.clone(),
                            supervisor: sup.clone(),
                            fields,
                        });
                    }
                }
            }
        }
    }
    let mut gone: Vec<&SupervisorSpec> = old_sups
        .values()
        .filter(|(_, s)| !kept.contains_key(&s.id) && !s.retired)
        .map(|(_, s)| *s)
        .collect();
    gone.sort_by(|a, b| a.name.cmp(&b.name));
    for s in gone {
        out.push(Change::RetireSupervisor {
            id: s.id,
            name: s.name.clone(),
        });
    }
    out
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn supervisor_diff(
    old_site: &Name,
    old: &SupervisorSpec,
    site: &Name,
    new: &SupervisorSpec,
) -> Vec<String> {
    let mut f = vec![];
    let mut check = |name: &str, changed: bool| {
        if changed {
            f.push(name.to_string());
        }
    };
    check("site", old_site != site);
    check("name", old.name != new.name);
    check("kind", old.kind != new.kind);
    check("tags", sorted(&old.tags) != sorted(&new.tags));
    check("pdu", old.pdu != new.pdu || old.pdu_port != new.pdu_port);
    check("retired", old.retired != new.retired);
    check(
        "ready_for_service",
        old.ready_for_service != new.ready_for_service,
    );
    check("acl", old.acl != new.acl);
    check("comment", old.comment != new.comment);
    check("token_sha256", old.token_sha256 != new.token_sha256);
    check("mac", old.mac != new.mac);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sup(id: u128, name: &str) -> SupervisorSpec {
        SupervisorSpec {
            id: SupervisorId::from(uuid::Uuid::from_u128(id)),
            name: name.parse().unwrap(),
            kind: HostKind::Local,
            tags: vec!["a".parse().unwrap()],
            pdu: None,
            pdu_port: None,
            retired: false,
            ready_for_service: true,
            acl: Acl::default(),
            comment: None,
            token_sha256: None,
            mac: None,
        }
    }

    fn state(sups: Vec<SupervisorSpec>, users: &[&str]) -> DesiredState {
        DesiredState {
            switchboard: SwitchboardDb {
                users: users
                    .iter()
                    .map(|u| UserSpec {
                        name: u.parse().unwrap(),
                        email: None,
                        privileges: vec![crate::Privilege::SubmitJobs],
                    })
                    .collect(),
                ..Default::default()
            },
            sites: vec![Site {
                name: "s".parse().unwrap(),
                require_audit: None,
                image_stores: vec![],
                pdus: vec![],
                supervisors: sups,
            }],
        }
    }

    #[test]
    fn same_state_plans_nothing() {
        let s = state(vec![sup(1, "a"), sup(2, "b")], &["u"]);
        assert_eq!(plan(&s, &s), vec![]);
    }

    #[test]
    fn adds_changes_and_retirements() {
        let old = state(vec![sup(1, "a"), sup(2, "b")], &["u", "gone"]);
        let mut changed = sup(1, "a");
        changed.tags.push("b".parse().unwrap());
        changed.retired = true;
        let new = state(vec![changed, sup(3, "c")], &["u", "v"]);
        let lines: Vec<String> = plan(&old, &new).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            vec![
                "+ user v",
                "- user gone (privileges removed)",
                "~ supervisor s/a (tags, retired)",
                "+ supervisor s/c (00000000-0000-0000-0000-000000000003)",
                "- supervisor b (00000000-0000-0000-0000-000000000002) retired: no longer in the repo",
            ]
        );
        // Applied, the new state plans nothing more; a retired one is not retired twice.
        assert_eq!(plan(&new, &new), vec![]);
    }
}
