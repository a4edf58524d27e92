//! The switchboard's configuration file (TOML). Every field is documented here and in
//! `switchboard.example.toml`, which a test parses. Command-line flags override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use paddock_core::acl::Acl;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API and the supervisor WebSocket listen on.
    pub listen: SocketAddr,
    /// Directory for the embedded SQLite database (`switchboard.db`). Created when missing.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`. Default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Largest accepted request body, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Job timeout when a job does not set one, in seconds.
    pub default_job_timeout_s: u64,
    /// Largest job timeout a job may ask for, in seconds.
    pub max_job_timeout_s: u64,
    /// How long a job may wait in the queue when it does not say, in seconds.
    pub default_queue_timeout_s: u64,
    /// Seconds between heartbeats on supervisor connections. A supervisor silent for three
    /// intervals is disconnected.
    pub heartbeat_interval_s: u64,
    /// Seconds a supervisor may be gone before its jobs end with `supervisor_dropped_job`.
    pub supervisor_grace_s: u64,
    /// Seconds a supervisor has to confirm a stop (cancel, timeout) before the switchboard
    /// terminates the job itself.
    pub stop_grace_s: u64,
    /// Milliseconds between sweeps for timeouts and dropped jobs.
    pub reaper_interval_ms: u64,
    /// Lifetime of tokens made by `login` when the request does not say, in seconds.
    pub token_ttl_s: u64,
    /// A local image store directory. When set, `POST /jobs` also accepts an image label
    /// (`hello`: its newest revision) or `label@revision` instead of an image id.
    pub image_store: Option<PathBuf>,
    /// Image store servers (`http://HOST:PORT`). When set, enqueue resolves the image there
    /// (the first that knows it) and refuses an image none has with 404; `image_store` is then
    /// not used.
    pub image_urls: Vec<String>,
    /// Instance-level ACL, evaluated after each supervisor's own ACL.
    pub acl: Acl,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("paddock-data"),
            database_url: None,
            max_body_bytes: 1024 * 1024,
            default_job_timeout_s: 3600,
            max_job_timeout_s: 7 * 24 * 3600,
            default_queue_timeout_s: 24 * 3600,
            heartbeat_interval_s: 10,
            supervisor_grace_s: 120,
            stop_grace_s: 60,
            reaper_interval_ms: 1000,
            token_ttl_s: 30 * 24 * 3600,
            image_store: None,
            image_urls: Vec::new(),
            acl: Acl::default(),
        }
    }
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        message: String,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates; errors name the file, line and column (from toml) or the field.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|(field, message)| ConfigError::Invalid {
                path: path.into(),
                field,
                message,
            })?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.heartbeat_interval_s == 0 {
            return Err(("heartbeat_interval_s", "must be at least 1".into()));
        }
        if self.supervisor_grace_s < self.heartbeat_interval_s * 3 {
            return Err((
                "supervisor_grace_s",
                "must be at least three heartbeat intervals".into(),
            ));
        }
        if self.default_job_timeout_s == 0 || self.default_job_timeout_s > self.max_job_timeout_s {
            return Err((
                "default_job_timeout_s",
                "must be between 1 and max_job_timeout_s".into(),
            ));
        }
        if self.reaper_interval_ms == 0 {
            return Err(("reaper_interval_ms", "must be at least 1".into()));
        }
        if self.max_body_bytes < 1024 {
            return Err(("max_body_bytes", "must be at least 1024".into()));
        }
        if let Some(u) = self
            .image_urls
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err((
                "image_urls",
                format!("{u:?} must start with http:// or https://"),
            ));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres:")
                || url.starts_with("postgresql:"))
        {
            return Err((
                "database_url",
                "must start with sqlite: or postgres:".into(),
            ));
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| crate::db::sqlite_url_for(&self.data_dir))
    }

    /// Milliseconds after which a supervisor without heartbeat counts as disconnected.
    pub fn liveness_ms(&self) -> i64 {
        (self.heartbeat_interval_s * 3 * 1000) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/switchboard.example.toml"
        ));
        let c = Config::load(path).unwrap();
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.default_job_timeout_s, d.default_job_timeout_s);
        assert_eq!(c.supervisor_grace_s, d.supervisor_grace_s);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let e = Config::parse(Path::new("x.toml"), "listen = \"127.0.0.1:1\"\nbogus = 1\n")
            .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Config::parse(Path::new("x.toml"), "heartbeat_interval_s = 0\n").unwrap_err();
        assert!(e.to_string().contains("heartbeat_interval_s"), "{e}");
    }
}
