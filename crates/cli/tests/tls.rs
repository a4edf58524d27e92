//! Issue 18 (servers): `paddock-switchboard serve` with `[tls]`, with certificates made at test
//! time (rcgen): curl trusting the test CA is served over HTTPS, plain HTTP gets nothing, and
//! `check-config` reads the pair (or says it did not) and refuses a key of another certificate,
//! naming the file.

#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A CA, and server certificates for localhost/127.0.0.1 signed by it: `ca.pem`, then
/// `server.crt`/`server.key` and `other.crt`/`other.key` in `dir`.
fn certificates(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: a leaf whose issuer name equals its own looks self-signed to OpenSSL.
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "paddock test CA");
    let ca = p.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for stem in ["server", "other"] {
        let key = KeyPair::generate().unwrap();
        let p =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join(format!("{stem}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
    }
}

/// Starts `cmd` (stdout discarded, stderr read) and returns it with the first line of its
/// standard error that starts with `prefix`. Its standard error is read on after that: a
/// closed pipe would end the server at its next log line.
fn spawn_until(mut cmd: Command, prefix: &str) -> (std::process::Child, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}"));
    std::thread::spawn(move || lines.for_each(drop));
    (child, line)
}

fn switchboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_paddock-switchboard"))
}

#[test]
fn the_switchboard_serves_https_with_its_tls_section() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    // Relative paths: from the configuration file's directory.
    std::fs::write(
        d.join("sb.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[tls]\ncert_file = \"server.crt\"\nkey_file = \"server.key\"\n",
            d.join("data").display()
        ),
    )
    .unwrap();
    let check = switchboard()
        .args(["check-config", "--config"])
        .arg(d.join("sb.toml"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        out.contains("tls = ") && out.contains("(read, and they match)"),
        "{out}"
    );

    let mut cmd = switchboard();
    cmd.args(["serve", "--config"]).arg(d.join("sb.toml"));
    let (mut child, line) = spawn_until(cmd, "paddock-switchboard: serving on ");
    let url = line["paddock-switchboard: serving on ".len()..].to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let port = url.rsplit(':').next().unwrap().to_string();
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args)
            .output()
            .unwrap()
    };
    let ok = curl(&[
        "--cacert",
        &d.join("ca.pem").display().to_string(),
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        &format!("https://localhost:{port}/healthz"),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Not trusted without the CA; plain HTTP gets no answer.
    let untrusted = curl(&[&format!("https://127.0.0.1:{port}/healthz")]);
    assert!(!untrusted.status.success());
    let plain = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert!(
        !plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stdout)
    );
    let _ = child.kill();
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn check_config_refuses_a_key_of_another_certificate_and_can_skip_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    std::fs::write(
        d.join("sb.toml"),
        "[tls]\ncert_file = \"server.crt\"\nkey_file = \"other.key\"\n",
    )
    .unwrap();
    let bad = switchboard()
        .args(["check-config", "--config"])
        .arg(d.join("sb.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("tls:") && err.contains("other.key") && err.contains("does not match"),
        "{err}"
    );
    let skipped = switchboard()
        .args(["check-config", "--no-secrets", "--config"])
        .arg(d.join("sb.toml"))
        .output()
        .unwrap();
    assert!(skipped.status.success());
    assert!(String::from_utf8_lossy(&skipped.stdout).contains("(not read)"));
}

#[test]
fn the_image_store_serves_https_with_its_tls_section() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    std::fs::write(
        d.join("is.toml"),
        "root = \"store\"\nlisten = \"127.0.0.1:0\"\n[tls]\ncert_file = \"server.crt\"\nkey_file = \"server.key\"\n",
    )
    .unwrap();
    let imagestore = || Command::new(env!("CARGO_BIN_EXE_paddock-imagestore"));
    let check = imagestore()
        .args(["check-config", "--config"])
        .arg(d.join("is.toml"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(out.contains("(read, and they match)"), "{out}");

    let mut cmd = imagestore();
    cmd.args(["serve", "--config"]).arg(d.join("is.toml"));
    let (mut child, line) = spawn_until(cmd, "paddock-imagestore: serving ");
    let url = line.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{line}");
    let port = url.rsplit(':').next().unwrap().to_string();
    let ok = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(d.join("ca.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/all.txt"))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/all.txt"))
        .output()
        .unwrap();
    assert!(!plain.status.success());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_deploy_webhook_serves_https_with_its_tls_section() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(d.join("token"), "pdk_x\n").unwrap();
    std::fs::write(d.join("secret"), "s3cret\n").unwrap();
    std::fs::write(
        d.join("deploy.toml"),
        format!(
            "switchboard_url = \"http://127.0.0.1:9\"\ntoken_file = \"token\"\nrepo = \"repo\"\nstate_dir = \"state\"\nlisten = \"127.0.0.1:{port}\"\nwebhook_secret_file = \"secret\"\npoll_interval_s = 3600\n[tls]\ncert_file = \"server.crt\"\nkey_file = \"server.key\"\n"
        ),
    )
    .unwrap();
    let deploy = || Command::new(env!("CARGO_BIN_EXE_paddock-deploy"));
    let check = deploy()
        .args(["check-config", "--config"])
        .arg(d.join("deploy.toml"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        out.contains(&format!("webhook: https://127.0.0.1:{port}/hooks/push")),
        "{out}"
    );

    let mut cmd = deploy();
    cmd.args(["serve", "--config"]).arg(d.join("deploy.toml"));
    let (mut child, line) = spawn_until(cmd, "paddock-deploy: webhook on ");
    assert!(line.contains("https://"), "{line}");
    // An unsigned push is refused (401), over TLS.
    let code = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(d.join("ca.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-X", "POST", "--data", "{}"])
        .arg(format!("https://localhost:{port}/hooks/push"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&code.stdout),
        "401",
        "{}",
        String::from_utf8_lossy(&code.stderr)
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_audit_report_page_serves_https_with_tls_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    std::fs::write(
        d.join("report.json"),
        r#"{"format":"paddock-audit/1","host":"tls-test-host","summary":{"verdict":"PASSED"}}"#,
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock-audit"));
    cmd.arg("serve")
        .arg("--report")
        .arg(d.join("report.json"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(d.join("server.crt"))
        .arg("--tls-key")
        .arg(d.join("server.key"));
    let (mut child, line) = spawn_until(cmd, "paddock-audit: serving ");
    assert!(line.contains("https://"), "{line}");
    let page = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(d.join("ca.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .unwrap();
    assert!(
        page.status.success(),
        "{}",
        String::from_utf8_lossy(&page.stderr)
    );
    assert!(String::from_utf8_lossy(&page.stdout).contains("tls-test-host"));
    let _ = child.kill();
    let _ = child.wait();
    // A key without its certificate is refused by the flags.
    let bad = Command::new(env!("CARGO_BIN_EXE_paddock-audit"))
        .args(["serve", "--tls-key"])
        .arg(d.join("server.key"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
