//! Tags and tag expressions. A supervisor carries tags such as `board:nrf52840dk`; a job asks
//! for supervisors with an expression such as `board:nrf52840dk & !site:pton | arch:x86_64`.
//!
//! Grammar (precedence from loosest to tightest):
//! ```text
//! expr    := and ( '|' and )*
//! and     := unary ( ( '&' | ';' ) unary )*        ';' is Treadmill's `a;b` AND
//! unary   := '!' unary | '(' expr ')' | pattern
//! pattern := part ( ':' part )*                    part := [A-Za-z0-9_.+=@/*-]+
//! ```
//! `*` inside a pattern matches any run of characters (including `:`); a pattern matches a
//! supervisor when any of its tags matches. Errors carry the 1-based column.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.+=@/-".contains(c)
}

/// A supervisor's tag: `part(:part)*` with no glob.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a tag is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tag {0:?}: use parts of A-Z a-z 0-9 _ . + = @ / - separated by ':'")]
pub struct TagError(String);

impl FromStr for Tag {
    type Err = TagError;
    fn from_str(s: &str) -> Result<Self, TagError> {
        let ok = !s.is_empty()
            && s.len() <= 256
            && s.split(':')
                .all(|p| !p.is_empty() && p.chars().all(is_tag_char));
        if ok {
            Ok(Tag(s.to_string()))
        } else {
            Err(TagError(s.to_string()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A parsed tag expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagExpr {
    /// A tag pattern, possibly with `*` globs.
    Pattern(String),
    Not(Box<TagExpr>),
    And(Box<TagExpr>, Box<TagExpr>),
    Or(Box<TagExpr>, Box<TagExpr>),
}

/// A parse error: what was expected, what was found, and at which column (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    pub column: usize,
    pub expected: &'static str,
    pub found: String,
}

impl TagExpr {
    /// Does a supervisor with these tags satisfy the expression?
    pub fn matches<S: AsRef<str>>(&self, tags: &[S]) -> bool {
        match self {
            TagExpr::Pattern(p) => tags.iter().any(|t| glob_match(p, t.as_ref())),
            TagExpr::Not(e) => !e.matches(tags),
            TagExpr::And(a, b) => a.matches(tags) && b.matches(tags),
            TagExpr::Or(a, b) => a.matches(tags) || b.matches(tags),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            TagExpr::Or(..) => 1,
            TagExpr::And(..) => 2,
            TagExpr::Not(_) | TagExpr::Pattern(_) => 3,
        }
    }
}

/// `*` matches any (possibly empty) run of characters; everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

impl fmt::Display for TagExpr {
    /// Prints the expression with the fewest parentheses that parse back to the same tree
    /// (binary operators associate to the left).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let child = |f: &mut fmt::Formatter<'_>, e: &TagExpr, min: u8| {
            if e.precedence() < min {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        match self {
            TagExpr::Pattern(p) => f.write_str(p),
            TagExpr::Not(e) => {
                f.write_str("!")?;
                child(f, e, 3)
            }
            TagExpr::And(a, b) => {
                child(f, a, 2)?;
                f.write_str(" & ")?;
                child(f, b, 3)
            }
            TagExpr::Or(a, b) => {
                child(f, a, 1)?;
                f.write_str(" | ")?;
                child(f, b, 2)
            }
        }
    }
}

impl FromStr for TagExpr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut p = Parser {
            chars: s.char_indices().collect(),
            pos: 0,
            depth: 0,
            terms: 0,
        };
        let e = p.expr()?;
        p.skip_ws();
        if let Some(&(_, c)) = p.chars.get(p.pos) {
            let expected = if c == ')' {
                "end of expression (unbalanced ')')"
            } else {
                "an operator ('&', '|', ';') or end of expression"
            };
            return Err(p.error(expected));
        }
        Ok(e)
    }
}

impl Serialize for TagExpr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TagExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Deeper nesting than this is refused, so a hostile expression cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// More terms (tag patterns) than this in one expression are refused. With [`MAX_DEPTH`] this
/// bounds the depth of the tree (a flat chain `a & b & …` is a left-deep tree), so parsing,
/// printing, matching and dropping an expression all fit a small stack.
pub const MAX_TERMS: usize = 256;
const _: () = assert!(MAX_TERMS == 256, "the parse error's text names the limit");

struct Parser {
    chars: Vec<(usize, char)>,
    pos: usize,
    depth: usize,
    /// Patterns read so far.
    terms: usize,
}

impl Parser {
    fn skip_ws(&mut self) {
        while self
            .chars
            .get(self.pos)
            .is_some_and(|(_, c)| c.is_whitespace())
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn error(&self, expected: &'static str) -> ParseError {
        let found = match self.chars.get(self.pos) {
            Some((_, c)) => format!("{c:?}"),
            None => "end of expression".to_string(),
        };
        ParseError {
            column: self.pos + 1,
            expected,
            found,
        }
    }

    fn expr(&mut self) -> Result<TagExpr, ParseError> {
        let mut left = self.and()?;
        while self.peek() == Some('|') {
            self.pos += 1;
            let right = self.and()?;
            left = TagExpr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<TagExpr, ParseError> {
        let mut left = self.unary()?;
        while matches!(self.peek(), Some('&' | ';')) {
            self.pos += 1;
            let right = self.unary()?;
            left = TagExpr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<TagExpr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("a shallower expression (nesting limit 64)"));
        }
        let r = match self.peek() {
            Some('!') => {
                self.pos += 1;
                self.unary().map(|e| TagExpr::Not(Box::new(e)))
            }
            Some('(') => {
                self.pos += 1;
                let e = self.expr()?;
                if self.peek() == Some(')') {
                    self.pos += 1;
                    Ok(e)
                } else {
                    Err(self.error("')' or an operator"))
                }
            }
            _ => self.pattern(),
        };
        self.depth -= 1;
        r
    }

    fn pattern(&mut self) -> Result<TagExpr, ParseError> {
        self.skip_ws();
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.error("no more than 256 terms in one expression"));
        }
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(&(_, c)) = self.chars.get(self.pos) {
                if is_tag_char(c) || c == '*' {
                    out.push(c);
                    self.pos += 1;
                } else {
                    break;
                }
            }
            if self.pos == start {
                return Err(self.error(if out.is_empty() {
                    "a tag, '!' or '('"
                } else {
                    "a tag value after ':'"
                }));
            }
            if self.chars.get(self.pos).is_some_and(|&(_, c)| c == ':') {
                out.push(':');
                self.pos += 1;
            } else {
                return Ok(TagExpr::Pattern(out));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> TagExpr {
        s.parse().unwrap()
    }

    #[test]
    fn precedence_and_semantics() {
        let e = p("board:nrf52840dk & !site:pton | arch:x86_64");
        assert!(e.matches(&["board:nrf52840dk", "site:sea"]));
        assert!(!e.matches(&["board:nrf52840dk", "site:pton"]));
        assert!(e.matches(&["arch:x86_64", "site:pton"]));
        assert_eq!(p("a;b"), p("a & b"));
        assert!(p("board:nrf*").matches(&["board:nrf52840dk"]));
        assert!(p("*:pton").matches(&["site:pton"]));
        assert!(!p("board:nrf*").matches(&["board:esp32"]));
        assert!(p("!(a | b)").matches(&["c"]));
        assert!(!p("a").matches::<&str>(&[]));
    }

    #[test]
    fn errors_name_the_column() {
        let e = "board:(x".parse::<TagExpr>().unwrap_err();
        assert_eq!(e.column, 7);
        assert!(e.to_string().contains("column 7"), "{e}");
        assert_eq!("a &".parse::<TagExpr>().unwrap_err().column, 4);
        assert_eq!("(a | b".parse::<TagExpr>().unwrap_err().column, 7);
        assert_eq!("a b".parse::<TagExpr>().unwrap_err().column, 3);
        assert_eq!("a)".parse::<TagExpr>().unwrap_err().column, 2);
        assert_eq!("".parse::<TagExpr>().unwrap_err().column, 1);
        assert!(
            "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a"
                .parse::<TagExpr>()
                .is_err()
        );
    }

    /// A flat chain of thousands of terms (a left-deep tree) once overflowed a worker thread's
    /// stack while being parsed, printed, matched or dropped, and aborted the switchboard.
    #[test]
    fn long_flat_chains_are_refused_not_a_stack_overflow() {
        for op in [" & ", " | ", ";"] {
            let long = vec!["board:x"; 20_000].join(op);
            let e = long.parse::<TagExpr>().unwrap_err();
            assert!(e.to_string().contains("256 terms"), "{e}");
            // Refused at the first term past the limit, so the column points there.
            assert!(e.column < long.len(), "{e}");
        }
    }

    /// The largest expression the parser takes is handled in a small stack: parse, print,
    /// match, compare, clone and drop, on a thread with 512 KiB of stack (a quarter of a
    /// default thread's; 128 KiB proved too tight for an unoptimised build, where this test
    /// overflowed when run alone).
    #[test]
    fn the_largest_accepted_expression_fits_a_small_stack() {
        let run = |s: String| {
            std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn(move || {
                    let e: TagExpr = s.parse().unwrap();
                    let shown = e.to_string();
                    assert_eq!(shown.parse::<TagExpr>().unwrap(), e.clone());
                    assert!(!e.matches(&["board:y"]));
                    drop(e);
                })
                .unwrap()
                .join()
                .unwrap();
        };
        run(vec!["board:x"; MAX_TERMS].join(" & "));
        run(vec!["board:x"; MAX_TERMS].join(" | "));
        run(format!("{}a", "!".repeat(60)));
        let nested = format!("{}a{}", "(a & ".repeat(60), ")".repeat(60));
        run(nested);
    }

    #[test]
    fn display_uses_minimal_parentheses() {
        assert_eq!(p("a & (b | c)").to_string(), "a & (b | c)");
        assert_eq!(p("(a & b) | c").to_string(), "a & b | c");
        assert_eq!(p("a & (b & c)").to_string(), "a & (b & c)");
        assert_eq!(p("!(a&b);c").to_string(), "!(a & b) & c");
    }

    #[test]
    fn tags_are_validated() {
        assert!("board:nrf52840dk".parse::<Tag>().is_ok());
        for bad in ["", "a::b", "a b", "a*", ":a"] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    fn arb_expr() -> impl Strategy<Value = TagExpr> {
        let leaf = "[a-z0-9*][a-z0-9_.*-]{0,6}(:[a-z0-9*]{1,6}){0,2}".prop_map(TagExpr::Pattern);
        leaf.prop_recursive(6, 48, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| TagExpr::Not(Box::new(e))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| TagExpr::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| TagExpr::Or(Box::new(a), Box::new(b))),
            ]
        })
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(e in arb_expr()) {
            let shown = e.to_string();
            prop_assert_eq!(shown.parse::<TagExpr>(), Ok(e));
        }

        #[test]
        fn parser_never_panics(s in "[ a-z:*&|!();]{0,40}") {
            let _ = s.parse::<TagExpr>();
        }

        /// Long flat chains of mixed operators, on a thread with a small stack: refused past
        /// the term limit, and otherwise printed back to the same tree.
        #[test]
        fn long_flat_chains(ops in proptest::collection::vec(prop_oneof![Just(" & "), Just(" | "), Just(";")], 0..600)) {
            let mut s = String::from("t0");
            for (i, op) in ops.iter().enumerate() {
                s.push_str(op);
                s.push_str(&format!("t{}", i + 1));
            }
            let terms = ops.len() + 1;
            let r = std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn(move || match s.parse::<TagExpr>() {
                    Ok(e) => {
                        let back: TagExpr = e.to_string().parse().unwrap();
                        (true, back == e && !e.matches(&["x"]))
                    }
                    Err(e) => (false, e.to_string().contains("256 terms")),
                })
                .unwrap()
                .join()
                .unwrap();
            prop_assert_eq!(r, (terms <= MAX_TERMS, true));
        }
    }
}
