//! `paddock deploy validate` and `paddock supervisor token new`, as the real binary runs them.

#![allow(clippy::unwrap_used)]

mod shell;

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
            "db/sites/lab1.yaml:43:15: supervisors[3].pdu_port: port `3` of PDU `rack1-pdu` is already used (at db/sites/lab1.yaml:32:15)",
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
    assert_eq!(v["errors"][1]["line"], 43);
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

/// Issue 14: `validate` refuses a symbolic link under `db/` with its location and never
/// reads what it points at (it once printed a YAML error quoting /etc/passwd); a link to a
/// directory is refused the same way.
#[test]
fn validate_refuses_symlinks_under_db_without_following_them() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_dir(&examples(), &repo);
    std::os::unix::fs::symlink("/etc/passwd", repo.join("db/sites/x.yaml")).unwrap();
    std::os::unix::fs::symlink("/etc", repo.join("db/sites/etc")).unwrap();
    let out = Command::new(PADDOCK)
        .args(["deploy", "validate"])
        .arg(&repo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        vec![
            "db/sites/etc:1:1: a symbolic link; the deployments DB takes regular files only",
            "db/sites/x.yaml:1:1: a symbolic link; the deployments DB takes regular files only",
        ],
        "{out:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("root:"));
}

/// Issue 15: `validate` refuses a file over the per-file limit by its size, before reading it
/// (a sparse 50 MB file here), with its location.
#[test]
fn validate_refuses_an_oversized_file_by_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_dir(&examples(), &repo);
    let big = std::fs::File::create(repo.join("db/sites/big.yaml")).unwrap();
    big.set_len(52_428_800).unwrap();
    let out = Command::new(PADDOCK)
        .args(["deploy", "validate"])
        .arg(&repo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "db/sites/big.yaml:1:1: 52428800 bytes, over the 4 MiB limit of one file\n"
    );
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

/// Issue 5's acceptance walk-through, as written, with the real binaries and a real bare repo.
#[test]
fn acceptance_walkthrough_with_paddock_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = shell::free_port();
    let script = format!(
        r#"
set -e
PORT={port}
EX={ex}
G="git -c user.name=t -c user.email=t@example.org"
wait_for() {{ for i in $(seq 150); do if eval "$1"; then return 0; fi; sleep 0.1; done; echo "timed out: $1" >&2; return 1; }}

paddock deploy validate $EX
cp -r $EX BROKEN && sed -i 's/kind: netboot/kind: netbot/' BROKEN/db/sites/lab1.yaml
if paddock deploy validate BROKEN > broken.out; then exit 1; fi

git init -q --bare -b main R.git
mkdir W && cp -r $EX/. W/ && cd W && git init -q -b main && git add -A && $G commit -qm init && git push -q ../R.git main && cd ..
paddock up --data-dir D --listen 127.0.0.1:$PORT --deployments R.git > up.out 2> up.err &
echo $! > up.pid
wait_for "grep -q '^PADDOCK_TOKEN=' up.out"
export $(cat up.out)
wait_for "paddock supervisor list --json | grep -q lab1-nrf52"
paddock supervisor list --json > sups1.json

cd W
printf '  - id: 0192f3a0-0000-7000-8000-000000000004\n    name: lab1-local-3\n    kind: local\n' >> db/sites/lab1.yaml
$G commit -qam add && git push -q ../R.git main && cd ..
wait_for "paddock supervisor list --json | grep -q lab1-local-3"

cd W && sed -i 's/kind: netboot/kind: netbot/' db/sites/lab1.yaml && $G commit -qam typo && git push -q ../R.git main && cd ..
wait_for "paddock deploy status --json | grep -q netbot"
wait_for "paddock deploy status --json | grep -q '\"pending\": \"'"
paddock deploy status --json > status1.json
paddock supervisor list --json > sups2.json

cd W && sed -i 's/kind: netbot/kind: netboot/' db/sites/lab1.yaml && $G commit -qam fix && git push -q ../R.git main && cd ..
wait_for "paddock deploy status --json | grep -q '\"last_error\": null'"
wait_for "paddock deploy status | grep -q 'drift:       none'"
paddock deploy status --json > status2.json
paddock deploy status > status2.txt

kill -INT $(cat up.pid)
for i in $(seq 200); do kill -0 $(cat up.pid) 2>/dev/null || break; sleep 0.1; done
"#,
        ex = examples().display(),
    );
    let out = shell::run(dir.path(), &script);
    let up_err = std::fs::read_to_string(dir.path().join("up.err")).unwrap_or_default();
    assert!(out.status.success(), "{out:?}\n--- paddock up\n{up_err}");
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let json = |f: &str| -> serde_json::Value { serde_json::from_str(&read(f)).unwrap() };
    assert!(
        read("broken.out").starts_with("db/sites/lab1.yaml:29:11: supervisors[2].kind: `netbot`")
    );
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["supervisors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let first = names(&json("sups1.json"));
    for n in [
        "lab1-local-1",
        "lab1-local-2",
        "lab1-nrf52",
        "local-1",
        "local-2",
    ] {
        assert!(first.contains(&n.to_string()), "{first:?}");
    }
    let status = json("status1.json");
    assert_eq!(status["generation"], 2, "{status}");
    assert_eq!(
        status["last_error"]["errors"][0],
        "db/sites/lab1.yaml:29:11: supervisors[2].kind: `netbot` is not a host kind (one of: local, qemu, netboot)"
    );
    // The daemon's report: the rejected commit is the remote's, pending, not live.
    let report = &status["report"];
    assert_eq!(report["pending"], report["remote_commit"], "{report}");
    assert!(
        report["drift"]
            .as_str()
            .unwrap()
            .contains("is not the remote's"),
        "{report}"
    );
    // The rejected commit changed nothing.
    let during = names(&json("sups2.json"));
    assert!(during.contains(&"lab1-local-3".to_string()));
    assert_eq!(during.len(), 6, "{during:?}");
    let status = json("status2.json");
    assert_eq!(status["generation"], 3, "{status}");
    assert!(read("status2.txt").contains("last error:  none"));
    assert!(read("status2.txt").contains("pending:     none"));
    assert!(status["report"]["drift"].is_null(), "{status}");
}

#[test]
fn paddock_deploy_check_config_reads_the_file_and_its_secrets() {
    const DEPLOY: &str = env!("CARGO_BIN_EXE_paddock-deploy");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("deploy.toml");
    std::fs::write(
        &cfg,
        "switchboard_url = \"http://127.0.0.1:8080\"\ntoken_file = \"token\"\nrepo = \"git@forge.example:lab/deployments.git\"\nworktree = \"tree\"\n[activation]\nhost = \"lab1-server\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let check = || {
        Command::new(DEPLOY)
            .args(["check-config", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    // The token file is missing: named.
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token_file") && err.contains("token"), "{err}");
    std::fs::write(dir.path().join("token"), "pdt_secret-admin-token\n").unwrap();
    let out = check();
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("lab1-server") && shown.contains("tree"),
        "{shown}"
    );
    assert!(!shown.contains("pdt_secret"), "the token is never printed");
    // A typo in a field: the field and line.
    std::fs::write(
        &cfg,
        "switchboard_url = \"http://x\"\ntoken_file = \"token\"\nrepo = \"r\"\ndebounce = 5\n",
    )
    .unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("debounce") && err.contains("deploy.toml:4: "),
        "{err}"
    );
}

/// Issue 16: `paddock deploy status` shows the errors the switchboard kept of a rejected
/// commit and says how many more there were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_bounded_rejection_with_its_total() {
    let dir = tempfile::tempdir().unwrap();
    let (url, token) = paddock_switchboard::testing::TestApp::start_in(
        dir.path(),
        paddock_switchboard::testing::Backend::Sqlite,
        |_| {},
    )
    .await
    .detach();
    let errors: Vec<String> = (1..=100)
        .map(|i| format!("db/sites/lab2.yaml:{i}:5: supervisors[{i}]: missing field `id`"))
        .collect();
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/v1/deployment/rejection"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"commit": "bad", "errors": errors, "total_errors": 180_000}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{resp:?}");
    let out = tokio::process::Command::new(PADDOCK)
        .args(["deploy", "status"])
        .env("PADDOCK_URL", &url)
        .env("PADDOCK_TOKEN", &token)
        .env("PADDOCK_CONFIG", dir.path().join("none.toml"))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("last error:  commit bad rejected at"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(lines[at + 1], format!("  {}", errors[0]));
    assert_eq!(lines[at + 100], format!("  {}", errors[99]));
    assert_eq!(
        lines[at + 101],
        "  … and 179900 more (total 180000)",
        "{stdout}"
    );
}
