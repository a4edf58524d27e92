//! The deployments repo reached the ways the NixOS deploy module (nixos-modules/deploy.nix)
//! sets up, with the real binaries: fetched with gix over ssh from a real sshd on loopback
//! through the module's `GIT_SSH_COMMAND` (evaluated from nixos-modules/settings.nix by Nix;
//! its deploy key and pinned known_hosts; trust on
//! first use when no known hosts are given; an unknown host key refused), and a local repo
//! owned by another user read in place (the unit's DynamicUser reading an operator's repo, and
//! root reading it with activation on).

#![allow(clippy::unwrap_used)]

mod shell;
#[allow(dead_code)]
#[path = "../../audit/tests/common/sshd.rs"]
mod sshd;

use std::path::Path;

#[test]
fn the_deploy_module_s_ways_to_the_repo() {
    let sshd = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let port = shell::free_port();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deployments");
    let script = format!(
        r#"
set -e
PORT={port}
SSH_PORT={ssh_port}
KEY={key}
KNOWN={known}
USER_AT={user}@127.0.0.1
G="git -c user.name=t -c user.email=t@example.org"
wait_for() {{ for i in $(seq 150); do if eval "$1"; then return 0; fi; sleep 0.1; done; echo "timed out: $1" >&2; return 1; }}
names() {{ paddock supervisor list --json | jq -r '[.supervisors[].name] | sort | join(" ")'; }}
# GIT_SSH_COMMAND as nixos-modules/deploy.nix sets it (pinned known hosts, or trust on first
# use), evaluated by Nix; the unit's paths (credential, state directory) become the test's.
nix_ssh() {{ nix-instantiate --eval --strict --json -E "(import {root}/nixos-modules/settings.nix).deploySshCommand {{ knownHostsFile = $1; }}" | jq -r . \
  | sed "s#/run/credentials/paddock-deploy.service/ssh-key#$KEY#; s#/var/lib/paddock-deploy/#$PWD/state/#"; }}
pinned=$(nix_ssh "\"$KNOWN\"")
tofu=$(nix_ssh null)
echo "$pinned" > pinned.cmd
echo "$tofu" > tofu.cmd
export XDG_CACHE_HOME=$PWD/cache

git init -q --bare -b main R.git
mkdir W && cp -r {examples}/. W/ && cd W && git init -q -b main && git add -A && $G commit -qm init && git push -q ../R.git main && cd ..
paddock up --data-dir D --listen 127.0.0.1:$PORT > up.out 2> up.err &
echo $! > up.pid
wait_for "grep -q '^PADDOCK_TOKEN=' up.out"
export $(cat up.out)

# ssh:// with a port, the server's key pinned.
GIT_SSH_COMMAND="$pinned" paddock deploy apply ssh://$USER_AT:$SSH_PORT$PWD/R.git > pinned.out 2> pinned.err
names > names1

# A host key not in the pinned known_hosts: refused, nothing applied.
cd W && printf '  - id: 0192f3a0-0000-7000-8000-000000000004\n    name: lab1-local-3\n    kind: local\n' >> db/sites/lab1.yaml && $G commit -qam add && git push -q ../R.git main && cd ..
: > empty_known_hosts
if GIT_SSH_COMMAND="ssh -i $KEY -o UserKnownHostsFile=$PWD/empty_known_hosts -o StrictHostKeyChecking=yes" \
   paddock deploy apply ssh://$USER_AT:$SSH_PORT$PWD/R.git > unknown.out 2> unknown.err; then exit 1; fi
names > names2

# No known hosts given: the first key is kept (scp-like address, the port from ssh options).
mkdir state
GIT_SSH_COMMAND="$tofu -o Port=$SSH_PORT" paddock deploy apply $USER_AT:$PWD/R.git > tofu.out 2> tofu.err
names > names3
cp state/known_hosts tofu_known_hosts
# The same commit again: already applied.
GIT_SSH_COMMAND="$tofu -o Port=$SSH_PORT" paddock deploy apply $USER_AT:$PWD/R.git 2> again.err

# A local repo owned by another user, read in place as root (activation on) ...
cd W && printf '  - id: 0192f3a0-0000-7000-8000-000000000005\n    name: lab1-local-4\n    kind: local\n' >> db/sites/lab1.yaml && $G commit -qam add4 && git push -q ../R.git main && cd ..
cp -a R.git Other.git && chown -R 65534:65534 Other.git
paddock deploy apply Other.git 2> other.err
names > names4
# ... and a root-owned repo read by an unprivileged user, as the unit's DynamicUser does.
cd W && printf '  - id: 0192f3a0-0000-7000-8000-000000000006\n    name: lab1-local-5\n    kind: local\n' >> db/sites/lab1.yaml && $G commit -qam add5 && git push -q ../R.git main && cd ..
chmod 755 . && chmod -R a+rX R.git
ln -f "$(command -v paddock)" paddock-as-nobody 2>/dev/null || cp "$(command -v paddock)" paddock-as-nobody
setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent ./paddock-as-nobody deploy apply $PWD/R.git 2> nobody.err
names > names5

kill -INT $(cat up.pid)
for i in $(seq 200); do kill -0 $(cat up.pid) 2>/dev/null || break; sleep 0.1; done
"#,
        ssh_port = sshd.port,
        key = sshd.path("id").display(),
        known = sshd.path("known_hosts").display(),
        user = sshd::Sshd::user(),
        examples = examples.display(),
        root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .unwrap()
            .display(),
    );
    let out = shell::run(dir.path(), &script);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    assert!(
        out.status.success(),
        "{out:?}\n--- paddock up\n{}\n--- sshd\n{}",
        read("up.err"),
        sshd.log()
    );
    // `paddock up` runs two supervisors of its own (local-1, local-2).
    // The commands came from Nix, with the test's paths in place of the unit's.
    assert!(
        read("pinned.cmd").contains("StrictHostKeyChecking=yes")
            && read("pinned.cmd").contains(&sshd.path("known_hosts").display().to_string()),
        "{}",
        read("pinned.cmd")
    );
    assert!(
        read("tofu.cmd").contains("StrictHostKeyChecking=accept-new")
            && read("tofu.cmd").contains("/state/known_hosts"),
        "{}",
        read("tofu.cmd")
    );
    let base = "lab1-local-1 lab1-local-2 lab1-nrf52 local-1 local-2";
    // The supervisors listed after a step, and the base ones plus `more`, both sorted.
    let names = |f: &str| sorted(&read(f));
    let with = |more: &str| sorted(&format!("{base} {more}"));
    assert_eq!(names("names1"), sorted(base), "{}", read("pinned.err"));
    assert!(
        read("pinned.err").contains("deploy: applied"),
        "{}",
        read("pinned.err")
    );
    // Refused before anything was read; the reason is ssh's own.
    assert_eq!(names("names2"), sorted(base));
    let unknown = read("unknown.err");
    assert!(
        unknown.contains("Host key verification failed"),
        "{unknown}"
    );
    assert_eq!(names("names3"), with("lab1-local-3"));
    // The key kept on first use is the server's.
    let host_key = read_key(&sshd.path("host_key.pub"));
    assert!(
        read("tofu_known_hosts").contains(&host_key),
        "{}",
        read("tofu_known_hosts")
    );
    assert!(
        read("again.err").contains("is already applied"),
        "{}",
        read("again.err")
    );
    assert_eq!(
        names("names4"),
        with("lab1-local-3 lab1-local-4"),
        "{}",
        read("other.err")
    );
    assert_eq!(
        names("names5"),
        with("lab1-local-3 lab1-local-4 lab1-local-5"),
        "{}",
        read("nobody.err")
    );
}

/// The base64 key of an OpenSSH public key file.
fn read_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

fn sorted(words: &str) -> Vec<String> {
    let mut v: Vec<String> = words.split_whitespace().map(String::from).collect();
    v.sort();
    v
}
