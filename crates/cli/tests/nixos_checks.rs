//! The NixOS VM tests of the flake (checks/end-to-end.nix, checks/deploy.nix) cannot run here
//! (no nixpkgs), so their test scripts are replayed outside NixOS, command for command, with
//! the real binaries and the configuration files the modules would render for those nodes:
//! the options' defaults plus the node's `settings` plus what each module sets itself
//! (`token_file` at the unit's credential, `work_dir`, `state_dir`), each first passed through
//! the service's `check-config` as the module's build-time check does. Ports are free loopback
//! ports instead of 8080/8081; /var/lib/… is a directory of the test.
//! When a script in checks/ changes, change its replay here.

#![allow(clippy::unwrap_used)]

mod shell;

use std::path::Path;

const PRELUDE: &str = r#"
set -e
wait_for() { for i in $(seq 300); do if eval "$1"; then return 0; fi; sleep 0.1; done; echo "timed out: $1" >&2; return 1; }
wait_port() { wait_for "(exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null"; }
mkdir -p var/lib cred
"#;

#[test]
fn checks_end_to_end_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, is) = (shell::free_port(), shell::free_port());
    let script = format!(
        r#"{PRELUDE}
SB={sb}
IS={is}
# services.paddock.switchboard: listen (default), data_dir (the node's settings).
cat > switchboard.toml <<EOF
listen = "127.0.0.1:$SB"
data_dir = "$PWD/var/lib/paddock-switchboard"
EOF
# services.paddock.imagestore.enable: the defaults (root, listen).
cat > imagestore.toml <<EOF
root = "$PWD/var/lib/paddock-imagestore"
listen = "127.0.0.1:$IS"
EOF
# services.paddock.supervisors.s1: the node's settings; token_file and work_dir by the module.
cat > s1.toml <<EOF
switchboard_url = "http://127.0.0.1:$SB"
token_file = "$PWD/cred/paddock-supervisor-s1.service/token"
work_dir = "$PWD/var/lib/paddock-supervisor-s1/work"
[images]
urls = ["http://127.0.0.1:$IS"]
[driver]
kind = "local"
EOF
paddock-switchboard check-config --no-secrets --config switchboard.toml > /dev/null
paddock-imagestore check-config --config imagestore.toml > /dev/null
paddock-supervisor check-config --no-secrets --config s1.toml > /dev/null

paddock-switchboard serve --config switchboard.toml > switchboard.out 2> switchboard.log &
echo $! >> pids
paddock-imagestore serve --config imagestore.toml > imagestore.out 2> imagestore.log &
echo $! >> pids
# machine.wait_for_unit / wait_for_open_port
wait_port $SB
wait_port $IS
# The first admin, straight in the database, while the switchboard runs.
admin=$(paddock-switchboard user add admin --privilege admin --data-dir var/lib/paddock-switchboard | tail -1)
export PADDOCK_URL=http://127.0.0.1:$SB PADDOCK_TOKEN=$admin
token=$(paddock supervisor add s1 --site lab --tags board:demo | tail -1)
mkdir -p cred/paddock-supervisor-s1.service && echo $token > cred/paddock-supervisor-s1.service/token
# systemctl restart paddock-supervisor-s1.service
paddock-supervisor run --config s1.toml > s1.out 2> s1.log &
echo $! >> pids
wait_for "paddock supervisor list --json | grep -q '\"connected\": true'"
printf '#!/bin/sh\necho hello from the job\n' > hello.sh && chmod +x hello.sh
image=$(paddock image import hello.sh --label hello --store var/lib/paddock-imagestore | tail -1)
job=$(paddock job enqueue $image --tags board:demo)
timeout 120 paddock job watch $job > watch.out
echo replayed
"#
    );
    let out = shell::run(dir.path(), &script);
    finish(
        dir.path(),
        &out,
        &["switchboard.log", "imagestore.log", "s1.log"],
    );
    let watch = std::fs::read_to_string(dir.path().join("watch.out")).unwrap();
    assert!(watch.contains("workload_finished_success"), "{watch}");
}

#[test]
fn checks_deploy_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let sb = shell::free_port();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deployments");
    let script = format!(
        r#"{PRELUDE}
SB={sb}
EX={examples}
T=$PWD/var/lib/paddock-test
cat > switchboard.toml <<EOF
listen = "127.0.0.1:$SB"
data_dir = "$PWD/var/lib/paddock-switchboard"
EOF
# services.paddock.deploy: the node's settings; token_file and state_dir by the module.
cat > deploy.toml <<EOF
switchboard_url = "http://127.0.0.1:$SB"
repo = "$T/deployments.git"
poll_interval_s = 1
token_file = "$PWD/cred/paddock-deploy.service/token"
state_dir = "$PWD/var/lib/paddock-deploy"
EOF
paddock-switchboard check-config --no-secrets --config switchboard.toml > /dev/null
paddock-deploy check-config --no-secrets --config deploy.toml > /dev/null

paddock-switchboard serve --config switchboard.toml > switchboard.out 2> switchboard.log &
echo $! >> pids
wait_port $SB
admin=$(paddock-switchboard user add admin --privilege admin --data-dir var/lib/paddock-switchboard | tail -1)
mkdir -p $T && echo $admin > $T/admin-token
git init -q --bare -b main $T/deployments.git && chmod -R a+rX $T
cp -r $EX w && chmod -R u+w w && cd w && git init -q -b main \
  && git add -A && git -c user.name=t -c user.email=t@example.org commit -qm lab1 \
  && git push -q $T/deployments.git main && cd ..
# LoadCredential=token:$T/admin-token, then systemctl restart paddock-deploy.service
mkdir -p cred/paddock-deploy.service && cp $T/admin-token cred/paddock-deploy.service/token
paddock-deploy serve --config deploy.toml > deploy.out 2> deploy.log &
echo $! >> pids
export PADDOCK_URL=http://127.0.0.1:$SB PADDOCK_TOKEN=$admin
wait_for "paddock supervisor list --json | grep -q lab1-nrf52"
cd w && printf '  - id: 0192f3a0-0000-7000-8000-000000000004\n    name: lab1-local-3\n    kind: local\n' \
  >> db/sites/lab1.yaml && git -c user.name=t -c user.email=t@example.org commit -qam add \
  && git push -q $T/deployments.git main && cd ..
wait_for "paddock supervisor list --json | grep -q lab1-local-3"
echo replayed
"#,
        examples = examples.display(),
    );
    let out = shell::run(dir.path(), &script);
    finish(dir.path(), &out, &["switchboard.log", "deploy.log"]);
}

/// Stops what the script started, then asserts it got to its end.
fn finish(dir: &Path, out: &std::process::Output, logs: &[&str]) {
    let pids = std::fs::read_to_string(dir.join("pids")).unwrap_or_default();
    for pid in pids.split_whitespace() {
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    let mut shown = String::new();
    for l in logs {
        let text = std::fs::read_to_string(dir.join(l)).unwrap_or_default();
        shown.push_str(&format!("--- {l}\n{text}\n"));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("replayed"),
        "{out:?}\n{shown}"
    );
}
