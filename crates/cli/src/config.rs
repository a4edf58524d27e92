//! The client configuration: switchboard URL and API token, from the environment
//! (`PADDOCK_URL`, `PADDOCK_TOKEN`) or the file `paddock login` writes (mode 0600).

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Base URL of the switchboard, e.g. `http://127.0.0.1:8080`.
    pub url: Option<String>,
    /// API token (`pdk_…`). Never printed.
    pub token: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

pub fn path() -> PathBuf {
    if let Some(p) = std::env::var_os("PADDOCK_CONFIG") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("paddock").join("config.toml")
}

impl ClientConfig {
    /// The file (if any), overridden by the environment.
    pub fn load() -> anyhow::Result<ClientConfig> {
        let p = path();
        let mut c = match std::fs::read_to_string(&p) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading {}", p.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClientConfig::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        };
        if let Ok(u) = std::env::var("PADDOCK_URL") {
            c.url = Some(u);
        }
        if let Ok(t) = std::env::var("PADDOCK_TOKEN") {
            c.token = Some(t);
        }
        Ok(c)
    }

    /// Writes the file atomically, readable by the owner only.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let p = path();
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = p.with_extension("toml.tmp");
        let text = toml::to_string(self)?;
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&tmp)
                .with_context(|| format!("writing {}", tmp.display()))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }
}
