//! The CLI's API token (issue 15, item 18): a token that cannot be sent in an HTTP header
//! (a pasted `\r`, quotes, a non-ASCII character) is refused before any request with a message
//! naming where it came from and what is wrong, never the token itself; a good one works.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output};

use support::{Lab, PADDOCK};

const FAKE: &str = "pdk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn paddock(url: &str, env_token: Option<&str>, config: &std::path::Path) -> Output {
    let mut cmd = Command::new(PADDOCK);
    cmd.args(["supervisor", "list", "--json"])
        .env_remove("PADDOCK_TOKEN")
        .env("PADDOCK_URL", url)
        .env("PADDOCK_CONFIG", config);
    if let Some(t) = env_token {
        cmd.env("PADDOCK_TOKEN", t);
    }
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_cannot_be_a_header_is_refused_with_its_source_and_problem() {
    let lab = Lab::start().await;
    let config = lab.path().join("client.toml");

    // The real token works from the environment and from the file.
    let out = paddock(&lab.base, Some(&lab.admin), &config);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(&config, format!("token = {:?}\n", lab.admin)).unwrap();
    let out = paddock(&lab.base, None, &config);
    assert!(out.status.success(), "{out:?}");

    for (token, problem) in [
        (format!("{FAKE}\r"), "carriage return"),
        (format!("{FAKE}\n"), "line break"),
        (format!("\"{FAKE}\""), "quote"),
        (format!("{FAKE}é"), "non-ASCII"),
        (format!("{FAKE} "), "space"),
    ] {
        for from_env in [true, false] {
            let out = if from_env {
                paddock(&lab.base, Some(&token), &config)
            } else {
                std::fs::write(&config, format!("token = {token:?}\n")).unwrap();
                paddock(&lab.base, None, &config)
            };
            let err = String::from_utf8_lossy(&out.stderr);
            let source = if from_env {
                "PADDOCK_TOKEN".to_string()
            } else {
                config.display().to_string()
            };
            assert_eq!(out.status.code(), Some(1), "{token:?}: {err}");
            assert!(
                err.contains(&source) && err.contains(problem),
                "{token:?} from {source}: {err}"
            );
            assert!(!err.contains("builder error"), "{err}");
            assert!(!err.contains(&FAKE[4..]), "the token is echoed: {err}");
        }
    }
}
