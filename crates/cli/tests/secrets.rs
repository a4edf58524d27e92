//! The secrets conventions of `secrets/` (docs/nix.md) with the real binaries, a real bare
//! deployments repo and `age`: a site server's supervisor connects with the token its host key
//! decrypts from `secrets/supervisor-lab1-local-1.age`, and the rotation the guide describes —
//! `paddock supervisor token new`, the token into the `.age` file (`secrets/encrypt`, what
//! `agenix -e` does), the hash into the YAML, one push — locks the old token out and lets the
//! new one in.

#![allow(clippy::unwrap_used)]

mod shell;

use std::path::Path;

#[test]
fn a_supervisor_token_from_its_age_file_and_its_rotation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = shell::free_port();
    let script = format!(
        r#"
set -e
ROOT={root}
PORT={port}
G="git -c user.name=t -c user.email=t@example.org"
wait_for() {{ for i in $(seq 200); do if eval "$1"; then return 0; fi; sleep 0.1; done; echo "timed out: $1" >&2; return 1; }}
connected() {{ paddock supervisor list --json | jq -e '.supervisors[] | select(.name == "lab1-local-1") | .connected' > /dev/null; }}

# The site server's host key (an example key, committed on purpose) and a copy of secrets/.
install -m 600 $ROOT/secrets/example-keys/site-example host.key
cp -r $ROOT/secrets S
age --decrypt -i host.key S/supervisor-lab1-local-1.age > old.token

git init -q --bare -b main R.git
mkdir W && cp -r $ROOT/examples/deployments/. W/ && cd W && git init -q -b main && git add -A && $G commit -qm init && git push -q ../R.git main && cd ..
paddock up --data-dir D --listen 127.0.0.1:$PORT --deployments R.git > up.out 2> up.err &
echo $! > up.pid
wait_for "grep -q '^PADDOCK_TOKEN=' up.out"
export $(cat up.out)
wait_for "paddock supervisor list --json | grep -q lab1-local-1"

run_supervisor() {{
  cat > $1.toml <<EOF
switchboard_url = "http://127.0.0.1:$PORT"
token_file = "$PWD/$1.token"
work_dir = "$PWD/$1.work"
[driver]
kind = "local"
EOF
  paddock-supervisor run --config $1.toml > $1.log 2>&1 &
  echo $! > $1.pid
}}
stop() {{ kill $(cat $1.pid); wait $(cat $1.pid) 2>/dev/null || true; }}

# The token decrypted from the .age file is the one whose hash the repo declares.
cp old.token s1.token
run_supervisor s1
wait_for connected

# Rotation, as docs/nix.md says.
paddock supervisor token new > new.token 2> new.err
hash=$(sed -n 's/^ *token_sha256: //p' new.err)
old=$(sha256sum < old.token | cut -d' ' -f1)
S/encrypt supervisor-lab1-local-1.age < new.token 2> encrypt.err
cd W && sed -i "s/token_sha256: $old/token_sha256: $hash/" db/sites/lab1.yaml && $G commit -qam rotate && git push -q ../R.git main && cd ..
wait_for "paddock deploy status --json | jq -e '.generation == 2' > /dev/null"
# A running supervisor keeps its connection; a reconnect needs the new token.
connected
stop s1
wait_for "! connected"

# The old token is refused...
cp old.token s2.token
run_supervisor s2
wait_for "grep -q 'is the supervisor token right' s2.log"
connected && exit 1
stop s2
# ...and the host decrypts the new one from the re-encrypted file and connects with it.
age --decrypt -i host.key S/supervisor-lab1-local-1.age > s3.token
cmp s3.token new.token
run_supervisor s3
wait_for connected
stop s3

kill -INT $(cat up.pid)
for i in $(seq 200); do kill -0 $(cat up.pid) 2>/dev/null || break; sleep 0.1; done
echo rotated
"#,
        root = root.display(),
    );
    let out = shell::run(dir.path(), &script);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("rotated"),
        "{out:?}\n--- paddock up\n{}\n--- s1\n{}\n--- s2\n{}\n--- s3\n{}",
        read("up.err"),
        read("s1.log"),
        read("s2.log"),
        read("s3.log"),
    );
    // The re-encrypted file is for exactly the recipients secrets.nix lists.
    assert!(
        read("encrypt.err")
            .contains("wrote secrets/supervisor-lab1-local-1.age for 2 recipient(s)"),
        "{}",
        read("encrypt.err")
    );
    let switchboard_key = dir.path().join("swb.key");
    std::fs::copy(
        root.join("secrets/example-keys/switchboard-example"),
        &switchboard_key,
    )
    .unwrap();
    let other = std::process::Command::new("age")
        .arg("--decrypt")
        .arg("-i")
        .arg(&switchboard_key)
        .arg(dir.path().join("S/supervisor-lab1-local-1.age"))
        .output()
        .unwrap();
    assert!(!other.status.success(), "{other:?}");
    // The token never reaches a log.
    let token = read("new.token");
    for f in ["up.err", "s3.log", "encrypt.err"] {
        assert!(!read(f).contains(token.trim()), "{f} shows the token");
    }
}
