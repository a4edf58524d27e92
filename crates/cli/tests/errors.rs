//! Issue 15 item 22: user-facing errors say their cause once: a switchboard that cannot be
//! reached is named once (not again inside reqwest's "for url (…)"), and `paddock-puppet`
//! says why it could not reach the supervisor.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn stderr_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unreachable_switchboard_is_named_once_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:1";
    for args in [
        &["job", "status", "00000000-0000-0000-0000-000000000000"][..],
        &["deploy", "status"][..],
        &["deploy", "apply", "/nonexistent/repo"][..],
    ] {
        let err = stderr_of(
            Command::new(env!("CARGO_BIN_EXE_paddock"))
                .args(args)
                .env("HOME", dir.path())
                .env("PADDOCK_URL", url)
                .env("PADDOCK_TOKEN", "t"),
        );
        assert_eq!(err.matches("127.0.0.1:1").count(), 1, "{args:?}: {err}");
        assert!(err.contains("Connection refused"), "{args:?}: {err}");
    }
}

#[test]
fn puppet_says_why_it_cannot_reach_the_supervisor() {
    let err = stderr_of(Command::new(env!("CARGO_BIN_EXE_paddock-puppet")).args([
        "--socket",
        "/nonexistent/puppet.sock",
        "ready",
    ]));
    assert!(
        err.contains("/nonexistent/puppet.sock") && err.contains("No such file or directory"),
        "{err}"
    );
}

#[test]
fn audit_report_to_an_unreachable_switchboard_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let err = stderr_of(
        Command::new(env!("CARGO_BIN_EXE_paddock-audit"))
            .args(["collect", "--collectors", "kernel", "--output"])
            .arg(dir.path().join("r.json"))
            .args(["--report-to", "http://127.0.0.1:1", "--supervisor", "s"])
            .env("PADDOCK_TOKEN", "t"),
    );
    let last = err.lines().last().unwrap_or("");
    assert_eq!(last.matches("127.0.0.1:1").count(), 1, "{err}");
    assert!(last.contains("Connection refused"), "{err}");
}

#[test]
fn a_data_directory_that_cannot_be_made_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let data = dir.path().join("file/data");
    for (exe, args) in [
        (env!("CARGO_BIN_EXE_paddock"), &["up", "--data-dir"][..]),
        (
            env!("CARGO_BIN_EXE_paddock-switchboard"),
            &["serve", "--data-dir"][..],
        ),
    ] {
        let err = stderr_of(
            Command::new(exe)
                .args(args)
                .arg(&data)
                .env("HOME", dir.path()),
        );
        assert_eq!(
            err.matches(&data.display().to_string()).count(),
            1,
            "{exe}: {err}"
        );
        assert!(err.contains("Not a directory"), "{exe}: {err}");
    }
}
