//! Who may read the embedded database: its owner only. Queued jobs' secret parameters live in
//! it until the job ends, so the SQLite file and its `-wal`/`-shm`/`-journal` companions are
//! kept `0600` (SQLite gives the companions the main file's mode) and the switchboard's data
//! directory `0700`. Both are checked at every start and repaired (with a warning) when an
//! older version, a copy or an umask left them readable by others.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the database files.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the data directory.
pub const DIR_MODE: u32 = 0o700;

/// Why the database files could not be secured.
#[derive(Debug, thiserror::Error)]
#[error("securing {path}")]
pub struct ModeError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> ModeError + '_ {
    move |source| ModeError {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and its parents) with mode 0700, or takes group and other access away from
/// an existing one.
pub fn secure_data_dir(dir: &Path) -> Result<(), ModeError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(at(dir))?;
    restrict(dir, DIR_MODE)
}

/// The file of a `sqlite:` URL, unless it is an in-memory database.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:" && !url.contains("mode=memory"))
        .then(|| PathBuf::from(path))
}

/// Creates the database file with mode 0600 when missing (SQLite takes an empty file as a new
/// database, and later creates its companions with the same mode), and repairs the mode of the
/// file and of its companions when they exist.
pub fn secure_sqlite_files(db: &Path) -> Result<(), ModeError> {
    if db
        .parent()
        .is_some_and(|p| p.as_os_str().is_empty() || p.is_dir())
    {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(db)
        {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(at(db)(e)),
        }
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => restrict(&path, FILE_MODE)?,
            Ok(_) | Err(_) => {}
        }
    }
    Ok(())
}

/// Takes away every permission bit beyond `mode`, saying so when there were any.
fn restrict(path: &Path, mode: u32) -> Result<(), ModeError> {
    let current = std::fs::metadata(path)
        .map_err(at(path))?
        .permissions()
        .mode()
        & 0o7777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(current & mode)).map_err(at(path))?;
        tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{:o}", current & mode),
            "took away group and other access (it holds secrets)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_directories_are_created_private_and_repaired() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/data");
        secure_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        secure_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);

        let db = dir.join("switchboard.db");
        secure_sqlite_files(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let wal = dir.join("switchboard.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&db, Permissions::from_mode(0o644)).unwrap();
        secure_sqlite_files(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
    }

    #[test]
    fn urls() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/p/switchboard.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/p/switchboard.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://rel.db"),
            Some(PathBuf::from("rel.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
