//! Running the real binaries from bash scripts: a free loopback port, and a script run in a
//! directory with the built binaries first on PATH and the caller's Paddock environment (URL,
//! tokens, configuration, store) left out, so a developer's settings never leak into a test.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `script` with bash in `dir`; its output, whatever the exit status.
pub fn run(dir: &Path, script: &str) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_paddock")).parent().unwrap();
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("PADDOCK_URL")
        .env_remove("PADDOCK_TOKEN")
        .env_remove("PADDOCK_IMAGESTORE_URL")
        .env_remove("PADDOCK_IMAGESTORE_TOKEN")
        .env_remove("PADDOCK_STORE")
        .env("PADDOCK_CONFIG", dir.join("no-config.toml"))
        .output()
        .unwrap()
}
