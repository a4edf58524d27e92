//! YAML read into a tree that remembers where every node was (line and column), so every
//! later error can point at its place. Built from the event parser of `yaml-rust2`.
//!
//! Kept deliberately plain: one document per file, no anchors or aliases (a fleet file is
//! read by people; a reference elsewhere in the file hides what a supervisor really gets),
//! no duplicate keys.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::diagnostic::{Diagnostic, Pos};

/// A node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub at: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Keys are scalars, in file order, each with its own position.
    Map(Vec<(Key, Node)>),
    Seq(Vec<Node>),
    /// A scalar's text; `plain` when unquoted (only plain scalars can be null, bool or a
    /// number).
    Scalar {
        text: String,
        plain: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub at: Pos,
    pub name: String,
}

impl Node {
    /// Null: an empty document, `~`, `null` or nothing after a key.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Map(_) => "a mapping",
            Value::Seq(_) => "a list",
            Value::Scalar { .. } if self.is_null() => "null",
            Value::Scalar { .. } => "a scalar",
        }
    }
}

fn pos(m: &Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

enum Frame {
    Map {
        at: Pos,
        entries: Vec<(Key, Node)>,
        key: Option<Key>,
    },
    Seq {
        at: Pos,
        items: Vec<Node>,
    },
}

struct Builder<'a> {
    file: &'a str,
    stack: Vec<Frame>,
    docs: Vec<Node>,
    errors: Vec<Diagnostic>,
}

impl Builder<'_> {
    fn error(&mut self, at: Pos, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::new(self.file, at, "", message.into()));
    }

    /// Hands a finished node to its parent (or to the document list).
    fn add(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => {
                    let name = match node.value {
                        Value::Scalar { text, .. } => text,
                        _ => {
                            self.errors.push(Diagnostic::new(
                                self.file,
                                node.at,
                                "",
                                format!("a mapping key must be a scalar, not {}", node.kind()),
                            ));
                            String::new()
                        }
                    };
                    if let Some(Frame::Map { entries, key, .. }) = self.stack.last_mut() {
                        if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name) {
                            let message = format!(
                                "duplicate key `{name}` (first at line {}, column {})",
                                first.at.line, first.at.column
                            );
                            self.errors
                                .push(Diagnostic::new(self.file, node.at, &name, message));
                        }
                        *key = Some(Key { at: node.at, name });
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = pos(&mark);
        match ev {
            Event::Alias(_) => {
                self.error(
                    at,
                    "aliases (`*name`) are not supported: write the value out",
                );
                self.add(Node {
                    at,
                    value: Value::Scalar {
                        text: String::new(),
                        plain: true,
                    },
                });
            }
            Event::Scalar(text, style, anchor, _tag) => {
                if anchor > 0 {
                    self.error(at, "anchors (`&name`) are not supported");
                }
                let plain = matches!(style, TScalarStyle::Plain);
                self.add(Node {
                    at,
                    value: Value::Scalar { text, plain },
                });
            }
            Event::SequenceStart(anchor, _) => {
                if anchor > 0 {
                    self.error(at, "anchors (`&name`) are not supported");
                }
                self.stack.push(Frame::Seq { at, items: vec![] });
            }
            Event::MappingStart(anchor, _) => {
                if anchor > 0 {
                    self.error(at, "anchors (`&name`) are not supported");
                }
                self.stack.push(Frame::Map {
                    at,
                    entries: vec![],
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq { at, items }) => Node {
                        at,
                        value: Value::Seq(items),
                    },
                    Some(Frame::Map { at, entries, .. }) => Node {
                        at,
                        value: Value::Map(entries),
                    },
                    None => return,
                };
                self.add(node);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Parses one YAML file. An empty file is a null node at 1:1. Every error (syntax,
/// duplicate keys, anchors, several documents) names `file`.
pub fn parse(file: &str, text: &str) -> Result<Node, Vec<Diagnostic>> {
    let mut b = Builder {
        file,
        stack: vec![],
        docs: vec![],
        errors: vec![],
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut b, true) {
        let at = pos(e.marker());
        return Err(vec![Diagnostic::new(file, at, "", e.info().to_string())]);
    }
    if b.docs.len() > 1 {
        let at = b.docs[1].at;
        b.error(at, "one YAML document per file (found a second one)");
    }
    if !b.errors.is_empty() {
        return Err(b.errors);
    }
    Ok(b.docs.into_iter().next().unwrap_or(Node {
        at: Pos { line: 1, column: 1 },
        value: Value::Scalar {
            text: String::new(),
            plain: true,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(n: &Node) -> &str {
        match &n.value {
            Value::Scalar { text, .. } => text,
            _ => panic!("not a scalar: {n:?}"),
        }
    }

    #[test]
    fn nodes_carry_their_positions() {
        let n = parse("f.yaml", "a: 1\nlist:\n  - x\n  - 'y'\n").unwrap();
        let Value::Map(entries) = &n.value else {
            panic!()
        };
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[0].0.at, Pos { line: 1, column: 1 });
        assert_eq!(entries[0].1.at, Pos { line: 1, column: 4 });
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(scalar(&items[1]), "y");
        assert_eq!(items[1].at, Pos { line: 4, column: 5 });
        assert!(matches!(items[1].value, Value::Scalar { plain: false, .. }));
    }

    #[test]
    fn duplicate_keys_anchors_and_syntax_errors_are_located() {
        let e = parse("f.yaml", "a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "f.yaml:3:1: a: duplicate key `a` (first at line 1, column 1)"
        );
        let e = parse("f.yaml", "a: &x 1\nb: *x\n").unwrap_err();
        assert!(e.iter().any(|d| d.message.contains("aliases")), "{e:?}");
        let e = parse("f.yaml", "a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].file, "f.yaml");
        assert!(e[0].line >= 2, "{e:?}");
        let e = parse("f.yaml", "a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e[0].message.contains("one YAML document"), "{e:?}");
    }

    #[test]
    fn empty_files_are_null() {
        assert!(parse("f.yaml", "").unwrap().is_null());
        assert!(parse("f.yaml", "# only a comment\n").unwrap().is_null());
    }
}
