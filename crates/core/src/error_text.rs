//! An error as one line of text for a person: its message followed by each cause that adds
//! something (reqwest's own text is only "error sending request"; axum's rejections keep
//! serde's "unknown field `x` at line 1 column 9" in a cause).

/// `e`'s message, then `: cause` for each cause whose text it does not already contain.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cause = c.source();
    }
    out
}

/// What a binary prints on standard error when it fails: [`with_causes`], each of its lines
/// (a configuration file reports one problem a line) starting `error: `.
pub fn report(e: &dyn std::error::Error) -> String {
    lines(&with_causes(e))
}

/// `text` with `error: ` at the start of each line.
pub fn lines(text: &str) -> String {
    text.lines()
        .map(|l| format!("error: {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::with_causes;

    #[derive(Debug, thiserror::Error)]
    #[error("sending the report")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("bad body: connection refused")]
    struct Repeats(#[source] Inner);

    #[test]
    fn causes_are_added_once() {
        assert_eq!(
            with_causes(&Outer(Inner)),
            "sending the report: connection refused"
        );
        assert_eq!(with_causes(&Repeats(Inner)), "bad body: connection refused");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("c.toml:1: bad\nc.toml:2: worse")]
    struct Lines;

    #[test]
    fn every_line_of_a_report_says_error() {
        assert_eq!(
            super::report(&Outer(Inner)),
            "error: sending the report: connection refused"
        );
        assert_eq!(
            super::report(&Lines),
            "error: c.toml:1: bad\nerror: c.toml:2: worse"
        );
    }
}
