//! Issue 3's acceptance walk-through, as written, with the real `paddock` binary: `paddock up`,
//! the shell exports, a job end to end, then Ctrl-C and a second `paddock up` on the same data
//! directory that resumes (same token, the old job still listed, new jobs run), `logs --follow`
//! and `cancel` of a running job from an image imported while the lab runs.

#![allow(clippy::unwrap_used)]

mod shell;

use std::path::Path;

/// Runs a bash script in `dir` with the built binaries first on PATH; returns stdout.
fn bash(dir: &Path, script: &str) -> String {
    let out = shell::run(dir, script);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let up_err = std::fs::read_to_string(dir.join("up.err")).unwrap_or_default();
    assert!(
        out.status.success(),
        "script failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- paddock up\n{up_err}",
        out.status
    );
    stdout
}

/// Starts `paddock up` in the background, waits for its two lines, exports them.
const START: &str = r#"
set -euo pipefail
paddock up --data-dir D --listen 127.0.0.1:$PORT > up.out 2> up.err &
echo $! > up.pid
for i in $(seq 200); do grep -q '^PADDOCK_TOKEN=' up.out 2>/dev/null && break; sleep 0.1; done
export $(cat up.out)
"#;

const STOP: &str = r#"
kill -INT $(cat up.pid)
for i in $(seq 200); do kill -0 $(cat up.pid) 2>/dev/null || break; sleep 0.1; done
if kill -0 $(cat up.pid) 2>/dev/null; then echo "paddock up did not stop" >&2; exit 1; fi
"#;

#[test]
fn acceptance_walkthrough_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let port = shell::free_port();
    let script = format!(
        "PORT={port}\n{START}\n{}\n{STOP}",
        r#"
paddock supervisor list --json > sups.json
ID=$(paddock job enqueue hello --tags 'board:demo & site:local' --param greeting=hi --secret-param key=s3cret)
echo "$ID" > id.txt
paddock job watch $ID > watch.txt
paddock job status $ID --json > status.json
paddock job logs $ID > logs.txt
paddock job status $ID --json | grep -c s3cret > count.txt || true
cp up.out first-up.out
"#
    );
    bash(dir.path(), &script);
    let d = dir.path();
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();

    let sups: serde_json::Value = serde_json::from_str(&read("sups.json")).unwrap();
    let list = sups["supervisors"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{sups}");
    for s in list {
        assert_eq!(s["connected"], true, "{s}");
        assert_eq!(s["tags"], serde_json::json!(["board:demo", "site:local"]));
    }
    let status: serde_json::Value = serde_json::from_str(&read("status.json")).unwrap();
    assert_eq!(status["exit_status"], "workload_finished_success");
    assert!(read("watch.txt").contains("ready"), "{}", read("watch.txt"));
    assert!(read("watch.txt").contains("greeting=hi"));
    assert!(
        read("logs.txt").contains("greeting=hi"),
        "{}",
        read("logs.txt")
    );
    assert!(!read("logs.txt").contains("s3cret"));
    assert_eq!(read("count.txt").trim(), "0");
    let id = read("id.txt").trim().to_string();

    // A second `paddock up` on the same data directory resumes.
    let sleeper = d.join("sleeper.sh");
    std::fs::write(
        &sleeper,
        "#!/bin/sh\necho tick 1\nsleep 1\necho tick 2\nexec sleep 300\n",
    )
    .unwrap();
    let script = format!(
        "PORT={port}\n{START}\n{}\n{STOP}",
        r#"
cmp up.out first-up.out
paddock job list > list.txt
ID2=$(paddock job enqueue hello --tags board:demo --param greeting=again)
paddock job watch $ID2 > watch2.txt
paddock image import sleeper.sh --label sleeper --store D/store
ID3=$(paddock job enqueue sleeper --tags board:demo)
timeout 20 bash -c "until paddock job logs $ID3 | grep -q 'tick 2'; do sleep 0.2; done"
(paddock job logs --follow $ID3 > follow.txt) &
FOLLOW=$!
paddock job cancel $ID3
wait $FOLLOW
if paddock job watch $ID3 > watch3.txt 2> watch3.err; then echo "watch: exit 0 for a canceled job" >&2; exit 1; fi
paddock job status $ID3 --json > status3.json
"#
    );
    bash(d, &script);
    assert!(read("list.txt").contains(&id), "{}", read("list.txt"));
    assert!(read("watch2.txt").contains("greeting=again"));
    let follow = read("follow.txt");
    assert!(
        follow.contains("tick 1") && follow.contains("tick 2"),
        "{follow}"
    );
    let s3: serde_json::Value = serde_json::from_str(&read("status3.json")).unwrap();
    assert_eq!(s3["exit_status"], "job_canceled", "{s3}");
    assert!(read("watch3.err").contains("job_canceled"));
}

/// `paddock up` at `RUST_LOG=trace` (issue 17): its switchboard and supervisors share one
/// process and one log; neither a secret parameter nor the lab's token may appear in it.
#[test]
fn no_secret_in_the_log_of_paddock_up_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let port = shell::free_port();
    let script = format!(
        "PORT={port}\nexport RUST_LOG=trace\n{START}\nunset RUST_LOG\n{}\n{STOP}",
        r#"
ID=$(paddock job enqueue hello --tags board:demo --param greeting=hi --secret-param key=Zq7-up-secret-W4x)
paddock job watch $ID > watch.txt
"#
    );
    bash(dir.path(), &script);
    let d = dir.path();
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert!(read("watch.txt").contains("greeting=hi"));
    let log = read("up.err");
    assert!(
        log.lines().filter(|l| l.contains(" TRACE ")).count() > 10,
        "trace lines were captured"
    );
    let token = read("up.out")
        .lines()
        .find_map(|l| l.strip_prefix("PADDOCK_TOKEN="))
        .unwrap()
        .to_string();
    for (what, secret) in [
        ("the secret parameter", "Zq7-up-secret-W4x"),
        ("the token", token.as_str()),
    ] {
        let leaks: Vec<&str> = log.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{what} is logged: {leaks:#?}");
    }
}
