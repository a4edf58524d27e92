//! Push tokens of a store server: `ROOT/.paddock-imagestore/tokens.json`, a JSON list of
//! `{name, sha256, created_at}`. Only the sha256 of each token is kept; the token itself is
//! printed once by `paddock-imagestore token add`. The server re-reads the file when it
//! changes, so adding or revoking a token needs no restart.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const TOKEN_PREFIX: &str = "pdi_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub sha256: String,
    pub created_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a token list: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("a token named {0} already exists")]
    Exists(String),
    #[error("no token named {0}")]
    Unknown(String),
    #[error("token names are 1-64 characters of A-Z a-z 0-9 _ . -")]
    BadName,
}

pub fn tokens_file(root: &Path) -> PathBuf {
    root.join(".paddock-imagestore").join("tokens.json")
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn load(root: &Path) -> Result<Vec<TokenRecord>, TokenError> {
    let path = tokens_file(root);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| TokenError::Parse {
            path,
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(TokenError::Io { path, source }),
    }
}

fn save(root: &Path, list: &[TokenRecord]) -> Result<(), TokenError> {
    let path = tokens_file(root);
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let text = serde_json::to_vec_pretty(list).unwrap_or_default();
    f.write_all(&text).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)
}

/// Creates a token; returns its value (the only time it exists outside the client).
pub fn add(root: &Path, name: &str) -> Result<String, TokenError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(TokenError::BadName);
    }
    let mut list = load(root)?;
    if list.iter().any(|t| t.name == name) {
        return Err(TokenError::Exists(name.into()));
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    list.push(TokenRecord {
        name: name.into(),
        sha256: hash(&token),
        created_at: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    });
    save(root, &list)?;
    Ok(token)
}

pub fn revoke(root: &Path, name: &str) -> Result<(), TokenError> {
    let mut list = load(root)?;
    let before = list.len();
    list.retain(|t| t.name != name);
    if list.len() == before {
        return Err(TokenError::Unknown(name.into()));
    }
    save(root, &list)
}

/// The server's view of the token file, re-read when its modification time changes.
#[derive(Debug)]
pub struct TokenCache {
    root: PathBuf,
    state: Mutex<(Option<SystemTime>, Vec<TokenRecord>)>,
}

impl TokenCache {
    pub fn new(root: &Path) -> TokenCache {
        TokenCache {
            root: root.to_path_buf(),
            state: Mutex::new((None, Vec::new())),
        }
    }

    /// The name of the token's owner, if `token` is a valid push token.
    pub fn check(&self, token: &str) -> Option<String> {
        let mtime = fs::metadata(tokens_file(&self.root))
            .and_then(|m| m.modified())
            .ok();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 != mtime || mtime.is_none() {
            match load(&self.root) {
                Ok(list) => *s = (mtime, list),
                Err(e) => tracing::error!(error = %e, "reading push tokens"),
            }
        }
        let h = hash(token);
        s.1.iter().find(|t| t.sha256 == h).map(|t| t.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_check_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let t = add(dir.path(), "ci").unwrap();
        assert!(t.starts_with(TOKEN_PREFIX));
        assert!(matches!(add(dir.path(), "ci"), Err(TokenError::Exists(_))));
        assert!(matches!(add(dir.path(), "../x"), Err(TokenError::BadName)));
        let text = fs::read_to_string(tokens_file(dir.path())).unwrap();
        assert!(!text.contains(&t), "only the hash is stored");
        let cache = TokenCache::new(dir.path());
        assert_eq!(cache.check(&t).as_deref(), Some("ci"));
        assert_eq!(cache.check("pdi_wrong"), None);
        revoke(dir.path(), "ci").unwrap();
        // A rewrite within the same mtime granularity must still be seen.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let _ = fs::File::open(tokens_file(dir.path()))
            .unwrap()
            .set_modified(SystemTime::now());
        assert_eq!(cache.check(&t), None);
    }
}
