//! A service's TOML configuration file: read and parsed in one step, the file named in every
//! error, and the relative paths in it taken relative to the file's directory.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ConfigError {
    /// The file at `path` is refused for `message` (a field and what is wrong with it).
    pub fn invalid(path: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Reads the file at `path` and parses it as TOML; a parse error names the line and column.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::invalid(path, e.to_string()))
}

/// Makes each relative path in `paths` relative to the directory of the file at `file`.
pub fn relative_to_file<'a>(file: &Path, paths: impl IntoIterator<Item = &'a mut PathBuf>) {
    let base = file.parent().unwrap_or(Path::new("."));
    for p in paths {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct T {
        a: PathBuf,
    }

    #[test]
    fn errors_name_the_file_and_paths_follow_it() {
        let missing = read_toml::<T>(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("reading /nonexistent/x.toml: "),
            "{missing}"
        );
        let file = std::env::temp_dir().join(format!("paddock-config-{}.toml", std::process::id()));
        std::fs::write(&file, "a = \"x\"\nb = 1\n").unwrap();
        let bad = read_toml::<T>(&file).unwrap_err().to_string();
        assert!(
            bad.starts_with(&file.display().to_string()) && bad.contains("line 2"),
            "{bad}"
        );
        std::fs::write(&file, "a = \"x\"\n").unwrap();
        let t = read_toml::<T>(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(t.a, Path::new("x"));
        let mut a = PathBuf::from("data");
        let mut b = PathBuf::from("/abs");
        relative_to_file(Path::new("/etc/paddock/x.toml"), [&mut a, &mut b]);
        assert_eq!(a, Path::new("/etc/paddock/data"));
        assert_eq!(b, Path::new("/abs"));
        let mut c = PathBuf::from("c");
        relative_to_file(Path::new("x.toml"), [&mut c]);
        assert_eq!(c, Path::new("c"));
    }
}
