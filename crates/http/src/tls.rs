//! TLS for every Paddock server: rustls with TLS 1.2 and 1.3 only (ring's cipher suites), the
//! certificate chain and private key read from PEM files, and read again when either file
//! changes (an ACME renewal replacing them), for the connections that start afterwards;
//! established connections keep the certificate they began with.
//!
//! The files are checked at most once a second, at a handshake. A pair that cannot be read
//! or does not match (a renewal caught half-way: the new chain written, the old key still
//! there) leaves the last good pair in use, said in the log; it is tried again at the next
//! check.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The largest certificate chain or key file read.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;
/// How often, at most, the files are looked at for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Where a server's certificate chain and key are (`[tls]` in its configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, PEM: the server's certificate first, then intermediates.
    pub cert_file: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Why a certificate chain and key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: larger than {MAX_PEM_BYTES} bytes", .path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)", .path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: not PEM: {message}", .path.display())]
    Pem { path: PathBuf, message: String },
    #[error("{}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)", .path.display())]
    NoKey { path: PathBuf },
    #[error("{}: the private key cannot be used: {message}", .path.display())]
    Key { path: PathBuf, message: String },
    #[error("{} does not match the certificate of {}", .key.display(), .cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS set-up: {0}")]
    Setup(String),
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let read_err = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// The provider every server and client here uses: ring's.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a certificate chain and its key.
pub fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem = read_bounded(&files.cert_file)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: files.cert_file.clone(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert_file.clone(),
        });
    }
    let pem = read_bounded(&files.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: files.key_file.clone(),
        },
        e => TlsError::Pem {
            path: files.key_file.clone(),
            message: e.to_string(),
        },
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key {
            path: files.key_file.clone(),
            message: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        // A key whose public half rustls cannot compute is taken as it is (the handshake
        // fails if it is wrong); one that differs is refused.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(_) => Err(TlsError::Mismatch {
            cert: files.cert_file.clone(),
            key: files.key_file.clone(),
        }),
    }
}

/// What identifies a version of the files: modification time and length of each.
type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp(files: &TlsFiles) -> Stamp {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.modified().ok(), m.len()))
            .unwrap_or((None, 0))
    };
    [one(&files.cert_file), one(&files.key_file)]
}

/// The certificate in use, read again when the files change.
#[derive(Debug)]
struct Reloading {
    files: TlsFiles,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    current: Arc<CertifiedKey>,
    stamp: Stamp,
    checked: Instant,
}

impl Reloading {
    fn current(&self) -> Arc<CertifiedKey> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.checked.elapsed() >= RELOAD_CHECK {
            s.checked = Instant::now();
            let now = stamp(&self.files);
            if now != s.stamp {
                match load(&self.files) {
                    Ok(k) => {
                        s.current = k;
                        s.stamp = now;
                        tracing::info!(
                            cert_file = %self.files.cert_file.display(),
                            "TLS certificate changed on disk: new connections use the new one"
                        );
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "TLS certificate files changed but cannot be used; keeping the last good pair"
                    ),
                }
            }
        }
        s.current.clone()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A server's TLS: the acceptor for its connections.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: tokio_rustls::TlsAcceptor,
    files: TlsFiles,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("files", &self.files)
            .finish()
    }
}

impl TlsServer {
    /// Reads the files now (a server does not start with a pair it cannot use).
    pub fn new(files: TlsFiles) -> Result<TlsServer, TlsError> {
        let current = load(&files)?;
        let resolver = Arc::new(Reloading {
            state: Mutex::new(State {
                current,
                stamp: stamp(&files),
                checked: Instant::now(),
            }),
            files: files.clone(),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsServer {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            files,
        })
    }

    /// The files it serves.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    pub(crate) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }
}
