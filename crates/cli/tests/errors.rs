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

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_cause_already_in_the_message_is_not_repeated() {
    // StoreError's "{path}: {source}" shows its cause; the printer does not add it again, and
    // the context names the store, not the source a second time.
    let dir = tempfile::tempdir().unwrap();
    let err = stderr_of(
        Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["image", "import", "/nonexistent/s.sh", "--label", "x"])
            .arg("--store")
            .arg(dir.path().join("store"))
            .env("HOME", dir.path()),
    );
    assert_eq!(count(&err, "/nonexistent/s.sh"), 1, "{err}");
    assert_eq!(count(&err, "No such file or directory"), 1, "{err}");
    assert!(
        err.contains(&dir.path().join("store").display().to_string()),
        "{err}"
    );
}

#[test]
fn an_unreachable_image_store_is_named_once_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["image", "list"][..],
        &["image", "show", "x"][..],
        &["image", "pull", "x", "/nonexistent/d"][..],
    ] {
        let err = stderr_of(
            Command::new(env!("CARGO_BIN_EXE_paddock"))
                .args(args)
                .args(["--url", "http://127.0.0.1:1"])
                .env("HOME", dir.path()),
        );
        assert_eq!(count(&err, "127.0.0.1:1"), 1, "{args:?}: {err}");
        assert!(err.contains("Connection refused"), "{args:?}: {err}");
    }
}

#[test]
fn a_url_that_is_not_one_is_named_with_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let paddock = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_paddock"));
        c.env("HOME", dir.path()).env("PADDOCK_TOKEN", "t");
        c
    };
    for (mut cmd, from) in [
        (
            {
                let mut c = paddock();
                c.args(["job", "list"]).env("PADDOCK_URL", "notaurl");
                c
            },
            "PADDOCK_URL",
        ),
        (
            {
                let mut c = paddock();
                c.args(["job", "list"]).env("PADDOCK_URL", "localhost:8080");
                c
            },
            "PADDOCK_URL",
        ),
        (
            {
                let mut c = paddock();
                c.args(["image", "list", "--url", "notaurl"]);
                c
            },
            "--url",
        ),
        (
            {
                let mut c = paddock();
                c.args(["image", "mirror", "notaurl"])
                    .arg(dir.path().join("m"));
                c
            },
            "mirror",
        ),
        (
            {
                let mut c = Command::new(env!("CARGO_BIN_EXE_paddock-audit"));
                c.args(["collect", "--collectors", "kernel", "--output"])
                    .arg(dir.path().join("r.json"))
                    .args(["--report-to", "notaurl", "--supervisor", "s"])
                    .env("PADDOCK_TOKEN", "t");
                c
            },
            "--report-to",
        ),
    ] {
        let err = stderr_of(&mut cmd);
        assert!(!err.contains("builder error"), "{err}");
        assert!(
            err.contains(from) && err.contains("http://HOST:PORT"),
            "{err}"
        );
    }
}

#[test]
fn every_line_of_a_config_error_starts_with_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "bogus = 1\nworse = 2\n").unwrap();
    for exe in [
        env!("CARGO_BIN_EXE_paddock-switchboard"),
        env!("CARGO_BIN_EXE_paddock-supervisor"),
        env!("CARGO_BIN_EXE_paddock-imagestore"),
        env!("CARGO_BIN_EXE_paddock-deploy"),
        env!("CARGO_BIN_EXE_paddock-audit"),
    ] {
        let err = stderr_of(
            Command::new(exe)
                .arg("check-config")
                .arg("--config")
                .arg(&config),
        );
        assert!(err.lines().count() >= 2, "{exe}: {err}");
        assert!(
            err.lines().all(|l| l.starts_with("error: ")),
            "{exe}: {err}"
        );
    }
}

#[test]
fn switchboard_serve_names_the_file_or_flag_of_a_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sw.toml");
    std::fs::write(&config, "database_url_file = \"/nonexistent/url\"\n").unwrap();
    let err = stderr_of(
        Command::new(env!("CARGO_BIN_EXE_paddock-switchboard"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("PADDOCK_DATABASE_URL"),
    );
    assert!(
        err.starts_with(&format!("error: {}: database_url_file: ", config.display()))
            && err.contains("No such file or directory"),
        "{err}"
    );
    let err = stderr_of(
        Command::new(env!("CARGO_BIN_EXE_paddock-switchboard"))
            .args(["serve", "--database-url", "bogus://x"])
            .current_dir(dir.path()),
    );
    assert!(err.contains("--database-url"), "{err}");
}

#[test]
fn supervisor_names_the_config_and_field_of_an_unreadable_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("s.toml");
    std::fs::write(
        &config,
        "switchboard_url = \"http://127.0.0.1:1\"\n\
         supervisor_id = \"00000000-0000-0000-0000-000000000000\"\n\
         token_file = \"/nonexistent/token\"\n\
         work_dir = \"w\"\n\
         [driver]\nkind = \"local\"\n",
    )
    .unwrap();
    for cmd in ["check-config", "run"] {
        let err = stderr_of(
            Command::new(env!("CARGO_BIN_EXE_paddock-supervisor"))
                .args([cmd, "--config"])
                .arg(&config),
        );
        assert_eq!(
            err.trim_end(),
            format!(
                "error: {}: token_file: reading /nonexistent/token: No such file or directory \
                 (os error 2)",
                config.display()
            ),
            "{cmd}"
        );
    }
}

#[test]
fn imagestore_gc_and_check_refuse_a_root_that_is_not_there() {
    for cmd in ["gc", "check"] {
        let err = stderr_of(
            Command::new(env!("CARGO_BIN_EXE_paddock-imagestore"))
                .args([cmd, "--root", "/nonexistent/store"])
                .env_remove("PADDOCK_IMAGESTORE_ROOT"),
        );
        assert!(
            err.contains("/nonexistent/store") && err.contains("--root"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn puppet_says_when_the_supervisor_does_not_answer_or_hangs_up() {
    use std::os::unix::net::UnixListener;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // Accepts two connections: holds the first without answering, closes the second.
    let server = std::thread::spawn(move || {
        let (held, _) = listener.accept().unwrap();
        let (closed, _) = listener.accept().unwrap();
        drop(closed);
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
    });
    let puppet = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_paddock-puppet"));
        c.arg("--socket")
            .arg(&path)
            .args(["--timeout", "1", "ready"]);
        c
    };
    let err = stderr_of(&mut puppet());
    assert!(
        err.contains("no answer from the supervisor") && err.contains("1 s"),
        "{err}"
    );
    let err = stderr_of(&mut puppet());
    assert!(
        err.contains("closed the connection without answering"),
        "{err}"
    );
    server.join().unwrap();
}

#[test]
fn a_baseline_lists_each_allowed_field_once() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("b.yaml");
    std::fs::write(
        &baseline,
        "checks:\n  - name: a\n    kind: kernel_module\n    bogus: 1\n",
    )
    .unwrap();
    let err = stderr_of(
        Command::new(env!("CARGO_BIN_EXE_paddock-audit"))
            .args(["check", "--baseline"])
            .arg(&baseline),
    );
    let line = err
        .lines()
        .find(|l| l.contains("unknown field `bogus`"))
        .unwrap_or("");
    let list = line.split("expected one of: ").nth(1).unwrap_or("");
    let names: Vec<&str> = list.split(", ").collect();
    assert!(names.len() > 1, "{err}");
    for n in &names {
        assert_eq!(names.iter().filter(|m| *m == n).count(), 1, "{n}: {err}");
    }
}

#[test]
fn login_says_which_input_is_not_a_user_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = stderr_of(
        Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["login", "--url", "http://127.0.0.1:1"])
            .env("HOME", dir.path())
            .stdin(std::process::Stdio::null()),
    );
    assert!(
        err.contains("--user") && err.contains("invalid name"),
        "{err}"
    );
}
