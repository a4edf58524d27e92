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
/// values before rendering (nixos-modules/settings.nix, evaluated here by Nix itself), so each
/// host's TOML must already hold them for `check-config` above to check what the host will
/// really run: rendering it again must give it back unchanged.
#[test]
fn the_hosts_toml_are_what_the_modules_render() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let expr = r#"
let
  r = import ./nixos-modules/settings.nix;
  toml = f: builtins.fromTOML (builtins.readFile f);
  same = f: render: let t = toml f; in render t == t;
  site = ./hosts/site-example;
  audit = toml (site + "/audit.toml");
  # configuration.nix gives the audit module its settings without the keys it sets, and the
  # baseline as a path (which becomes a store path: compared apart).
  auditOwn = [ "output" "baseline" "token_file" ];
in {
  switchboard = same ./hosts/switchboard-example/switchboard.toml
    (t: r.switchboard { settings = t; databaseUrl = false; });
  supervisor-1 = same (site + "/supervisor-lab1-local-1.toml") (r.supervisor "lab1-local-1");
  supervisor-2 = same (site + "/supervisor-lab1-local-2.toml") (r.supervisor "lab1-local-2");
  deploy-site = same (site + "/deploy.toml") (t: r.deploy { settings = t; webhook = false; });
  deploy-switchboard = same ./hosts/switchboard-example/deploy.toml
    (t: r.deploy { settings = t; webhook = true; });
  audit = r.audit { settings = builtins.removeAttrs audit auditOwn; token = true; baseline = null; }
    == builtins.removeAttrs audit [ "baseline" ];
  credential = r.credentialPath "paddock-deploy" "token";
}
"#;
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", expr])
        .current_dir(&root)
        .output()
        .expect("nix-instantiate (Debian package nix-bin) is needed");
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "switchboard",
        "supervisor-1",
        "supervisor-2",
        "deploy-site",
        "deploy-switchboard",
        "audit",
    ] {
        assert_eq!(
            v[k], true,
            "{k}: the host's TOML is not what its module renders: {v}"
        );
    }
    // The credential path the services recognise as one (see check-config's note).
    assert_eq!(
        v["credential"],
        "/run/credentials/paddock-deploy.service/token"
    );

    let read = |f: &str| -> toml::Table {
        toml::from_str(&std::fs::read_to_string(root.join(f)).unwrap()).unwrap()
    };
    let s = |t: &toml::Table, k: &str| t.get(k).and_then(|v| v.as_str()).map(String::from);
    // The audit baseline configuration.nix gives (../../examples/baselines/site-server.yaml)
    // is the file the TOML names.
    let t = read("hosts/site-example/audit.toml");
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
