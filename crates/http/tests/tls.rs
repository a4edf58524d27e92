//! TLS serving with certificates made at test time (rcgen): a client that trusts the test CA
//! is served; one that trusts another CA, asks for another name, or meets an expired
//! certificate is refused by its own verification; certificate files replaced on disk are
//! used by new connections while an established one goes on; unusable files are refused at
//! start, naming the file.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use paddock_http::{Limits, TlsError, TlsFiles, TlsServer, serve_with};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A server certificate for `names` signed by `ca`, written as `<stem>.crt`/`<stem>.key`
/// (chain: the certificate, then the CA). `expired` makes it valid only in 2019.
fn server_cert(ca: &Ca, dir: &Path, stem: &str, names: &[&str], expired: bool) -> TlsFiles {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, stem.to_string());
    if expired {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2019, 12, 31);
    }
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let files = TlsFiles {
        cert_file: dir.join(format!("{stem}.crt")),
        key_file: dir.join(format!("{stem}.key")),
    };
    std::fs::write(&files.cert_file, cert.pem() + &ca.cert.pem()).unwrap();
    std::fs::write(&files.key_file, key.serialize_pem()).unwrap();
    files
}

async fn start(tls: TlsServer) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "hello over tls" }));
    tokio::spawn(serve_with(
        listener,
        router,
        Limits::default(),
        Some(tls),
        std::future::pending(),
    ));
    addr
}

fn connector(trusted: &Ca) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(paddock_http::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type Stream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(addr: std::net::SocketAddr, trusted: &Ca, name: &str) -> std::io::Result<Stream> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        connector(trusted).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// One GET / on a kept-alive connection; the answer's body.
async fn get_once(s: &mut Stream) -> String {
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&buf).ends_with("hello over tls") {
            return String::from_utf8_lossy(&buf).into_owned();
        }
    }
}

fn peer_cert(s: &Stream) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn a_client_trusting_the_ca_is_served_and_others_are_refused_by_name_ca_and_date() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca("test ca");
    let other = ca("another ca");
    let files = server_cert(
        &ca1,
        dir.path(),
        "server",
        &["localhost", "127.0.0.1"],
        false,
    );
    let addr = start(TlsServer::new(files).unwrap()).await;

    let mut s = connect(addr, &ca1, "localhost").await.unwrap();
    let answer = get_once(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let version = s.get_ref().1.protocol_version().unwrap();
    assert!(
        matches!(
            version,
            rustls::ProtocolVersion::TLSv1_3 | rustls::ProtocolVersion::TLSv1_2
        ),
        "{version:?}"
    );
    // By IP address too (the certificate names it).
    assert!(connect(addr, &ca1, "127.0.0.1").await.is_ok());

    let e = connect(addr, &other, "localhost").await.unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    let e = connect(addr, &ca1, "wrong.example").await.unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");

    let old = server_cert(&ca1, dir.path(), "old", &["localhost"], true);
    let addr = start(TlsServer::new(old).unwrap()).await;
    let e = connect(addr, &ca1, "localhost").await.unwrap_err();
    assert!(e.to_string().contains("certificate expired"), "{e}");
}

#[tokio::test]
async fn replaced_certificate_files_serve_new_connections_while_an_established_one_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca("test ca");
    let files = server_cert(&ca1, dir.path(), "server", &["localhost"], false);
    let addr = start(TlsServer::new(files.clone()).unwrap()).await;
    let mut first = connect(addr, &ca1, "localhost").await.unwrap();
    get_once(&mut first).await;
    let before = peer_cert(&first);

    // A renewal: new files written over the old ones (renamed into place, as ACME clients do).
    let renewed = server_cert(&ca1, dir.path(), "renewed", &["localhost"], false);
    std::fs::rename(&renewed.cert_file, &files.cert_file).unwrap();
    std::fs::rename(&renewed.key_file, &files.key_file).unwrap();
    tokio::time::sleep(paddock_http::tls::RELOAD_CHECK + Duration::from_millis(200)).await;

    let mut second = connect(addr, &ca1, "localhost").await.unwrap();
    // The first handshake after the change may be the one that notices it: ask until seen.
    let mut after = peer_cert(&second);
    for _ in 0..20 {
        if after != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        second = connect(addr, &ca1, "localhost").await.unwrap();
        after = peer_cert(&second);
    }
    assert_ne!(after, before, "new connections get the renewed certificate");
    get_once(&mut second).await;
    // The established connection still works, with the certificate it began with.
    get_once(&mut first).await;
    assert_eq!(peer_cert(&first), before);

    // Files replaced by a pair that does not match: the last good one stays in use.
    let third = server_cert(&ca1, dir.path(), "third", &["localhost"], false);
    std::fs::copy(&third.cert_file, &files.cert_file).unwrap();
    tokio::time::sleep(paddock_http::tls::RELOAD_CHECK + Duration::from_millis(200)).await;
    let mut s = connect(addr, &ca1, "localhost").await.unwrap();
    get_once(&mut s).await;
    assert_eq!(peer_cert(&s), after, "a mismatched pair is not used");
}

#[tokio::test]
async fn a_plain_http_client_or_a_silent_one_gets_no_service_and_no_hang() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca("test ca");
    let files = server_cert(&ca1, dir.path(), "server", &["localhost"], false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    tokio::spawn(serve_with(
        listener,
        Router::new().route("/", get(|| async { "x" })),
        limits,
        Some(TlsServer::new(files).unwrap()),
        std::future::pending(),
    ));
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf))
        .await
        .expect("the server closes a plain HTTP connection");
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));
    // A client that connects and says nothing is dropped after the header timeout.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut buf))
        .await
        .expect("a silent client is dropped")
        .unwrap();
}

#[test]
fn unusable_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca("test ca");
    let good = server_cert(&ca1, dir.path(), "server", &["localhost"], false);
    let other = server_cert(&ca1, dir.path(), "other", &["localhost"], false);
    let err = |files: TlsFiles| TlsServer::new(files).unwrap_err();

    let missing = TlsFiles {
        cert_file: dir.path().join("nope.crt"),
        ..good.clone()
    };
    let e = err(missing);
    assert!(
        matches!(e, TlsError::Read { .. }) && e.to_string().contains("nope.crt"),
        "{e}"
    );

    let not_pem = dir.path().join("junk.crt");
    std::fs::write(&not_pem, "hello").unwrap();
    let e = err(TlsFiles {
        cert_file: not_pem,
        ..good.clone()
    });
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");

    let e = err(TlsFiles {
        key_file: good.cert_file.clone(),
        ..good.clone()
    });
    assert!(matches!(e, TlsError::NoKey { .. }), "{e}");

    let e = err(TlsFiles {
        key_file: other.key_file.clone(),
        ..good.clone()
    });
    assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("other.key"), "{e}");

    let big = dir.path().join("big.crt");
    std::fs::write(&big, vec![b'a'; 2 * 1024 * 1024]).unwrap();
    let e = err(TlsFiles {
        cert_file: big,
        ..good
    });
    assert!(matches!(e, TlsError::TooLarge { .. }), "{e}");
}
