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

/// The modules replace the keys they own (credential paths, state directories) with their own
/// values before rendering, so the hosts' TOML must hold those same values for `check-config`
/// above to check what the hosts will really run.
#[test]
fn the_hosts_toml_hold_the_values_the_modules_set() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |f: &str| -> toml::Table {
        toml::from_str(&std::fs::read_to_string(root.join(f)).unwrap()).unwrap()
    };
    let cred = |unit: &str, name: &str| format!("/run/credentials/{unit}.service/{name}");
    let s = |t: &toml::Table, k: &str| t.get(k).and_then(|v| v.as_str()).map(String::from);
    // nixos-modules/supervisor.nix: token_file, work_dir.
    for name in ["lab1-local-1", "lab1-local-2"] {
        let t = read(&format!("hosts/site-example/supervisor-{name}.toml"));
        let unit = format!("paddock-supervisor-{name}");
        assert_eq!(s(&t, "token_file"), Some(cred(&unit, "token")), "{name}");
        assert_eq!(s(&t, "work_dir"), Some(format!("/var/lib/{unit}/work")));
    }
    // nixos-modules/deploy.nix: token_file, state_dir, webhook_secret_file (with a webhook).
    for host in ["site-example", "switchboard-example"] {
        let t = read(&format!("hosts/{host}/deploy.toml"));
        assert_eq!(s(&t, "token_file"), Some(cred("paddock-deploy", "token")));
        assert_eq!(s(&t, "state_dir"), Some("/var/lib/paddock-deploy".into()));
        if t.contains_key("listen") {
            assert_eq!(
                s(&t, "webhook_secret_file"),
                Some(cred("paddock-deploy", "webhook"))
            );
        }
    }
    // nixos-modules/audit.nix: output, token_file (baseline: the store path of the same file).
    let t = read("hosts/site-example/audit.toml");
    assert_eq!(
        s(&t, "output"),
        Some("/var/lib/paddock-audit/report.json".into())
    );
    assert_eq!(s(&t, "token_file"), Some(cred("paddock-audit", "token")));
    let baseline = s(&t, "baseline").unwrap();
    let resolved = root.join("hosts/site-example").join(&baseline);
    assert_eq!(
        resolved.canonicalize().ok(),
        root.join("examples/baselines/site-server.yaml")
            .canonicalize()
            .ok(),
        "{baseline}"
    );
    // nixos-modules/switchboard.nix and imagestore.nix: the state directories are the defaults.
    let t = read("hosts/switchboard-example/switchboard.toml");
    assert_eq!(
        s(&t, "data_dir"),
        Some("/var/lib/paddock-switchboard".into())
    );
    let t = read("hosts/switchboard-example/imagestore.toml");
    assert_eq!(s(&t, "root"), Some("/var/lib/paddock-imagestore".into()));
}
