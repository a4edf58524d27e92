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
    /// No problem yet, of the file at `path` whose text is `text`.
    pub fn new(path: &Path, text: &str) -> Problems {
        Problems {
            path: path.to_path_buf(),
            text: text.to_string(),
            found: Vec::new(),
        }
    }

    /// Every `(field, what is wrong)` of `found`, each at the field's line, as
    /// `field: what is wrong`; `Ok` when there is none.
    pub fn check<'a>(
        path: &Path,
        text: &str,
        found: impl IntoIterator<Item = (&'a str, String)>,
    ) -> Result<(), ConfigError> {
        let mut problems = Problems::new(path, text);
        for (field, message) in found {
            problems.at(field, format!("{field}: {message}"));
        }
        problems.finish()
    }

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
/// values. Every problem of the text itself (syntax, unknown fields, wrong types) is found in
/// one run, each at its line ([`parse_toml`]).
pub fn read_toml_checked<T: DeserializeOwned>(path: &Path) -> Result<(T, Problems), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let t = parse_toml(path, &text)?;
    Ok((
        t,
        Problems {
            path: path.to_path_buf(),
            text,
            found: Vec::new(),
        },
    ))
}

/// Parses `text` (the file at `path`) as TOML into `T`, reporting every problem of the text
/// in one run, each as `FILE:LINE: what is wrong`: serde stops at the first, so after each
/// problem the lines it is on are blanked (their line numbers kept) and the text parsed again,
/// at most [`MAX_PROBLEMS`] times. A syntax error blanks its line; a key that is unknown or
/// of the wrong type blanks its whole entry (a table with everything in it). A field then
/// missing only because its entry was blanked is not reported again, nor one missing after a
/// syntax error. Messages are one line each.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let mut work = text.to_string();
    let mut problems: Vec<Problem> = Vec::new();
    let mut blanked: Vec<String> = Vec::new();
    // Once a line is blanked for its syntax, a field reported missing may have been on it.
    let mut syntax_blanked = false;
    loop {
        let e = match toml::from_str::<T>(&work) {
            Ok(t) if problems.is_empty() => return Ok(t),
            Ok(_) => break,
            Err(e) => e,
        };
        let mut message = e.message().trim_end().replace('\n', "; ");
        if let Some(field) = missing_field(&message)
            && (syntax_blanked || blanked.iter().any(|b| b == field))
        {
            break;
        }
        // What to blank before the next try: a syntax error's line, or the entry at the
        // error (a value of the wrong type is then named by its dotted key).
        let entry = e.span().map(|span| {
            // Nothing but the error's place (one empty range).
            let at = span.start..span.start;
            match toml_edit::ImDocument::parse(work.as_str()) {
                Err(_) => (None, vec![at]),
                Ok(doc) => match entry_at(doc.as_table(), "", span.start) {
                    Some(found) => (Some((found.0, found.1)), found.2),
                    None => (None, vec![at]),
                },
            }
        });
        if let Some((Some((_, dotted)), _)) = &entry
            && missing_field(&message).is_none()
            && !message.starts_with("unknown field")
        {
            message = format!("{dotted}: {message}");
        }
        // A field missing from the top level is at no line (its span is the whole file).
        let whole = |s: &std::ops::Range<usize>| s.start == 0 && s.end >= work.trim_end().len();
        let line = e
            .span()
            .filter(|s| !(missing_field(&message).is_some() && whole(s)))
            .map(|s| line_at(&work, s.start));
        if !problems
            .iter()
            .any(|p| p.line == line && p.message == message)
        {
            problems.push(Problem {
                path: path.to_path_buf(),
                line,
                message: message.clone(),
            });
        }
        let Some((found, ranges)) = entry else { break };
        if problems.len() >= MAX_PROBLEMS || missing_field(&message).is_some() {
            break;
        }
        match found {
            Some((name, _)) => blanked.push(name),
            None => syntax_blanked = true,
        }
        let before = work.clone();
        work = blank_lines(&work, &ranges);
        if work == before {
            break;
        }
    }
    // In the order of the file (a syntax error is found before the problems of the values).
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Err(ConfigError::Problems { problems })
}

/// Most problems reported of one file's text.
pub const MAX_PROBLEMS: usize = 50;

/// The field a serde "missing field `x`" message names.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// The 1-based line of byte `at` in `text`.
fn line_at(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The innermost entry (key and value, or a table with all it holds) of `table` written at byte
/// `at`: its key's name, its dotted path (after `prefix`) and the byte ranges it covers.
#[allow(clippy::type_complexity)]
fn entry_at(
    table: &dyn toml_edit::TableLike,
    prefix: &str,
    at: usize,
) -> Option<(String, String, Vec<std::ops::Range<usize>>)> {
    let contains = |r: &std::ops::Range<usize>| r.start <= at && at < r.end.max(r.start + 1);
    for (name, _) in table.iter() {
        let Some((key, item)) = table.get_key_value(name) else {
            continue;
        };
        let mut ranges = Vec::new();
        ranges.extend(key.span());
        spans_of(item, &mut ranges);
        if !ranges.iter().any(contains) {
            continue;
        }
        let dotted = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        let inner = match item {
            toml_edit::Item::Table(t) => entry_at(t, &dotted, at),
            toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => entry_at(t, &dotted, at),
            toml_edit::Item::Value(toml_edit::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_inline_table())
                .find_map(|t| entry_at(t, &dotted, at)),
            toml_edit::Item::ArrayOfTables(a) => a.iter().find_map(|t| {
                entry_at(t, &dotted, at).or_else(|| {
                    // The header of one element: that element alone.
                    let header = t.span()?;
                    contains(&header).then(|| {
                        let mut one = Vec::new();
                        spans_of(&toml_edit::Item::Table(t.clone()), &mut one);
                        (name.to_string(), dotted.clone(), one)
                    })
                })
            }),
            _ => None,
        };
        return Some(inner.unwrap_or_else(|| (name.to_string(), dotted, ranges)));
    }
    None
}

/// Every byte range `item` covers: values, table headers and all a table holds.
fn spans_of(item: &toml_edit::Item, out: &mut Vec<std::ops::Range<usize>>) {
    let table = |t: &toml_edit::Table, out: &mut Vec<std::ops::Range<usize>>| {
        out.extend(t.span());
        for (name, _) in t.iter() {
            if let Some((k, i)) = t.get_key_value(name) {
                out.extend(k.span());
                spans_of(i, out);
            }
        }
    };
    match item {
        toml_edit::Item::Value(v) => out.extend(v.span()),
        toml_edit::Item::Table(t) => table(t, out),
        toml_edit::Item::ArrayOfTables(a) => a.iter().for_each(|t| table(t, out)),
        toml_edit::Item::None => {}
    }
}

/// `text` with every line that `ranges` touch made blank (newlines kept, so every other line
/// keeps its number).
fn blank_lines(text: &str, ranges: &[std::ops::Range<usize>]) -> String {
    let mut blank = vec![false; text.lines().count() + 1];
    for r in ranges {
        let first = line_at(text, r.start);
        let last = line_at(text, r.end.saturating_sub(1).max(r.start));
        for l in first..=last {
            if let Some(b) = blank.get_mut(l - 1) {
                *b = true;
            }
        }
    }
    text.split_inclusive('\n')
        .enumerate()
        .map(|(i, l)| {
            if blank.get(i).copied().unwrap_or(false) {
                if l.ends_with('\n') { "\n" } else { "" }
            } else {
                l
            }
        })
        .collect()
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
    parse_toml(path, &text)
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
            bad.starts_with(&format!("{}:2: unknown field `b`", file.display())),
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

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Service {
        name: String,
        port: u16,
        #[serde(default)]
        http: Option<Http>,
        #[serde(default)]
        sites: Vec<Site>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Http {
        timeout_s: u64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Site {
        id: String,
    }

    fn problems_of(text: &str) -> Vec<String> {
        match parse_toml::<Service>(Path::new("s.toml"), text) {
            Ok(s) => panic!("accepted: {s:?}"),
            Err(e) => e.lines(),
        }
    }

    #[test]
    fn every_problem_of_the_text_is_reported_in_one_run() {
        // Two unknown keys, one of them a whole table with keys of its own, and a wrong type.
        let lines = problems_of(
            "name = \"a\"\nprot = 1\nport = \"x\"\n[htp]\ntimeout_s = 1\n[http]\ntimeout = 3\n",
        );
        // In the order of the file. `[http]` lacks `timeout_s` indeed; `port` was blanked for
        // its type: it is not reported missing too.
        let expected = [
            "s.toml:2: unknown field `prot`",
            "s.toml:3: port: invalid type",
            "s.toml:4: unknown field `htp`",
            "s.toml:6: missing field `timeout_s`",
            "s.toml:7: unknown field `timeout`",
        ];
        assert_eq!(lines.len(), expected.len(), "{lines:#?}");
        for (l, e) in lines.iter().zip(expected) {
            assert!(l.starts_with(e), "{e}: {lines:#?}");
        }
    }

    #[test]
    fn several_syntax_errors_are_reported_each_at_its_line() {
        let lines = problems_of("name = \"a\npot = \nport = 1\nx = = 2\n");
        assert_eq!(lines.len(), 3, "{lines:#?}");
        for (line, l) in [1, 2, 4].iter().zip(&lines) {
            assert!(l.starts_with(&format!("s.toml:{line}: ")), "{lines:#?}");
        }
        // `name` is on a blanked line: not reported missing.
        assert!(!lines.iter().any(|l| l.contains("missing")), "{lines:#?}");
    }

    #[test]
    fn an_element_of_an_array_of_tables_is_located() {
        let lines = problems_of(
            "name = \"a\"\nport = 1\n[[sites]]\nid = \"a\"\n[[sites]]\nid = \"b\"\nnote = 1\n[[sites]]\nide = 1\n",
        );
        // The third site has no `id` indeed (at its header).
        let expected = [
            "s.toml:7: unknown field `note`",
            "s.toml:8: missing field `id`",
            "s.toml:9: unknown field `ide`",
        ];
        assert_eq!(lines.len(), expected.len(), "{lines:#?}");
        for (l, e) in lines.iter().zip(expected) {
            assert!(l.starts_with(e), "{e}: {lines:#?}");
        }
    }

    #[test]
    fn a_missing_field_is_reported_once_and_a_good_file_parses() {
        let lines = problems_of("port = 1\n");
        assert_eq!(lines, ["s.toml: missing field `name`"]);
        let s = parse_toml::<Service>(
            Path::new("s.toml"),
            "name = \"a\"\nport = 1\n[http]\ntimeout_s = 2\n",
        )
        .unwrap();
        assert_eq!(s.http.map(|h| h.timeout_s), Some(2));
    }

    proptest::proptest! {
        /// Whatever the text, parsing ends, with at most MAX_PROBLEMS problems, each at a line
        /// of the file.
        #[test]
        fn any_text_ends_with_bounded_located_problems(text in "[a-z =\\[\\]\"0-9\n.{},]{0,200}") {
            if let Err(ConfigError::Problems { problems }) = parse_toml::<Service>(Path::new("s.toml"), &text) {
                proptest::prop_assert!(problems.len() <= MAX_PROBLEMS);
                let lines = text.lines().count().max(1) + 1;
                for p in problems {
                    proptest::prop_assert!(p.line.is_none_or(|l| l >= 1 && l <= lines), "{p}");
                }
            }
        }
    }
}
