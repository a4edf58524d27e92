//! What the deployments repo says about a site reaches its running supervisors: a supervisor
//! whose own configuration names no image store fetches its jobs' images from the stores its
//! site lists in `db/sites/<site>.yaml`, and follows a pushed change of that list without a
//! restart. Real binaries: switchboard, deploy daemon, two image store servers, a supervisor
//! with the example token its host key decrypts from secrets/.

#![allow(clippy::unwrap_used)]

mod shell;

use std::path::Path;

#[test]
fn a_supervisor_fetches_from_its_site_s_image_stores() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let (sb, is1, is2) = (shell::free_port(), shell::free_port(), shell::free_port());
    let script = format!(
        r##"
set -e
ROOT={root}
G="git -c user.name=t -c user.email=t@example.org"
wait_for() {{ for i in $(seq 300); do if eval "$1"; then return 0; fi; sleep 0.1; done; echo "timed out: $1" >&2; return 1; }}
code() {{ set +e; "$@"; echo $?; set -e; }}
bg() {{ local name=$1; shift; "$@" > $name.out 2> $name.log & echo $! >> pids; }}
connected() {{ paddock supervisor list --json | jq -e '.supervisors[] | select(.name == "lab1-local-1") | .connected' > /dev/null; }}

# Two image store servers, each with an image the other lacks.
printf '#!/bin/sh\necho hello from the first store\n' > one.sh
printf '#!/bin/sh\necho hello from the second store\n' > two.sh
chmod +x one.sh two.sh
ONE=$(paddock image import one.sh --label one --store S1 | tail -1)
TWO=$(paddock image import two.sh --label two --store S2 | tail -1)
bg is1 paddock-imagestore serve --root S1 --listen 127.0.0.1:{is1}
bg is2 paddock-imagestore serve --root S2 --listen 127.0.0.1:{is2}

# The deployments repo: site lab1's image store is the first server.
git init -q --bare -b main R.git
mkdir W && cp -r $ROOT/examples/deployments/. W/ && cd W
sed -i 's#http://127.0.0.1:8081#http://127.0.0.1:{is1}#' db/sites/lab1.yaml
git init -q -b main && git add -A && $G commit -qm init && git push -q ../R.git main && cd ..

# The switchboard and the deploy daemon applying the repo.
printf 'listen = "127.0.0.1:{sb}"\ndata_dir = "%s/D"\n' "$PWD" > switchboard.toml
bg switchboard paddock-switchboard serve --config switchboard.toml
wait_for "curl -sf http://127.0.0.1:{sb}/healthz > /dev/null"
paddock-switchboard user add admin --privilege admin --data-dir D | tail -1 > admin.token
export PADDOCK_URL=http://127.0.0.1:{sb} PADDOCK_TOKEN=$(cat admin.token)
printf 'switchboard_url = "%s"\ntoken_file = "%s/admin.token"\nrepo = "%s/R.git"\npoll_interval_s = 1\nstate_dir = "%s/deploy"\n' \
  "$PADDOCK_URL" "$PWD" "$PWD" "$PWD" > deploy.toml
bg deploy paddock-deploy serve --config deploy.toml
wait_for "paddock supervisor list --json | grep -q lab1-local-1"

# Supervisor lab1-local-1: its token from its .age file, no image store of its own.
install -m 600 $ROOT/secrets/example-keys/site-example host.key
age --decrypt -i host.key $ROOT/secrets/supervisor-lab1-local-1.age > s.token
printf 'switchboard_url = "%s"\ntoken_file = "%s/s.token"\nwork_dir = "%s/work"\n[driver]\nkind = "local"\n' \
  "$PADDOCK_URL" "$PWD" "$PWD" > s.toml
bg supervisor paddock-supervisor run --config s.toml
wait_for connected

# Jobs come from user ci (the repo's instance ACL lets submit_jobs holders use lab1).
CI_TOKEN=$(paddock-switchboard user token ci --data-dir D | tail -1)
enqueue() {{ PADDOCK_TOKEN=$CI_TOKEN paddock job enqueue "$@"; }}
watch() {{ PADDOCK_TOKEN=$CI_TOKEN timeout 60 paddock job watch "$@"; }}
# Only the site's store has the image.
J1=$(enqueue $ONE --tags site:lab1)
watch $J1 > one.watch
J2=$(enqueue $TWO --tags site:lab1)
code watch $J2 > two-before.watch

# The site moves to the second store: pushed, applied, followed without a restart.
cd W && sed -i 's#http://127.0.0.1:{is1}#http://127.0.0.1:{is2}#' db/sites/lab1.yaml \
  && $G commit -qam "lab1: the second image store" && git push -q ../R.git main && cd ..
wait_for "grep -q '127.0.0.1:{is2}' supervisor.log"
J3=$(enqueue $TWO --tags site:lab1)
watch $J3 > two-after.watch
echo done
"##,
        root = root.display(),
    );
    let out = shell::run(dir.path(), &script);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    let pids = read("pids");
    for pid in pids.split_whitespace() {
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("done"),
        "{out:?}\n--- supervisor\n{}\n--- deploy\n{}\n--- switchboard\n{}",
        read("supervisor.log"),
        read("deploy.log"),
        read("switchboard.log")
    );
    assert!(
        read("one.watch").contains("workload_finished_success"),
        "{}",
        read("one.watch")
    );
    // Before the push the site's store did not have the second image: the job failed.
    let before = read("two-before.watch");
    assert_ne!(before.lines().last(), Some("0"), "{before}");
    assert!(!before.contains("workload_finished_success"), "{before}");
    assert!(
        read("two-after.watch").contains("workload_finished_success"),
        "{}",
        read("two-after.watch")
    );
    // One supervisor process all along.
    assert_eq!(read("supervisor.log").matches("config applied").count(), 2);
}
