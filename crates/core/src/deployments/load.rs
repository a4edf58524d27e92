//! The whole-repo read: `db/switchboard.yaml` and `db/sites/<site>.yaml` → [`DesiredState`],
//! or every error found (schema, unknown keys, syntax of names/tags/MACs/URLs, duplicates
//! across files, references). Pure: the caller hands in the files (from a directory or from a
//! git tree).

use std::collections::HashMap;

use super::decode::{Fields, Reader, join, to_json};
use super::diagnostic::{Diagnostic, Diagnostics, Pos};
use super::schema::*;
use super::yaml::{self, Node};
use crate::acl::{Acl, AclRules};
use crate::{Name, Privilege, SupervisorId, Tag};

/// The switchboard file's path in the repository.
pub const SWITCHBOARD_FILE: &str = "db/switchboard.yaml";
/// Where the site files live.
pub const SITES_DIR: &str = "db/sites/";

/// Whether a repository path is read by [`load`] (callers reading a tree may skip the rest).
pub fn is_db_file(path: &str) -> bool {
    path.starts_with("db/")
}

/// [`load`], unless a reader refused some files under `db/` (links, not regular files, over
/// the size limits, not UTF-8: see [`super::limits`]): then those are the errors, and the rest
/// is not validated (its errors would be judged without the refused files).
pub fn load_read(
    files: &[(String, String)],
    refused: &[Diagnostic],
) -> Result<DesiredState, Diagnostics> {
    if refused.is_empty() {
        load(files)
    } else {
        Err(Diagnostics(refused.to_vec()).sorted())
    }
}

/// A name used somewhere, for the cross-file checks.
struct Use {
    file: String,
    at: Pos,
    field: String,
}

#[derive(Default)]
struct Refs {
    /// ACL user references.
    acl_users: Vec<(Name, Use)>,
    /// Supervisor ids, names, token hashes, MACs: first definition wins, later ones are errors.
    ids: HashMap<SupervisorId, Use>,
    names: HashMap<Name, Use>,
    tokens: HashMap<String, Use>,
    macs: HashMap<String, Use>,
}

/// Reads and validates the whole DB. `files` are `(path in repo, content)`; paths outside
/// `db/` are ignored.
pub fn load(files: &[(String, String)]) -> Result<DesiredState, Diagnostics> {
    let mut errors = Diagnostics::default();
    let mut refs = Refs::default();
    let mut state = DesiredState::default();
    let mut saw_switchboard = false;
    let mut users: HashMap<Name, Use> = HashMap::new();
    let mut sorted: Vec<&(String, String)> = files.iter().filter(|(p, _)| is_db_file(p)).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, text) in sorted {
        let node = match yaml::parse(path, text) {
            Ok(n) => n,
            Err(e) => {
                e.into_iter().for_each(|d| errors.push(d));
                continue;
            }
        };
        let mut r = Reader::new(path);
        if path == SWITCHBOARD_FILE {
            saw_switchboard = true;
            state.switchboard = switchboard(&mut r, &node, &mut refs, &mut users);
        } else if let Some(stem) = path
            .strip_prefix(SITES_DIR)
            .and_then(|f| f.strip_suffix(".yaml"))
            .filter(|s| !s.contains('/'))
        {
            match stem.parse::<Name>() {
                Ok(name) => state.sites.push(site(&mut r, &node, name, &mut refs)),
                Err(_) => r.error(
                    Pos { line: 1, column: 1 },
                    "",
                    format!("`{stem}` is not a valid site name (file name: a-z 0-9 - _ ., starting with a letter or digit)"),
                ),
            }
        } else {
            r.error(
                Pos { line: 1, column: 1 },
                "",
                format!("unexpected file under db/: only {SWITCHBOARD_FILE} and {SITES_DIR}<site>.yaml are read"),
            );
        }
        r.errors.into_iter().for_each(|d| errors.push(d));
    }
    if !saw_switchboard {
        errors.push(Diagnostic::new(
            SWITCHBOARD_FILE,
            Pos { line: 1, column: 1 },
            "",
            "missing: the repository must have db/switchboard.yaml (users, acl, defaults)",
        ));
    }
    for (user, u) in &refs.acl_users {
        if !users.contains_key(user) {
            errors.push(Diagnostic::new(
                &u.file,
                u.at,
                &u.field,
                format!("user `{user}` is not declared in {SWITCHBOARD_FILE}"),
            ));
        }
    }
    if errors.is_empty() {
        state.sites.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(state)
    } else {
        Err(errors.sorted())
    }
}

fn use_at(r: &Reader<'_>, at: Pos, field: &str) -> Use {
    Use {
        file: r.file.to_string(),
        at,
        field: field.to_string(),
    }
}

/// Records a definition that must be unique; a second one is an error pointing at the first.
fn unique<K: std::hash::Hash + Eq + std::fmt::Display + Clone>(
    r: &mut Reader<'_>,
    seen: &mut HashMap<K, Use>,
    key: &K,
    at: Pos,
    field: &str,
    what: &str,
) {
    if let Some(first) = seen.get(key) {
        let message = format!(
            "duplicate {what} `{key}` (first at {}:{}:{})",
            first.file, first.at.line, first.at.column
        );
        r.error(at, field, message);
    } else {
        seen.insert(key.clone(), use_at(r, at, field));
    }
}

fn switchboard(
    r: &mut Reader<'_>,
    node: &Node,
    refs: &mut Refs,
    users: &mut HashMap<Name, Use>,
) -> SwitchboardDb {
    let mut db = SwitchboardDb::default();
    let Some(f) = r.fields(node, "", &["users", "acl", "defaults"]) else {
        return db;
    };
    if let Some(n) = f.get("users") {
        db.users = r.list(n, "users", |r, n, path| {
            let f = r.fields(n, path, &["name", "email", "privileges"])?;
            let name_node = r.required(&f, path, "name")?;
            let field = join(path, "name");
            let name: Name = r.parse(
                name_node,
                &field,
                "a valid user name (a-z 0-9 - _ ., up to 64)",
            )?;
            unique(r, users, &name, name_node.at, &field, "user");
            let email = f.get("email").and_then(|n| {
                let field = join(path, "email");
                let e = r.text(n, &field)?;
                if !valid_email(&e) {
                    r.error(n.at, &field, format!("`{e}` is not an email address"));
                }
                Some(e)
            });
            let privileges = f
                .get("privileges")
                .map(|n| privileges(r, n, &join(path, "privileges")))
                .unwrap_or_default();
            Some(UserSpec {
                name,
                email,
                privileges,
            })
        });
    }
    if let Some(n) = f.get("acl") {
        db.acl = acl(r, n, "acl", refs);
    }
    if let Some(n) = f.get("defaults")
        && let Some(d) = r.fields(
            n,
            "defaults",
            &["queue_timeout_s", "job_timeout_s", "require_audit"],
        )
    {
        db.defaults.require_audit = d.get("require_audit").and_then(|n| {
            r.parse(
                n,
                "defaults.require_audit",
                "none, check or check_and_inventory",
            )
        });
        db.defaults.queue_timeout_s = d
            .get("queue_timeout_s")
            .and_then(|n| r.unsigned(n, "defaults.queue_timeout_s"));
        db.defaults.job_timeout_s = d
            .get("job_timeout_s")
            .and_then(|n| r.unsigned(n, "defaults.job_timeout_s"));
    }
    db
}

fn privileges(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<Privilege> {
    let names = Privilege::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    r.list(node, path, |r, n, p| {
        r.parse(n, p, &format!("a privilege (one of: {names})"))
    })
}

fn acl(r: &mut Reader<'_>, node: &Node, path: &str, refs: &mut Refs) -> Acl {
    let mut acl = Acl::default();
    let Some(f) = r.fields(node, path, &["deny", "allow"]) else {
        return acl;
    };
    for (key, rules) in [("deny", &mut acl.deny), ("allow", &mut acl.allow)] {
        let Some(n) = f.get(key) else { continue };
        let path = join(path, key);
        let Some(rf) = r.fields(n, &path, &["users", "privileges"]) else {
            continue;
        };
        let mut out = AclRules::default();
        if let Some(u) = rf.get("users") {
            let upath = join(&path, "users");
            out.users = r.list(u, &upath, |r, n, p| {
                let name: Name = r.parse(n, p, "a valid user name")?;
                refs.acl_users.push((name.clone(), use_at(r, n.at, p)));
                Some(name)
            });
        }
        if let Some(p) = rf.get("privileges") {
            out.privileges = privileges(r, p, &join(&path, "privileges"));
        }
        *rules = out;
    }
    acl
}

fn site(r: &mut Reader<'_>, node: &Node, name: Name, refs: &mut Refs) -> Site {
    let mut site = Site {
        name,
        image_stores: vec![],
        pdus: vec![],
        supervisors: vec![],
        require_audit: None,
    };
    let Some(f) = r.fields(
        node,
        "",
        &["image_stores", "pdus", "supervisors", "require_audit"],
    ) else {
        return site;
    };
    site.require_audit = f
        .get("require_audit")
        .and_then(|n| r.parse(n, "require_audit", "none, check or check_and_inventory"));
    if let Some(n) = f.get("image_stores") {
        site.image_stores = r.list(n, "image_stores", |r, n, p| {
            let url = r.text(n, p)?;
            if let Err(e) = crate::transport::require_plain(&url) {
                r.error(n.at, p, e.to_string());
                return None;
            }
            if let Err(why) = check_url(&url) {
                r.error(n.at, p, format!("`{url}` is not an http(s) URL: {why}"));
                return None;
            }
            Some(url.trim_end_matches('/').to_string())
        });
    }
    // PDU name → (position, ports used: port → first use).
    let mut pdus: HashMap<Name, Use> = HashMap::new();
    if let Some(n) = f.get("pdus") {
        site.pdus = r.list(n, "pdus", |r, n, p| {
            let f = r.fields(n, p, &["name", "driver", "config", "comment"])?;
            let name_node = r.required(&f, p, "name");
            let driver_node = r.required(&f, p, "driver");
            let field = join(p, "name");
            let name: Name = r.parse(name_node?, &field, "a valid PDU name")?;
            unique(r, &mut pdus, &name, name_node?.at, &field, "PDU");
            let driver: Name = r.parse(driver_node?, &join(p, "driver"), "a driver name")?;
            let config = f
                .get("config")
                .map(to_json)
                .unwrap_or(serde_json::Value::Null);
            if !(config.is_object() || config.is_null()) {
                r.error(
                    f.get("config").map(|n| n.at).unwrap_or(f.at),
                    &join(p, "config"),
                    "expected a mapping of the driver's settings",
                );
            }
            let comment = f
                .get("comment")
                .and_then(|n| r.text(n, &join(p, "comment")));
            Some(PduSpec {
                name,
                driver,
                config,
                comment,
            })
        });
    }
    let mut ports: HashMap<(Name, String), Use> = HashMap::new();
    if let Some(n) = f.get("supervisors") {
        site.supervisors = r.list(n, "supervisors", |r, n, p| {
            supervisor(r, n, p, refs, &pdus, &mut ports)
        });
    }
    site
}

const SUPERVISOR_FIELDS: &[&str] = &[
    "id",
    "name",
    "kind",
    "tags",
    "pdu",
    "pdu_port",
    "retired",
    "ready_for_service",
    "acl",
    "comment",
    "token_sha256",
    "mac",
];

fn supervisor(
    r: &mut Reader<'_>,
    n: &Node,
    p: &str,
    refs: &mut Refs,
    pdus: &HashMap<Name, Use>,
    ports: &mut HashMap<(Name, String), Use>,
) -> Option<SupervisorSpec> {
    let f: Fields<'_> = r.fields(n, p, SUPERVISOR_FIELDS)?;
    let id_node = r.required(&f, p, "id");
    let name_node = r.required(&f, p, "name");
    let kind_node = r.required(&f, p, "kind");
    let id = id_node.and_then(|n| {
        let field = join(p, "id");
        let id: SupervisorId = r.parse(
            n,
            &field,
            "a UUID (`paddock supervisor token new` prints one)",
        )?;
        unique(r, &mut refs.ids, &id, n.at, &field, "supervisor id");
        Some(id)
    });
    let name = name_node.and_then(|n| {
        let field = join(p, "name");
        let name: Name = r.parse(
            n,
            &field,
            "a valid supervisor name (a-z 0-9 - _ ., up to 64)",
        )?;
        unique(r, &mut refs.names, &name, n.at, &field, "supervisor name");
        Some(name)
    });
    let kinds = HostKind::ALL.map(|(k, _)| k).join(", ");
    let kind = kind_node.and_then(|n| {
        let field = join(p, "kind");
        let text = r.text(n, &field)?;
        let k = HostKind::ALL
            .iter()
            .find(|(k, _)| *k == text)
            .map(|(_, v)| *v);
        if k.is_none() {
            r.error(
                n.at,
                &field,
                format!("`{text}` is not a host kind (one of: {kinds})"),
            );
        }
        k
    });
    let tags = f
        .get("tags")
        .map(|n| {
            r.list(n, &join(p, "tags"), |r, n, p| {
                r.parse::<Tag>(
                    n,
                    p,
                    "a tag (letters, digits, - _ . / = + parts separated by `:`)",
                )
            })
        })
        .unwrap_or_default();
    let pdu = f.get("pdu").and_then(|n| {
        let field = join(p, "pdu");
        let name: Name = r.parse(n, &field, "a PDU name")?;
        if !pdus.contains_key(&name) {
            r.error(
                n.at,
                &field,
                format!("PDU `{name}` is not declared in this site's `pdus`"),
            );
        }
        Some(name)
    });
    let pdu_port = f
        .get("pdu_port")
        .and_then(|n| r.text(n, &join(p, "pdu_port")));
    match (&pdu, &pdu_port) {
        (Some(pdu), Some(port)) => {
            let at = f.get("pdu_port").map(|n| n.at).unwrap_or(f.at);
            let key = (pdu.clone(), port.clone());
            let field = join(p, "pdu_port");
            if let Some(first) = ports.get(&key) {
                let message = format!(
                    "port `{port}` of PDU `{pdu}` is already used (at {}:{}:{})",
                    first.file, first.at.line, first.at.column
                );
                r.error(at, &field, message);
            } else {
                ports.insert(key, use_at(r, at, &field));
            }
        }
        (Some(_), None) => r.error(
            f.at,
            &join(p, "pdu_port"),
            "`pdu` is set without `pdu_port`",
        ),
        (None, Some(_)) => r.error(f.at, &join(p, "pdu"), "`pdu_port` is set without `pdu`"),
        (None, None) => {}
    }
    let retired = f
        .get("retired")
        .and_then(|n| r.boolean(n, &join(p, "retired")))
        .unwrap_or(false);
    let ready_for_service = f
        .get("ready_for_service")
        .and_then(|n| r.boolean(n, &join(p, "ready_for_service")))
        .unwrap_or(true);
    let acl = f
        .get("acl")
        .map(|n| acl(r, n, &join(p, "acl"), refs))
        .unwrap_or_default();
    let comment = f
        .get("comment")
        .and_then(|n| r.text(n, &join(p, "comment")));
    let token_sha256 = f.get("token_sha256").and_then(|n| {
        let field = join(p, "token_sha256");
        let t = r.text(n, &field)?;
        if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            r.error(n.at, &field, "expected 64 lower-case hex digits: the sha256 of the token (`paddock supervisor token new` prints both); never the token itself");
            return None;
        }
        unique(r, &mut refs.tokens, &t, n.at, &field, "token hash");
        Some(t)
    });
    let mac = f.get("mac").and_then(|n| {
        let field = join(p, "mac");
        let m = r.text(n, &field)?.to_ascii_lowercase();
        if !valid_mac(&m) {
            r.error(
                n.at,
                &field,
                format!("`{m}` is not a MAC address (six hex pairs separated by `:`)"),
            );
            return None;
        }
        unique(r, &mut refs.macs, &m, n.at, &field, "MAC address");
        Some(m)
    });
    Some(SupervisorSpec {
        id: id?,
        name: name?,
        kind: kind?,
        tags,
        pdu,
        pdu_port,
        retired,
        ready_for_service,
        acl,
        comment,
        token_sha256,
        mac,
    })
}

fn valid_email(e: &str) -> bool {
    let Some((user, host)) = e.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace())
}

fn valid_mac(m: &str) -> bool {
    let parts: Vec<&str> = m.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `http://host[:port][/path]` or `https://…`, no spaces, no credentials.
fn check_url(u: &str) -> Result<(), &'static str> {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .ok_or("it must start with http:// or https://")?;
    let host_port = rest.split('/').next().unwrap_or("");
    if host_port.is_empty() {
        return Err("no host");
    }
    if host_port.contains('@') {
        return Err("no credentials in URLs (git holds no secrets)");
    }
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("spaces are not allowed");
    }
    if let Some((_, port)) = host_port.rsplit_once(':')
        && !host_port.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err("the port is not a number from 1 to 65535");
    }
    Ok(())
}
