//! Storage: one sqlx `Any` pool over SQLite (the embedded default, WAL) or PostgreSQL, with
//! migrations per backend. Every query is written once with `$n` placeholders, which both
//! backends accept; the few backend differences (row locks) are spelled out where they occur.
//! All job and supervisor state lives here, never only in one process's memory.

pub mod audit;
pub mod console;
pub mod deployment;
pub mod events;
pub mod file_modes;
pub mod jobs;
pub mod supervisors;
pub mod tokens;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor, Row};

/// Which database a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A storage failure. `NotFound` and `Conflict` are expected outcomes callers map to answers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("no connection to the database within 30 s")]
    NoConnection(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("illegal transition")]
    Transition(#[from] paddock_core::TransitionError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Mode(#[from] file_modes::ModeError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database handle shared by every part of the switchboard.
#[derive(Debug, Clone)]
pub struct Db {
    /// Writes (and reads that must see them in the same transaction).
    pub pool: AnyPool,
    /// Plain reads. For SQLite, read-only connections beside the single writer (WAL lets them
    /// run while it writes); for PostgreSQL, the same pool.
    pub reader: AnyPool,
    pub backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The default database of a data directory: `switchboard.db`, created when missing.
pub fn sqlite_url_for(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("switchboard.db").display()
    )
}

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Db> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        if let Some(file) = file_modes::sqlite_path(url) {
            file_modes::secure_sqlite_files(&file)?;
        }
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            // One connection: SQLite has one writer anyway, and a single connection makes every
            // transaction serializable without BUSY retries. WAL keeps readers of other
            // processes (backups, sqlite3 shell) unblocked.
            Backend::Sqlite => {
                options
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // Deleted and overwritten content is zeroed in the file, so a
                            // wiped secret leaves no stale copy in free space (see
                            // `after_wipe` for the WAL).
                            conn.execute("PRAGMA secure_delete = ON").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => match options.max_connections(16).connect(url).await {
                Ok(pool) => pool,
                // The pool retries until its timeout and then says only that: one more try of
                // a single connection names the cause (refused, authentication, no database).
                Err(sqlx::Error::PoolTimedOut) => {
                    use sqlx::Connection;
                    return Err(match sqlx::AnyConnection::connect(url).await {
                        Err(cause) => StoreError::NoConnection(cause),
                        Ok(_) => StoreError::Db(sqlx::Error::PoolTimedOut),
                    });
                }
                Err(e) => return Err(e.into()),
            },
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        let reader = match backend {
            Backend::Postgres => pool.clone(),
            Backend::Sqlite => {
                let ro = match url.find("mode=") {
                    Some(i) => {
                        let end = url[i..].find('&').map_or(url.len(), |e| i + e);
                        format!("{}mode=ro{}", &url[..i], &url[end..])
                    }
                    None if url.contains('?') => format!("{url}&mode=ro"),
                    None => format!("{url}?mode=ro"),
                };
                AnyPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            Ok(())
                        })
                    })
                    .connect(&ro)
                    .await?
            }
        };
        Ok(Db {
            pool,
            reader,
            backend,
        })
    }

    /// Called after a committed change that wiped secret values (a job with secret parameters
    /// terminated). SQLite: the WAL still holds every earlier version of the changed pages,
    /// value included, until it is checkpointed and overwritten; a `TRUNCATE` checkpoint copies
    /// the current pages into the database file (where `secure_delete` zeroed the old value)
    /// and empties the WAL, so neither file holds the value afterwards. Retried while readers
    /// hold an older snapshot. PostgreSQL: nothing to do here (docs/switchboard.md says what
    /// it keeps).
    pub(crate) async fn after_wipe(&self) {
        if self.backend != Backend::Sqlite {
            return;
        }
        // Each try holds the single writer connection only for a checkpoint that does not wait
        // (busy_timeout 0: blocked by a reader, it answers at once), and lets other writes in
        // between tries, so a long reader (a backup) never holds up the switchboard.
        for _ in 0..20 {
            let attempt = async {
                let mut conn = self.pool.acquire().await?;
                conn.execute("PRAGMA busy_timeout = 0").await?;
                let r = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&mut *conn)
                    .await;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                r
            };
            match attempt.await {
                Ok(row) => match row.try_get::<i64, _>(0) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "reading the WAL checkpoint result");
                        return;
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "checkpointing the WAL after wiping secrets");
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!(
            "the WAL could not be emptied after wiping secrets (readers kept it busy); old values stay in it until a later TRUNCATE checkpoint (the next wipe's)"
        );
    }

    /// `FOR UPDATE SKIP LOCKED` where the backend has row locks; SQLite's single writer makes
    /// the transaction itself the lock.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }
}

/// Parses a stored enum/id column, naming the column when it is corrupt.
pub(crate) fn parse_col<T: FromStr>(column: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("{column}={value:?}")))
}

pub(crate) fn parse_opt<T: FromStr>(column: &str, value: Option<String>) -> Result<Option<T>> {
    value.map(|v| parse_col(column, &v)).transpose()
}

pub(crate) fn json_col<T: serde::de::DeserializeOwned>(column: &str, value: &str) -> Result<T> {
    serde_json::from_str(value).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain data structs into a String cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}
