//! The store server's configuration file (TOML); see `imagestore.example.toml`. Flags of
//! `paddock-imagestore serve` override it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The store directory (`images/`, `blobs/`, `all.txt`; uploads stage in `tmp/`, push
    /// tokens live in `.paddock-imagestore/`). Relative to the file's directory.
    pub root: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest blob accepted by `PUT`, in bytes.
    pub max_upload_bytes: u64,
    /// `[tls]`: serve HTTPS with `cert_file` (PEM chain) and `key_file` (PEM key), read again
    /// when they change; plain HTTP when absent. Relative to the file's directory.
    pub tls: Option<paddock_http::TlsFiles>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: PathBuf::from("store"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            max_upload_bytes: 64 * 1024 * 1024 * 1024,
            tls: None,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let mut c: Config = paddock_core::config_file::parse_toml(path, &text)?;
        if c.root.is_relative() {
            c.root = path.parent().unwrap_or(Path::new(".")).join(&c.root);
        }
        if let Some(t) = &mut c.tls {
            paddock_core::config_file::relative_to_file(path, [&mut t.cert_file, &mut t.key_file]);
        }
        if c.max_upload_bytes == 0 {
            anyhow::bail!("{}: max_upload_bytes: must be at least 1", path.display());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("imagestore.toml");
        std::fs::write(&p, include_str!("../imagestore.example.toml")).unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.listen.port(), 8081);
        assert!(c.root.is_absolute());
        std::fs::write(&p, "root = \"s\"\nlisten = \"127.0.0.1:1\"\nbogus = 1\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains(":3: unknown field `bogus`"), "{e}");
    }
}
