//! A service's TOML configuration file: read and parsed in one step, the file named in every
//! error, every problem found at once with its line (`FILE:LINE: field: what is wrong`), and the
//! relative paths in it taken relative to the file's directory.

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
    /// Every problem found in the file, one a line.
    #[error("{}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Problems { problems: Vec<Problem> },
}

/// One problem of a configuration file: where, and what (a field and what is wrong with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based; none when the problem is not at one place (a field that is missing).
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl ConfigError {
    /// Each problem on its own line (`FILE:LINE: …`); one line for the other errors.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Problems { problems } => problems.iter().map(|p| p.to_string()).collect(),
            e => vec![e.to_string()],
        }
    }
}

/// The problems found in one configuration file, collected so that a check reports all of
/// them at once, each at the line of the key it names.
#[derive(Debug)]
pub struct Problems {
    path: PathBuf,
    text: String,
    found: Vec<Problem>,
}

impl Problems {
    /// The line of `key`, a dotted path (`activation.host`): where the key is written.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        line_of(&self.text, key)
    }

    /// Records a problem with the field `key` (a dotted path); `message` starts with the key,
    /// as every message of a configuration error.
    pub fn at(&mut self, key: &str, message: impl Into<String>) {
        self.found.push(Problem {
            path: self.path.clone(),
            line: self.line_of(key),
            message: message.into(),
        });
    }

    /// Whether a problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// `Ok` when no problem was recorded, else every one of them.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Problems {
                problems: self.found,
            })
        }
    }
}

/// The 1-based line where the dotted `key` is written in the TOML `text`.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut parts = key.split('.');
    let first = parts.next()?;
    let (mut k, mut item) = doc.as_table().get_key_value(first)?;
    for part in parts {
        (k, item) = item.as_table_like()?.get_key_value(part)?;
    }
    let start = k.span()?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

/// As [`read_toml`], with the file's text kept to locate the problems the caller finds in the
/// values. A parse error is one problem at its line (serde stops at the first).
pub fn read_toml_checked<T: DeserializeOwned>(path: &Path) -> Result<(T, Problems), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match toml::from_str(&text) {
        Ok(t) => Ok((
            t,
            Problems {
                path: path.to_path_buf(),
                text,
                found: Vec::new(),
            },
        )),
        Err(e) => {
            let line = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| before.matches('\n').count() + 1);
            Err(ConfigError::Problems {
                problems: vec![Problem {
                    path: path.to_path_buf(),
                    line,
                    message: e.message().to_string(),
                }],
            })
        }
    }
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
        std::fs::write(&file, "a = 1\n").unwrap();
        let typed = read_toml_checked::<T>(&file).unwrap_err().to_string();
        assert_eq!(typed.lines().count(), 1, "{typed}");
        assert!(
            typed.starts_with(&format!("{}:1: ", file.display())),
            "{typed}"
        );
        std::fs::write(&file, "a = \"x\"\n\n[t]\nb = 1\n").unwrap();
        let (_, mut problems): (toml::Table, _) = read_toml_checked(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(problems.line_of("a"), Some(1));
        assert_eq!(problems.line_of("t.b"), Some(4));
        assert_eq!(problems.line_of("t"), Some(3));
        assert_eq!(problems.line_of("c"), None);
        problems.at("a", "a: wrong");
        problems.at("c", "c: missing");
        let lines = problems.finish().unwrap_err().lines();
        assert_eq!(
            lines,
            [
                format!("{}:1: a: wrong", file.display()),
                format!("{}: c: missing", file.display())
            ]
        );
        let mut c = PathBuf::from("c");
        relative_to_file(Path::new("x.toml"), [&mut c]);
        assert_eq!(c, Path::new("c"));
    }
}
