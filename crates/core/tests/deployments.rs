//! The deployments DB read whole: the shipped example passes; every kind of error is reported
//! at its file:line:column with its field, all of them in one run.

use paddock_core::deployments::{HostKind, load};

fn example() -> Vec<(String, String)> {
    vec![
        (
            "db/switchboard.yaml".into(),
            include_str!("../../../examples/deployments/db/switchboard.yaml").into(),
        ),
        (
            "db/sites/lab1.yaml".into(),
            include_str!("../../../examples/deployments/db/sites/lab1.yaml").into(),
        ),
        ("hosts/README.md".into(), "not read".into()),
    ]
}

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    load(&files)
        .expect_err("expected errors")
        .0
        .iter()
        .map(|d| d.to_string())
        .collect()
}

const USERS: &str = "users:\n  - name: alice\n    privileges: [admin]\n";

#[test]
fn the_shipped_example_is_valid() {
    let state = load(&example()).unwrap();
    assert_eq!(state.switchboard.users.len(), 3);
    assert_eq!(state.switchboard.defaults.job_timeout_s, Some(3600));
    assert_eq!(state.sites.len(), 1);
    let site = &state.sites[0];
    assert_eq!(site.name.as_str(), "lab1");
    assert_eq!(site.image_stores, vec!["http://127.0.0.1:8081"]);
    assert_eq!(site.supervisors.len(), 3);
    let nrf = &site.supervisors[2];
    assert_eq!(nrf.kind, HostKind::Netboot);
    assert_eq!(nrf.pdu_port.as_deref(), Some("3"));
    assert!(!nrf.ready_for_service);
    assert!(site.supervisors[0].ready_for_service);
    assert_eq!(site.pdus[0].config["on"], "true");
    // The state travels to the switchboard as JSON and comes back the same.
    let json = serde_json::to_string(&state).unwrap();
    assert_eq!(
        serde_json::from_str::<paddock_core::deployments::DesiredState>(&json).unwrap(),
        state
    );
}

#[test]
fn schema_errors_name_file_line_column_and_field() {
    let site = "\
supervisors:
  - id: 0192f3a0-0000-7000-8000-00000000000a
    name: Bad Name
    kind: vm
    tags: ['has space']
    retired: 'yes'
    colour: red
  - name: ok
    kind: local
";
    let e = errors(&[("db/switchboard.yaml", USERS), ("db/sites/s1.yaml", site)]);
    assert_eq!(
        e,
        vec![
            "db/sites/s1.yaml:3:11: supervisors[0].name: `Bad Name` is not a valid supervisor name (a-z 0-9 - _ ., up to 64)",
            "db/sites/s1.yaml:4:11: supervisors[0].kind: `vm` is not a host kind (one of: local, qemu, netboot)",
            "db/sites/s1.yaml:5:12: supervisors[0].tags[0]: `has space` is not a tag (letters, digits, - _ . / = + parts separated by `:`)",
            "db/sites/s1.yaml:6:14: supervisors[0].retired: expected true or false (unquoted)",
            "db/sites/s1.yaml:7:5: supervisors[0].colour: unknown field `colour`; expected one of: id, name, kind, tags, pdu, pdu_port, retired, ready_for_service, acl, comment, token_sha256, mac",
            "db/sites/s1.yaml:8:5: supervisors[1].id: missing field `id`",
        ]
    );
}

#[test]
fn duplicates_and_references_are_checked_across_files() {
    let a = "\
pdus:
  - name: p1
    driver: shell
supervisors:
  - id: 0192f3a0-0000-7000-8000-000000000001
    name: one
    kind: local
    pdu: p1
    pdu_port: 1
    mac: 52:54:00:AA:BB:CC
  - id: 0192f3a0-0000-7000-8000-000000000002
    name: two
    kind: local
    pdu: p1
    pdu_port: 1
  - id: 0192f3a0-0000-7000-8000-000000000003
    name: three
    kind: local
    pdu: p2
    pdu_port: 4
    acl:
      allow:
        users: [alice, bob]
";
    let b = "\
image_stores: [ftp://x, 'http://h:99999', http://127.0.0.1:8081/, https://s]
supervisors:
  - id: 0192f3a0-0000-7000-8000-000000000001
    name: one
    kind: qemu
    mac: 52:54:00:aa:bb:cc
    token_sha256: not-a-hash
";
    let e = errors(&[
        ("db/switchboard.yaml", USERS),
        ("db/sites/a.yaml", a),
        ("db/sites/b.yaml", b),
    ]);
    assert_eq!(
        e,
        vec![
            "db/sites/a.yaml:15:15: supervisors[1].pdu_port: port `1` of PDU `p1` is already used (at db/sites/a.yaml:9:15)",
            "db/sites/a.yaml:19:10: supervisors[2].pdu: PDU `p2` is not declared in this site's `pdus`",
            "db/sites/a.yaml:23:24: supervisors[2].acl.allow.users[1]: user `bob` is not declared in db/switchboard.yaml",
            "db/sites/b.yaml:1:16: image_stores[0]: `ftp://x` is not an http(s) URL: it must start with http:// or https://",
            "db/sites/b.yaml:1:25: image_stores[1]: `http://h:99999` is not an http(s) URL: the port is not a number from 1 to 65535",
            "db/sites/b.yaml:1:67: image_stores[3]: \"https://s\": https:// and wss:// are not supported by this build (no TLS yet); use http:// or ws:// over a network you trust, or a TLS-terminating proxy on this host",
            "db/sites/b.yaml:3:9: supervisors[0].id: duplicate supervisor id `0192f3a0-0000-7000-8000-000000000001` (first at db/sites/a.yaml:5:9)",
            "db/sites/b.yaml:4:11: supervisors[0].name: duplicate supervisor name `one` (first at db/sites/a.yaml:6:11)",
            "db/sites/b.yaml:6:10: supervisors[0].mac: duplicate MAC address `52:54:00:aa:bb:cc` (first at db/sites/a.yaml:10:10)",
            "db/sites/b.yaml:7:19: supervisors[0].token_sha256: expected 64 lower-case hex digits: the sha256 of the token (`paddock supervisor token new` prints both); never the token itself",
        ]
    );
}

#[test]
fn file_level_errors() {
    // No switchboard file, a site file name that is not a name, a stray file, bad YAML.
    let e = errors(&[
        ("db/sites/Bad Site.yaml", "supervisors: []\n"),
        ("db/site/typo.yaml", "x: 1\n"),
        ("db/sites/ok.yaml", "supervisors: [\n"),
    ]);
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(
        e[0].starts_with("db/site/typo.yaml:1:1: unexpected file under db/"),
        "{e:#?}"
    );
    assert!(e[1].starts_with("db/sites/Bad Site.yaml:1:1: `Bad Site` is not a valid site name"));
    assert!(e[2].starts_with("db/sites/ok.yaml:2:1: "), "{e:#?}");
    assert!(e[3].starts_with("db/switchboard.yaml:1:1: missing"));
    // Users: duplicates, unknown privileges, bad emails.
    let e = errors(&[(
        "db/switchboard.yaml",
        "users:\n  - name: a\n    email: nobody\n  - name: a\n    privileges: [root]\n",
    )]);
    assert_eq!(
        e,
        vec![
            "db/switchboard.yaml:3:12: users[0].email: `nobody` is not an email address",
            "db/switchboard.yaml:4:11: users[1].name: duplicate user `a` (first at db/switchboard.yaml:2:11)",
            "db/switchboard.yaml:5:18: users[1].privileges[0]: `root` is not a privilege (one of: admin, submit_jobs, list_jobs, cancel_jobs, manage_supervisors, list_supervisors, console_input)",
        ]
    );
}

/// Issue 15 item 8: `defaults.require_audit` and a site's `require_audit` are read; a bad
/// value is reported at its place.
#[test]
fn require_audit_is_read_and_checked() {
    use paddock_core::deployments::RequireAudit;
    let files: Vec<(String, String)> = vec![
        (
            "db/switchboard.yaml".into(),
            format!("{USERS}defaults:\n  require_audit: check_and_inventory\n"),
        ),
        ("db/sites/lab9.yaml".into(), "require_audit: check\n".into()),
    ];
    let state = load(&files).unwrap();
    assert_eq!(
        state.switchboard.defaults.require_audit,
        Some(RequireAudit::CheckAndInventory)
    );
    assert_eq!(state.sites[0].require_audit, Some(RequireAudit::Check));
    let e = errors(&[
        (
            "db/switchboard.yaml",
            &format!("{USERS}defaults:\n  require_audit: always\n"),
        ),
        ("db/sites/lab9.yaml", "require_audit: yes\n"),
    ]);
    assert_eq!(
        e,
        [
            "db/sites/lab9.yaml:1:16: require_audit: `yes` is not none, check or check_and_inventory",
            "db/switchboard.yaml:5:18: defaults.require_audit: `always` is not none, check or check_and_inventory",
        ],
        "{e:#?}"
    );
}
