//! Issue 15 item 20: `check-config` of `paddock-deploy` and `paddock-audit` prints a readable
//! summary (no Rust `Debug` dump) and, for a bad file, every problem at once, each as
//! `FILE:LINE: field: …`, exit status 1.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn check_config(bin: &str, config: &Path) -> Output {
    Command::new(bin)
        .args(["check-config", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

fn assert_readable(stdout: &str) {
    for debug in ["Config {", "Some(", "None", "\"", "activation: Some"] {
        assert!(!stdout.contains(debug), "a Debug dump:\n{stdout}");
    }
}

#[test]
fn deploy_check_config_prints_a_summary_and_every_problem_with_its_line() {
    const DEPLOY: &str = env!("CARGO_BIN_EXE_paddock-deploy");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("deploy.toml");
    std::fs::write(dir.path().join("token"), "pdt_secret\n").unwrap();
    std::fs::write(
        &cfg,
        "switchboard_url = \"http://127.0.0.1:8080\"\ntoken_file = \"token\"\nrepo = \"repo\"\n\
         [activation]\nhost = \"lab1-server\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let out = check_config(DEPLOY, &cfg);
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_readable(&shown);
    for line in [
        "switchboard_url: http://127.0.0.1:8080",
        "branch: main",
        "poll_interval_s: 30",
        "activation.host: lab1-server",
    ] {
        assert!(shown.lines().any(|l| l == line), "{line} in\n{shown}");
    }
    assert!(!shown.contains("pdt_secret"), "the token is never printed");

    // Three problems on lines 1, 4 and 5, and the missing token file (line 2): all at once.
    std::fs::remove_file(dir.path().join("token")).unwrap();
    std::fs::write(
        &cfg,
        "switchboard_url = \"ftp://x\"\ntoken_file = \"token\"\nrepo = \"r\"\n\
         poll_interval_s = 0\nbranch = \"/x\"\n",
    )
    .unwrap();
    let out = check_config(DEPLOY, &cfg);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let c = cfg.display();
    for expected in [
        format!("error: {c}:1: switchboard_url: "),
        format!("error: {c}:2: token_file: "),
        format!("error: {c}:4: poll_interval_s: "),
        format!("error: {c}:5: branch: "),
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(&expected)),
            "{expected} in\n{err}"
        );
    }
    // `serve` refuses the file with the same lines (before reading any secret).
    let out = Command::new(DEPLOY)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let serve = String::from_utf8_lossy(&out.stderr);
    assert!(
        serve.lines().count() == 3 && serve.lines().all(|l| l.starts_with("error: ")),
        "{serve}"
    );
}

#[test]
fn audit_check_config_prints_a_summary_and_every_problem_with_its_line() {
    const AUDIT: &str = env!("CARGO_BIN_EXE_paddock-audit");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("audit.toml");
    std::fs::write(
        &cfg,
        "output = \"r.json\"\ncollectors = [\"cpu\", \"kernel\"]\n",
    )
    .unwrap();
    let out = check_config(AUDIT, &cfg);
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_readable(&shown);
    for line in ["collectors: cpu, kernel", "timeout_s: 60", "baseline: none"] {
        assert!(shown.lines().any(|l| l == line), "{line} in\n{shown}");
    }

    std::fs::write(
        &cfg,
        "output = \"r.json\"\ncollectors = [\"cpu\", \"nonsense\"]\ntimeout_s = 0\n\
         supervisor = \"s\"\n",
    )
    .unwrap();
    let out = check_config(AUDIT, &cfg);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let c = cfg.display();
    for expected in [
        format!("error: {c}:2: collectors: "),
        format!("error: {c}:3: timeout_s: "),
        format!("error: {c}:4: report_to and supervisor: "),
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(&expected)),
            "{expected} in\n{err}"
        );
    }
    // A field that does not exist: at its line too.
    std::fs::write(&cfg, "output = \"r.json\"\ncolectors = []\n").unwrap();
    let err = String::from_utf8_lossy(&check_config(AUDIT, &cfg).stderr).into_owned();
    assert!(
        err.starts_with(&format!("error: {c}:2: unknown field `colectors`")),
        "{err}"
    );
}

/// Every service's configuration file: two misspelt keys and two syntax errors are all
/// reported in one run, each at its line (serde alone stops at the first).
#[test]
fn every_service_reports_every_problem_of_its_file_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    for (bin, good_first_line) in [
        (
            env!("CARGO_BIN_EXE_paddock-switchboard"),
            "listen = \"127.0.0.1:1\"",
        ),
        (
            env!("CARGO_BIN_EXE_paddock-supervisor"),
            "switchboard_url = \"http://127.0.0.1:1\"",
        ),
        (
            env!("CARGO_BIN_EXE_paddock-deploy"),
            "switchboard_url = \"http://127.0.0.1:1\"",
        ),
        (env!("CARGO_BIN_EXE_paddock-audit"), "output = \"r.json\""),
        (
            env!("CARGO_BIN_EXE_paddock-imagestore"),
            "listen = \"127.0.0.1:1\"",
        ),
    ] {
        let cfg = dir.path().join("service.toml");
        std::fs::write(
            &cfg,
            format!("{good_first_line}\nlistne = 1\nx = = 2\nbogus_key = true\nname = \"open\n"),
        )
        .unwrap();
        let out = check_config(bin, &cfg);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{bin}: {out:?}");
        let c = cfg.display();
        for at in [
            format!("{c}:2: unknown field `listne`"),
            format!("{c}:3: "),
            format!("{c}:4: unknown field `bogus_key`"),
            format!("{c}:5: "),
        ] {
            assert!(err.contains(&at), "{bin}: {at} in\n{err}");
        }
        // Nothing reported twice, no field reported missing because of a blanked line.
        assert_eq!(err.matches(&format!("{c}:3: ")).count(), 1, "{bin}:\n{err}");
        assert!(!err.contains("missing field"), "{bin}:\n{err}");
    }
}

/// The switchboard's and the supervisor's bad values are all reported at once too, each at
/// its field's line.
#[test]
fn every_bad_value_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("service.toml");
    let c = cfg.display();
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:1\"\nheartbeat_interval_s = 0\nreaper_interval_ms = 0\n\
         max_body_bytes = 10\n",
    )
    .unwrap();
    let out = check_config(env!("CARGO_BIN_EXE_paddock-switchboard"), &cfg);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    for at in [
        format!("{c}:2: heartbeat_interval_s: "),
        format!("{c}:3: reaper_interval_ms: "),
        format!("{c}:4: max_body_bytes: "),
    ] {
        assert!(err.contains(&at), "{at} in\n{err}");
    }
    std::fs::write(
        &cfg,
        "switchboard_url = \"ftp://x\"\ntoken_file = \"t\"\nreconnect_min_ms = 0\n\
         console_budget_bytes = 1\nwork_dir = \"w\"\n[driver]\nkind = \"local\"\npath = \"\"\n",
    )
    .unwrap();
    let out = check_config(env!("CARGO_BIN_EXE_paddock-supervisor"), &cfg);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    for at in [
        format!("{c}:1: switchboard_url: "),
        format!("{c}:3: reconnect_min_ms: "),
        format!("{c}:4: console_budget_bytes: "),
        format!("{c}:8: driver.path: "),
    ] {
        assert!(err.contains(&at), "{at} in\n{err}");
    }
}
