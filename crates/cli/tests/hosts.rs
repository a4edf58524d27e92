//! Issue 7's walk-through as written: every `.nix` file parses (`nix-instantiate --parse`),
//! flake.lock pins nixpkgs, and each example host's service TOML — the values its
//! configuration.nix reads — passes that service's `check-config` with the real binaries.

#![allow(clippy::unwrap_used)]

mod shell;

use std::path::Path;
use std::process::Command;

#[test]
fn the_nix_walkthrough() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = r#"
set -e
bad=0
for f in $(git ls-files '*.nix'); do nix-instantiate --parse $f >/dev/null || { echo BAD $f; bad=1; }; done
[ $bad = 0 ]
jq -r '.nodes.nixpkgs.locked.rev' flake.lock
paddock-switchboard check-config --config hosts/switchboard-example/switchboard.toml > /dev/null
paddock-imagestore check-config --config hosts/switchboard-example/imagestore.toml > /dev/null
paddock-deploy check-config --config hosts/switchboard-example/deploy.toml > /dev/null
paddock-deploy check-config --config hosts/site-example/deploy.toml > /dev/null
paddock-supervisor check-config --config hosts/site-example/supervisor-lab1-local-1.toml > /dev/null
paddock-supervisor check-config --config hosts/site-example/supervisor-lab1-local-2.toml > /dev/null
paddock-audit check-config --config hosts/site-example/audit.toml > /dev/null
echo all-checked
"#;
    let out = shell::run(&root, script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let mut lines = stdout.lines();
    let rev = lines.next().unwrap();
    assert!(
        rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
        "{rev}"
    );
    assert_eq!(lines.last(), Some("all-checked"));
    // Secret files that only exist inside their systemd unit are named, not read.
    assert!(
        stderr.contains("is a systemd credential, readable only inside the unit"),
        "{stderr}"
    );
    // Every TOML under hosts/ is one of those above.
    let listed = Command::new("git")
        .args(["ls-files", "hosts/*.toml"])
        .current_dir(&root)
        .output()
        .unwrap();
    let n = String::from_utf8_lossy(&listed.stdout).lines().count();
    assert_eq!(n, 7, "a new host TOML: add it to this walk-through");
}
