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
