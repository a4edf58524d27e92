//! The audit over SSH against a real sshd on a loopback port: commands, files, directories,
//! links; the whole collect and a baseline check; host keys unknown, changed, or not checked;
//! a key that is not authorized.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::sshd::Sshd;
use paddock_audit::host::{Host, HostError, Local};
use paddock_audit::ssh::{Ssh, SshError, Target};

fn target(s: &Sshd) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port: s.port,
        user: Sshd::user(),
        identity: Some(s.path("id")),
        known_hosts: Some(s.path("known_hosts")),
        no_host_key_check: false,
        connect_timeout: Duration::from_secs(10),
    }
}

#[test]
fn commands_files_and_a_whole_audit_over_ssh() {
    let s = Sshd::start();
    let ssh = Ssh::connect(&target(&s)).unwrap_or_else(|e| panic!("{e}\n{}", s.log()));
    assert_eq!(
        ssh.describe(),
        format!("{}@127.0.0.1:{}", Sshd::user(), s.port)
    );
    let t = Duration::from_secs(10);
    // Arguments reach the remote program intact, whatever they contain.
    let out = ssh
        .run("printf", &["%s|%s", "a b'c", "$(echo no)"], t)
        .unwrap();
    assert_eq!(out.stdout_text(), "a b'c|$(echo no)");
    let out = ssh.run("sh", &["-c", "echo err >&2; exit 3"], t).unwrap();
    assert_eq!(
        (out.status, out.complaint()),
        (Some(3), "exit 3: err".to_string())
    );
    assert_eq!(
        ssh.run("paddock-no-such-tool", &[], t),
        Err(HostError::NotFound("paddock-no-such-tool".into()))
    );
    assert!(matches!(
        ssh.run("sleep", &["5"], Duration::from_secs(1)),
        Err(HostError::Timeout { .. })
    ));
    // The connection is still usable after a timeout.
    let again = Ssh::connect(&target(&s)).unwrap();
    assert_eq!(
        again.read_text("/proc/sys/kernel/osrelease"),
        Local.read_text("/proc/sys/kernel/osrelease")
    );
    assert!(matches!(
        again.read("/nonexistent/file"),
        Err(HostError::NotFound(_))
    ));
    assert!(
        again
            .list("/proc/self")
            .unwrap()
            .contains(&"status".to_string())
    );
    assert!(again.exists("/proc/self/status") && !again.exists("/nonexistent"));
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("../../target-name", dir.path().join("l")).unwrap();
    assert_eq!(
        again.link(dir.path().join("l").to_str().unwrap()).unwrap(),
        "../../target-name"
    );

    // The whole audit, over SSH, agrees with the local one on what they both see.
    let remote = paddock_audit::report::collect(
        Arc::new(again),
        paddock_audit::collectors::all(),
        Duration::from_secs(60),
    );
    let local = paddock_audit::report::collect(
        Arc::new(Local),
        paddock_audit::collectors::all(),
        Duration::from_secs(60),
    );
    assert!(remote.host.ends_with(&format!("127.0.0.1:{}", s.port)));
    for c in ["cpu", "memory", "kernel", "network", "storage"] {
        assert_eq!(
            remote.collectors[c].status, local.collectors[c].status,
            "{c}: {:?}",
            remote.collectors[c]
        );
    }
    assert_eq!(
        remote.hardware["kernel"]["release"],
        local.hardware["kernel"]["release"]
    );
    assert_eq!(
        remote.hardware["cpu"]["model"],
        local.hardware["cpu"]["model"]
    );
    assert_eq!(remote.identity.machine_id, local.identity.machine_id);
    assert_eq!(remote.identity.macs, local.identity.macs);

    // A baseline checked over SSH.
    let marker = dir.path().join("marker");
    std::fs::write(&marker, "ready\n").unwrap();
    let checks = paddock_audit::check::baseline::load(
        "b.yaml",
        &format!("checks:\n  - {{name: m, kind: file_contains, path: \"{}\", text: ready}}\n  - {{name: lo, kind: interface_has_address, interface: lo, address: 127.0.0.1}}\n", marker.display()),
    )
    .unwrap();
    let ssh = Ssh::connect(&target(&s)).unwrap();
    let results = paddock_audit::check::run(&ssh, &checks);
    assert!(results.iter().all(|r| r.status == "PASS"), "{results:?}");
}

#[test]
fn host_keys_and_authentication() {
    let s = Sshd::start();
    // Unknown host.
    std::fs::write(s.path("empty_known_hosts"), "").unwrap();
    let t = Target {
        known_hosts: Some(s.path("empty_known_hosts")),
        ..target(&s)
    };
    let e = Ssh::connect(&t).err().unwrap();
    assert!(matches!(e, SshError::HostKey { .. }), "{e}");
    assert!(e.to_string().contains("is not known"), "{e}");
    // A different key recorded for this host: refused, always.
    let other = std::fs::read_to_string(s.path("other_id.pub")).unwrap();
    let mut w = other.split_whitespace();
    let (kind, key) = (w.next().unwrap(), w.next().unwrap());
    std::fs::write(
        s.path("wrong_known_hosts"),
        format!("[127.0.0.1]:{} {kind} {key}\n", s.port),
    )
    .unwrap();
    let t = Target {
        known_hosts: Some(s.path("wrong_known_hosts")),
        ..target(&s)
    };
    let e = Ssh::connect(&t).err().unwrap();
    assert!(e.to_string().contains("DOES NOT MATCH"), "{e}");
    // Told not to check: connects.
    let t = Target {
        known_hosts: Some(s.path("empty_known_hosts")),
        no_host_key_check: true,
        ..target(&s)
    };
    assert!(Ssh::connect(&t).is_ok());
    // A key the server does not authorize.
    let t = Target {
        identity: Some(s.path("other_id")),
        ..target(&s)
    };
    let e = Ssh::connect(&t).err().unwrap();
    assert!(matches!(e, SshError::Auth { .. }), "{e}");
    // Nobody listening: a port just bound and released (port 1 is not sure to be closed: a
    // process running as root may listen there).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Target {
        port: closed,
        ..target(&s)
    };
    assert!(matches!(
        Ssh::connect(&t).err().unwrap(),
        SshError::Connect { .. }
    ));
}
