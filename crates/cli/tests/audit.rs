//! Issue 6's walk-through with the real `paddock-audit` binary: collect here (exit 0 whatever
//! is missing), the report read with jq, the example baseline checked (lines, summary, exit
//! status), and collect against a real sshd on a loopback port whose key the operator added
//! with ssh-keyscan.

#![allow(clippy::unwrap_used)]

mod shell;

use std::path::Path;
use std::process::Command;

const AUDIT: &str = env!("CARGO_BIN_EXE_paddock-audit");

#[test]
fn acceptance_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    let port = shell::free_port();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let script = format!(
        r#"
set -e
PORT={port}
mkdir -p home/.ssh sshd /run/sshd
ssh-keygen -q -t ecdsa -b 256 -N '' -f sshd/host_key
ssh-keygen -q -t ecdsa -b 256 -m PEM -N '' -f KEY
cp KEY.pub sshd/authorized_keys
cat > sshd/config <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $PWD/sshd/host_key
PidFile $PWD/sshd/pid
AuthorizedKeysFile $PWD/sshd/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -e -f $PWD/sshd/config 2> sshd/log &
echo $! > sshd.pid
trap 'kill $(cat sshd.pid)' EXIT
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
export HOME=$PWD/home
ssh-keyscan -p $PORT 127.0.0.1 2>/dev/null > home/.ssh/known_hosts
USER=$(id -un)

paddock-audit collect --output r.json
jq -r '.summary.verdict, (.collectors | keys | join(","))' r.json > jq.out
set +e
paddock-audit check --baseline {examples}/baselines/site-server.yaml > check.out
echo $? > check.rc
set -e
paddock-audit collect --host 127.0.0.1 --port $PORT --user $USER --identity KEY --output remote.json
paddock-audit collect --collectors cpu,kernel > two.json
if paddock-audit collect --collectors cpu,nonsense > /dev/null 2> bad.err; then exit 1; fi
"#,
        examples = examples.display()
    );
    let out = shell::run(dir.path(), &script);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    assert!(
        out.status.success(),
        "{out:?}\n--- sshd\n{}",
        read("sshd/log")
    );
    let jq: Vec<String> = read("jq.out").lines().map(str::to_string).collect();
    assert!(
        ["OK", "WARNING", "FAILED"].contains(&jq[0].as_str()),
        "{jq:?}"
    );
    assert_eq!(
        jq[1],
        "cpu,gpu,kernel,memory,network,pcie,power,storage,system"
    );
    // One line per check of the example, then the summary; the exit status follows the
    // hard failures.
    let lines: Vec<String> = read("check.out").lines().map(str::to_string).collect();
    let n_checks = 12;
    assert_eq!(lines.len(), n_checks + 1, "{lines:#?}");
    let mut fails = 0;
    let mut warns = 0;
    for l in &lines[..n_checks] {
        let f = paddock_audit::check::line::parse(l).unwrap_or_else(|| panic!("{l}"));
        assert_eq!(f[0].0, "status");
        fails += usize::from(f[0].1 == "FAIL");
        warns += usize::from(f[0].1 == "WARN");
    }
    assert_eq!(
        lines[n_checks],
        format!("PADDOCK_CHECK summary checks={n_checks} failures={fails} warnings={warns}")
    );
    assert_eq!(read("check.rc").trim(), if fails > 0 { "1" } else { "0" });
    // The remote report: through SSH, the same machine.
    let remote: serde_json::Value = serde_json::from_str(&read("remote.json")).unwrap();
    let local: serde_json::Value = serde_json::from_str(&read("r.json")).unwrap();
    assert!(
        remote["host"]
            .as_str()
            .unwrap()
            .ends_with(&format!("@127.0.0.1:{port}"))
    );
    assert_eq!(remote["format"], "paddock-audit/1");
    assert_eq!(
        remote["hardware"]["kernel"]["release"],
        local["hardware"]["kernel"]["release"]
    );
    assert_eq!(remote["collectors"]["cpu"]["status"], "ok");
    let two: serde_json::Value = serde_json::from_str(&read("two.json")).unwrap();
    assert_eq!(two["collectors"].as_object().unwrap().len(), 2);
    assert!(
        read("bad.err").contains("unknown collector `nonsense`; known: system, cpu"),
        "{}",
        read("bad.err")
    );
}

#[test]
fn a_bad_baseline_is_exit_2_with_every_error_located() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.yaml");
    std::fs::write(&b, "checks:\n  - name: x\n    kind: path_exist\n  - name: y\n    kind: sysctl\n    key: vm.swappiness\n").unwrap();
    let out = Command::new(AUDIT)
        .args(["check", "--baseline"])
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = b.display();
    assert!(
        err.contains(&format!(
            "{f}:3:11: checks[0].kind: unknown kind `path_exist`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:4:5: checks[1].value: missing field `value`")),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing checked");
}

/// `check --report-to` against a real `paddock up`: a failing run blocks the supervisor (shown
/// by `paddock supervisor list`), a passing one frees it; the history is in the API; `serve`
/// shows the report.
#[test]
fn reports_reach_the_switchboard_and_gate_the_supervisor() {
    let dir = tempfile::tempdir().unwrap();
    let port = shell::free_port();
    let serve_port = shell::free_port();
    let script = format!(
        r#"
set -e
wait_for() {{ for i in $(seq 150); do if eval "$1"; then return 0; fi; sleep 0.1; done; echo "timed out: $1" >&2; return 1; }}
paddock up --data-dir D --listen 127.0.0.1:{port} --supervisors 1 > up.out 2> up.err &
echo $! > up.pid
trap 'kill -INT $(cat up.pid); wait' EXIT
wait_for "grep -q '^PADDOCK_TOKEN=' up.out"
export $(cat up.out)
printf 'checks:\n  - {{name: must, kind: path_exists, path: /nonexistent/paddock}}\n' > failing.yaml
printf 'checks:\n  - {{name: must, kind: path_exists, path: /}}\n' > passing.yaml
set +e
paddock-audit check --baseline failing.yaml --report-to $PADDOCK_URL --supervisor local-1 > fail.out 2> fail.err
echo $? > fail.rc
set -e
paddock supervisor list --json > blocked.json
paddock supervisor audit local-1 > audit-blocked.txt
paddock-audit check --baseline passing.yaml --report-to $PADDOCK_URL --supervisor local-1 > pass.out
paddock supervisor list --json > freed.json
echo "$PADDOCK_TOKEN" > token
paddock-audit collect --collectors cpu,kernel --output r.json --report-to $PADDOCK_URL --supervisor local-1 --token-file token
curl -fsS -H "Authorization: Bearer $PADDOCK_TOKEN" "$PADDOCK_URL/api/v1/audit/reports?supervisor=local-1" > history.json
paddock-audit serve --report r.json --listen 127.0.0.1:{serve_port} 2> serve.err &
SERVE=$!
wait_for "curl -fsS http://127.0.0.1:{serve_port}/ > page.html"
curl -fsS http://127.0.0.1:{serve_port}/report.json > served.json
kill $SERVE
"#
    );
    let out = shell::run(dir.path(), &script);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    assert!(
        out.status.success(),
        "{out:?}\n{}\n{}",
        read("up.err"),
        read("fail.err")
    );
    assert_eq!(read("fail.rc").trim(), "1", "{}", read("fail.err"));
    assert!(read("fail.out").contains("PADDOCK_CHECK status=FAIL check=must"));
    let blocked = |f: &str| -> bool {
        let v: serde_json::Value = serde_json::from_str(&read(f)).unwrap();
        v["supervisors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "local-1")
            .unwrap()["audit_blocked"]
            .as_bool()
            .unwrap()
    };
    assert!(blocked("blocked.json"));
    let shown = read("audit-blocked.txt");
    assert!(shown.contains("audit blocked:  true"), "{shown}");
    assert!(
        shown.contains("check run:      FAILED (1 failures, 0 warnings)"),
        "{shown}"
    );
    assert!(
        shown.contains("  FAIL must: /nonexistent/paddock does not exist"),
        "{shown}"
    );
    assert!(shown.contains("inventory:      none yet"), "{shown}");
    assert!(!blocked("freed.json"));
    let history: serde_json::Value = serde_json::from_str(&read("history.json")).unwrap();
    let kinds: Vec<&str> = history["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["collect", "check", "check"]);
    assert!(read("page.html").contains("<h2>Collectors</h2>"));
    let served: serde_json::Value = serde_json::from_str(&read("served.json")).unwrap();
    assert_eq!(served["format"], "paddock-audit/1");
}

/// What the NixOS audit module runs: `check-config` at build time and `paddock-audit run
/// --config` from its timer — the live ISO's configuration (a report file only), a site
/// server's (baseline and switchboard: a hard failure is exit 1, which the unit counts as
/// success, and blocks the supervisor), and a switchboard that cannot be reached (the baseline
/// is still checked and printed; exit 2, a failed unit).
#[test]
fn the_service_run_and_its_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let port = shell::free_port();
    let closed = shell::free_port();
    let script = format!(
        r##"
set -e
wait_for() {{ for i in $(seq 150); do if eval "$1"; then return 0; fi; sleep 0.1; done; echo "timed out: $1" >&2; return 1; }}
code() {{ set +e; "$@"; echo $?; set -e; }}
printf 'checks:\n  - {{name: must, kind: path_exists, path: /nonexistent/paddock}}\n' > failing.yaml

# The ISO: the module renders only `output` (collectors cut to two for the test's speed).
printf 'output = "iso.json"\ncollectors = ["cpu", "kernel"]\n' > iso.toml
paddock-audit check-config --config iso.toml > iso.cc
paddock-audit run --config iso.toml 2> iso.err

# check-config: 1 for a bad file (as every service's), the field and its line.
printf 'output = "r.json"\ncolectors = []\n' > bad.toml
code paddock-audit check-config --config bad.toml 2> bad.err > bad.rc
printf 'output = "r.json"\nreport_to = "http://127.0.0.1:{closed}"\nsupervisor = "s"\ntoken_file = "/run/credentials/paddock-audit.service/token"\n' > cred.toml
paddock-audit check-config --config cred.toml 2> cred.err > /dev/null
sed 's#/run/credentials/paddock-audit.service/token#missing-token#' cred.toml > missing.toml
code paddock-audit check-config --config missing.toml 2> missing.err > missing.rc
paddock-audit check-config --no-secrets --config missing.toml > /dev/null

# A site server: baseline and switchboard.
paddock up --data-dir D --listen 127.0.0.1:{port} --supervisors 1 > up.out 2> up.err &
echo $! > up.pid
wait_for "grep -q '^PADDOCK_TOKEN=' up.out"
export $(cat up.out)
echo "$PADDOCK_TOKEN" > token
printf 'output = "site.json"\ncollectors = ["cpu", "kernel"]\nbaseline = "failing.yaml"\nreport_to = "%s"\nsupervisor = "local-1"\ntoken_file = "token"\n' "$PADDOCK_URL" > site.toml
code paddock-audit run --config site.toml > site.out 2> site.err
paddock supervisor list --json > blocked.json
curl -fsS -H "Authorization: Bearer $PADDOCK_TOKEN" "$PADDOCK_URL/api/v1/audit/reports?supervisor=local-1" > history.json
kill -INT $(cat up.pid)
for i in $(seq 200); do kill -0 $(cat up.pid) 2>/dev/null || break; sleep 0.1; done

# The switchboard unreachable: checked and printed all the same, then exit 2.
sed 's#^report_to = .*#report_to = "http://127.0.0.1:{closed}"#; s#site.json#gone.json#' site.toml > gone.toml
code paddock-audit run --config gone.toml > gone.out 2> gone.err
"##
    );
    let out = shell::run(dir.path(), &script);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    assert!(out.status.success(), "{out:?}\n{}", read("up.err"));
    // The ISO's run: a report, exit 0.
    let report: serde_json::Value = serde_json::from_str(&read("iso.json")).unwrap();
    assert_eq!(report["format"], "paddock-audit/1", "{}", read("iso.err"));
    assert!(read("iso.cc").contains("iso.json"));
    assert_eq!(read("bad.rc").trim(), "1");
    let bad = read("bad.err");
    assert!(
        bad.contains("colectors") && bad.contains("bad.toml:2: "),
        "{bad}"
    );
    assert!(
        read("cred.err").contains("is a systemd credential, readable only inside the unit"),
        "{}",
        read("cred.err")
    );
    assert_eq!(read("missing.rc").trim(), "1");
    let missing = read("missing.err");
    assert!(
        missing.contains("token_file") && missing.contains("missing-token"),
        "{missing}"
    );
    // The site server's run: the check's lines, exit 1, both reports in the history, blocked.
    let site = read("site.out");
    assert!(
        site.contains("PADDOCK_CHECK status=FAIL check=must"),
        "{site}"
    );
    assert_eq!(site.lines().last(), Some("1"), "{}", read("site.err"));
    let history: serde_json::Value = serde_json::from_str(&read("history.json")).unwrap();
    let kinds: Vec<&str> = history["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["check", "collect"]);
    let sups: serde_json::Value = serde_json::from_str(&read("blocked.json")).unwrap();
    assert_eq!(sups["supervisors"][0]["audit_blocked"], true, "{sups}");
    // Unreachable: the report written, the check printed, exit 2 naming the switchboard.
    let gone = read("gone.out");
    assert!(
        gone.contains("PADDOCK_CHECK status=FAIL check=must"),
        "{gone}"
    );
    assert_eq!(gone.lines().last(), Some("2"), "{}", read("gone.err"));
    assert!(dir.path().join("gone.json").exists());
    assert!(
        read("gone.err").contains(&closed.to_string()),
        "{}",
        read("gone.err")
    );
}
