//! `paddock deploy validate` and `paddock supervisor token new`, as the real binary runs them.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

const PADDOCK: &str = env!("CARGO_BIN_EXE_paddock");

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deployments")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn the_example_validates_and_a_broken_copy_lists_every_error() {
    let ok = Command::new(PADDOCK)
        .args(["deploy", "validate"])
        .arg(examples())
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stderr).contains("valid: 3 users, 1 sites"));

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken");
    copy_dir(&examples(), &broken);
    let site = broken.join("db/sites/lab1.yaml");
    let mut text = std::fs::read_to_string(&site).unwrap();
    // A typo in a key, and a supervisor plugged into a PDU port already in use.
    text = text.replacen(
        "    tags: [arch:x86_64, os:linux, site:lab1]\n    comment:",
        "    tgas: [arch:x86_64]\n    comment:",
        1,
    );
    text.push_str("  - id: 0192f3a0-0000-7000-8000-0000000000ff\n    name: extra\n    kind: local\n    pdu: rack1-pdu\n    pdu_port: 3\n");
    std::fs::write(&site, text).unwrap();
    std::fs::write(broken.join("db/switchboard.yaml.orig"), "x").unwrap();

    let out = Command::new(PADDOCK)
        .args(["deploy", "validate"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            "db/sites/lab1.yaml:17:5: supervisors[0].tgas: unknown field `tgas` (did you mean `tags`?); expected one of: id, name, kind, tags, pdu, pdu_port, retired, ready_for_service, acl, comment, token_sha256, mac",
            "db/sites/lab1.yaml:41:15: supervisors[3].pdu_port: port `3` of PDU `rack1-pdu` is already used (at db/sites/lab1.yaml:30:15)",
            "db/switchboard.yaml.orig:1:1: unexpected file under db/: only db/switchboard.yaml and db/sites/<site>.yaml are read",
        ]
    );

    // --json: the same errors, with their parts.
    let out = Command::new(PADDOCK)
        .args(["deploy", "validate", "--json"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"][1]["line"], 41);
    assert_eq!(v["errors"][1]["column"], 15);
    assert_eq!(v["errors"][1]["field"], "supervisors[3].pdu_port");

    // Not a deployments repo at all.
    let out = Command::new(PADDOCK)
        .args(["deploy", "validate"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no db/ directory"));
}

#[test]
fn token_new_prints_the_hash_for_git_and_the_token_alone() {
    let out = Command::new(PADDOCK)
        .args(["supervisor", "token", "new"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim();
    assert!(token.starts_with("pds_") && token.len() == 68, "{token}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hash = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("token_sha256: "))
        .unwrap();
    assert_eq!(hash, paddock_switchboard::auth::hash_token(token));
    assert!(
        !stderr.contains(token),
        "the token is printed once, on stdout"
    );
}
