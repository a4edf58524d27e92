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
}
