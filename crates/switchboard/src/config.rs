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
    /// A file holding the database URL (one with a password: a secret, kept out of this file
    /// and of the Nix store; a systemd credential under the NixOS module). Not together with
    /// `database_url`; read when the switchboard starts.
    pub database_url_file: Option<PathBuf>,
    /// Largest accepted request body, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Job timeout when a job does not set one, in seconds.
    pub default_job_timeout_s: u64,
    /// Largest job timeout a job may ask for, in seconds.
    pub max_job_timeout_s: u64,
    /// How long a job may wait in the queue when it does not say, in seconds.
    pub default_queue_timeout_s: u64,
    /// Longest queue timeout a job may ask for, in seconds.
    pub max_queue_timeout_s: u64,
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
    /// Longest lifetime of any token made through the API (login, a new token, a new user's
    /// first token), in seconds. A token made with another token never outlives it either.
    pub max_token_ttl_s: u64,
    /// A local image store directory. When set, `POST /jobs` also accepts an image label
    /// (`hello`: its newest revision) or `label@revision` instead of an image id.
    pub image_store: Option<PathBuf>,
    /// Image store servers (`http://HOST:PORT`). When set, enqueue resolves the image there
    /// (the first that knows it) and refuses an image none has with 404; `image_store` is then
    /// not used.
    pub image_urls: Vec<String>,
    /// Instance-level ACL, evaluated after each supervisor's own ACL.
    pub acl: Acl,
    /// The audit gate (`none`, `check`, `check_and_inventory`; default `none`, fail-open):
    /// what a host must have passed before it gets jobs. The deployments repo's
    /// `defaults.require_audit` and sites' `require_audit` override it once applied.
    pub require_audit: paddock_core::deployments::RequireAudit,
    /// Limits of the HTTP server against slow or too many clients.
    pub http: HttpLimits,
    /// Console output kept per job, in bytes (stored in the database). Output past it is
    /// dropped, and one line in the console and an event of the job say how many bytes.
    pub console_limit_bytes: u64,
    /// `[tls]`: serve HTTPS (and the supervisors' WSS) with `cert_file` (PEM chain) and
    /// `key_file` (PEM key), read again when they change; plain HTTP when absent. Relative
    /// paths are taken from this file's directory.
    pub tls: Option<paddock_http::TlsFiles>,
}

/// `[http]`: the HTTP server's limits (see `paddock_http`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Seconds a client has to send a request's line and headers; then it is disconnected.
    pub header_read_timeout_s: u64,
    /// Seconds a connection may stay with no byte moving either way (WebSockets of
    /// supervisors are not counted: they have heartbeats).
    pub idle_timeout_s: u64,
    /// Connections served at once; more are closed at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        let d = paddock_http::Limits::default();
        HttpLimits {
            header_read_timeout_s: d.header_read_timeout.as_secs(),
            idle_timeout_s: d.idle_timeout.as_secs(),
            max_connections: d.max_connections,
        }
    }
}

impl HttpLimits {
    pub fn limits(&self) -> paddock_http::Limits {
        paddock_http::Limits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_s),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_s),
            max_connections: self.max_connections,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("paddock-data"),
            database_url: None,
            database_url_file: None,
            max_body_bytes: 1024 * 1024,
            default_job_timeout_s: 3600,
            max_job_timeout_s: 7 * 24 * 3600,
            default_queue_timeout_s: 24 * 3600,
            max_queue_timeout_s: 30 * 24 * 3600,
            heartbeat_interval_s: 10,
            supervisor_grace_s: 120,
            stop_grace_s: 60,
            reaper_interval_ms: 1000,
            token_ttl_s: 30 * 24 * 3600,
            max_token_ttl_s: 365 * 24 * 3600,
            image_store: None,
            image_urls: Vec::new(),
            acl: Acl::default(),
            require_audit: Default::default(),
            http: HttpLimits::default(),
            console_limit_bytes: 64 * 1024 * 1024,
            tls: None,
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
    /// Every problem of the file (syntax, unknown fields, wrong types, bad values), each at
    /// its line.
    #[error(transparent)]
    Parse(#[from] paddock_core::config_file::ConfigError),
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates; every problem is reported at once, each as `FILE:LINE: …`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = paddock_core::config_file::parse_toml(path, text)?;
        if let Some(t) = &mut config.tls {
            paddock_core::config_file::relative_to_file(path, [&mut t.cert_file, &mut t.key_file]);
        }
        // Every problem of the values at once, each at its field's line.
        if let Err(bad) = config.validate() {
            paddock_core::config_file::Problems::check(path, text, bad)?;
        }
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), Vec<(&'static str, String)>> {
        let mut bad = Vec::new();
        if self.heartbeat_interval_s == 0 {
            bad.push(("heartbeat_interval_s", "must be at least 1".into()));
        }
        if self.supervisor_grace_s < self.heartbeat_interval_s * 3 {
            bad.push((
                "supervisor_grace_s",
                "must be at least three heartbeat intervals".into(),
            ));
        }
        if self.default_job_timeout_s == 0 || self.default_job_timeout_s > self.max_job_timeout_s {
            bad.push((
                "default_job_timeout_s",
                "must be between 1 and max_job_timeout_s".into(),
            ));
        }
        for (field, max) in [
            ("max_job_timeout_s", self.max_job_timeout_s),
            ("max_queue_timeout_s", self.max_queue_timeout_s),
            ("max_token_ttl_s", self.max_token_ttl_s),
        ] {
            if max == 0 || max > MAX_SECONDS {
                bad.push((
                    field,
                    format!("must be between 1 and {MAX_SECONDS} (100 years)"),
                ));
            }
        }
        if self.default_queue_timeout_s == 0
            || self.default_queue_timeout_s > self.max_queue_timeout_s
        {
            bad.push((
                "default_queue_timeout_s",
                "must be between 1 and max_queue_timeout_s".into(),
            ));
        }
        if self.token_ttl_s == 0 || self.token_ttl_s > self.max_token_ttl_s {
            bad.push((
                "token_ttl_s",
                "must be between 1 and max_token_ttl_s".into(),
            ));
        }
        let h = &self.http;
        if h.header_read_timeout_s == 0 || h.header_read_timeout_s > 3600 {
            bad.push((
                "http.header_read_timeout_s",
                "must be between 1 and 3600".into(),
            ));
        }
        if h.idle_timeout_s < 30 || h.idle_timeout_s > 86400 {
            bad.push(("http.idle_timeout_s", "must be between 30 and 86400".into()));
        }
        if h.max_connections == 0 || h.max_connections > 1_000_000 {
            bad.push((
                "http.max_connections",
                "must be between 1 and 1000000".into(),
            ));
        }
        if self.reaper_interval_ms == 0 {
            bad.push(("reaper_interval_ms", "must be at least 1".into()));
        }
        if self.max_body_bytes < 1024 {
            bad.push(("max_body_bytes", "must be at least 1024".into()));
        }
        for u in &self.image_urls {
            if let Err(e) = paddock_core::transport::require_plain(u) {
                bad.push(("image_urls", e.to_string()));
            } else if !u.starts_with("http://") {
                bad.push(("image_urls", format!("{u:?} must start with http://")));
            }
        }
        if let Some(url) = &self.database_url
            && !is_database_url(url)
        {
            bad.push((
                "database_url",
                "must start with sqlite: or postgres:".into(),
            ));
        }
        if self.database_url.is_some() && self.database_url_file.is_some() {
            bad.push((
                "database_url_file",
                "set database_url or database_url_file, not both".into(),
            ));
        }
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }

    /// Reads `database_url_file` (when set and no URL is given otherwise) into `database_url`.
    /// The file's text is never shown in an error: it may hold a password.
    pub fn read_database_url_file(&mut self) -> Result<(), (&'static str, String)> {
        let Some(file) = &self.database_url_file else {
            return Ok(());
        };
        if self.database_url.is_some() {
            return Ok(());
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| ("database_url_file", format!("{}: {e}", file.display())))?;
        let url = text.trim();
        if !is_database_url(url) {
            return Err((
                "database_url_file",
                format!(
                    "{}: must hold one URL starting with sqlite: or postgres:",
                    file.display()
                ),
            ));
        }
        self.database_url = Some(url.to_string());
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

/// The largest number of seconds a configured maximum may be: 100 years, so that every
/// deadline computed from it fits a 64-bit count of milliseconds.
const MAX_SECONDS: u64 = 100 * 365 * 24 * 3600;

fn is_database_url(url: &str) -> bool {
    url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:")
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
        assert!(
            e.to_string().starts_with("x.toml:2: unknown field `bogus`"),
            "{e}"
        );
        let e = Config::parse(Path::new("x.toml"), "heartbeat_interval_s = 0\n").unwrap_err();
        assert!(e.to_string().contains("heartbeat_interval_s"), "{e}");
        for (text, field) in [
            ("default_queue_timeout_s = 0\n", "default_queue_timeout_s"),
            ("max_queue_timeout_s = 60\n", "default_queue_timeout_s"),
            (
                "max_queue_timeout_s = 18446744073709551615\n",
                "max_queue_timeout_s",
            ),
            ("token_ttl_s = 99999999\n", "token_ttl_s"),
            ("max_token_ttl_s = 0\n", "max_token_ttl_s"),
        ] {
            let e = Config::parse(Path::new("x.toml"), text).unwrap_err();
            assert!(e.to_string().contains(field), "{text}: {e}");
        }
    }

    /// Until TLS is built in, an `https://` URL is refused when the file is read, not when a
    /// job first needs it.
    #[test]
    fn https_urls_are_refused_at_load() {
        let e = Config::parse(
            Path::new("x.toml"),
            "image_urls = [\"https://store.example\"]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("image_urls"), "{e}");
        assert!(e.to_string().contains("TLS"), "{e}");
    }

    #[test]
    fn the_database_url_from_a_file_never_shows_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db-url");
        let both = format!(
            "database_url = \"sqlite://x\"\ndatabase_url_file = \"{}\"\n",
            file.display()
        );
        let e = Config::parse(Path::new("x.toml"), &both).unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");

        let text = format!("database_url_file = \"{}\"\n", file.display());
        let mut c = Config::parse(Path::new("x.toml"), &text).unwrap();
        let (field, msg) = c.read_database_url_file().unwrap_err();
        assert_eq!(field, "database_url_file");
        assert!(msg.contains("db-url"), "{msg}");
        std::fs::write(&file, "mysql://u:hunter2@db/x\n").unwrap();
        let (_, msg) = c.read_database_url_file().unwrap_err();
        assert!(!msg.contains("hunter2"), "{msg}");
        std::fs::write(&file, "postgres://u:hunter2@db.lab/paddock\n").unwrap();
        c.read_database_url_file().unwrap();
        assert_eq!(c.database_url(), "postgres://u:hunter2@db.lab/paddock");
    }
}
