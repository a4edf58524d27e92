//! Typed reading of the YAML trees: every field checked against the schema (types, syntax,
//! unknown keys), every error with file, line, column and field path. Where a field is wrong
//! the rest of the file is still read, so one run reports every error.

use std::str::FromStr;

use super::diagnostic::{Diagnostic, Pos};
use super::yaml::{Key, Node, Value};

/// Reads one file's tree, collecting errors.
pub struct Reader<'a> {
    pub file: &'a str,
    pub errors: Vec<Diagnostic>,
}

/// The keys of one mapping, checked against the allowed ones.
pub struct Fields<'n> {
    entries: &'n [(Key, Node)],
    pub at: Pos,
}

impl<'n> Fields<'n> {
    pub fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }
}

/// `path` joined with a key: `supervisors[2]` + `pdu` → `supervisors[2].pdu`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a str) -> Self {
        Reader {
            file,
            errors: vec![],
        }
    }

    pub fn error(&mut self, at: Pos, field: &str, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::new(self.file, at, field, message.into()));
    }

    /// A mapping whose keys must all be in `allowed`; unknown ones are errors (with the
    /// closest allowed key as a hint).
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            if !node.is_null() {
                self.error(
                    node.at,
                    path,
                    format!("expected a mapping, found {}", node.kind()),
                );
            }
            return None;
        };
        // Each allowed name once (a caller may list a field that several kinds share twice).
        let mut listed: Vec<&str> = Vec::with_capacity(allowed.len());
        for a in allowed {
            if !listed.contains(a) {
                listed.push(a);
            }
        }
        for (k, _) in entries {
            if !allowed.contains(&k.name.as_str()) {
                let hint = closest(&k.name, allowed)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.error(
                    k.at,
                    &join(path, &k.name),
                    format!(
                        "unknown field `{}`{hint}; expected one of: {}",
                        k.name,
                        listed.join(", ")
                    ),
                );
            }
        }
        // A block mapping's own mark is at its first `:`; its first key reads better.
        let at = entries.first().map(|(k, _)| k.at).unwrap_or(node.at);
        Some(Fields { entries, at })
    }

    /// A required field.
    pub fn required<'n>(&mut self, f: &Fields<'n>, path: &str, name: &str) -> Option<&'n Node> {
        let v = f.get(name);
        if v.is_none() {
            self.error(f.at, &join(path, name), format!("missing field `{name}`"));
        }
        v
    }

    /// A scalar's text (numbers and booleans are accepted as their text).
    pub fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
            _ => {
                self.error(
                    node.at,
                    path,
                    format!("expected a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A scalar parsed with `FromStr`; the error names what was expected.
    pub fn parse<T: FromStr>(&mut self, node: &Node, path: &str, what: &str) -> Option<T> {
        let text = self.text(node, path)?;
        match text.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(node.at, path, format!("`{text}` is not {what}"));
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Scalar { text, plain: true } if text == "true" => Some(true),
            Value::Scalar { text, plain: true } if text == "false" => Some(false),
            _ => {
                self.error(
                    node.at,
                    path,
                    "expected true or false (unquoted)".to_string(),
                );
                None
            }
        }
    }

    pub fn unsigned(&mut self, node: &Node, path: &str) -> Option<u64> {
        match &node.value {
            Value::Scalar { text, plain: true } if text.parse::<u64>().is_ok() => text.parse().ok(),
            _ => {
                self.error(
                    node.at,
                    path,
                    format!("expected a whole number ≥ 0, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// A list; each item read by `item` with its path `path[i]`.
    pub fn list<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut item: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Vec<T> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| item(self, n, &format!("{path}[{i}]")))
                .collect(),
            _ if node.is_null() => vec![],
            _ => {
                self.error(
                    node.at,
                    path,
                    format!("expected a list, found {}", node.kind()),
                );
                vec![]
            }
        }
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Scalar { text, .. } if !node.is_null() => format!("`{text}`"),
        _ => node.kind().to_string(),
    }
}

/// Free-form YAML (a PDU driver's settings) as JSON: plain scalars become booleans, numbers
/// or null where they read as such.
pub fn to_json(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
        Value::Seq(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Scalar { .. } if node.is_null() => serde_json::Value::Null,
        Value::Scalar { text, plain: false } => serde_json::Value::String(text.clone()),
        Value::Scalar { text, plain: true } => match text.as_str() {
            "true" => true.into(),
            "false" => false.into(),
            t => t
                .parse::<i64>()
                .map(Into::into)
                .or_else(|_| t.parse::<f64>().map(Into::into))
                .unwrap_or_else(|_| serde_json::Value::String(text.clone())),
        },
    }
}

/// The allowed key nearest to a misspelt one (edit distance ≤ 3).
fn closest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (distance(word, a), *a))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, a)| a)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_suggest_the_nearest() {
        let node = super::super::yaml::parse("f.yaml", "nmae: x\n").unwrap();
        let mut r = Reader::new("f.yaml");
        r.fields(&node, "users[0]", &["name", "email"]);
        assert_eq!(
            r.errors[0].to_string(),
            "f.yaml:1:1: users[0].nmae: unknown field `nmae` (did you mean `name`?); expected one of: name, email"
        );
    }

    #[test]
    fn free_form_yaml_becomes_json() {
        let node =
            super::super::yaml::parse("f.yaml", "a: 1\nb: 'x'\nc: [true, ~]\nd: 2.5\n").unwrap();
        assert_eq!(
            to_json(&node),
            serde_json::json!({"a": 1, "b": "x", "c": [true, null], "d": 2.5})
        );
    }
}
