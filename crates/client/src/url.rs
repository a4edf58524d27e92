//! Which URLs the client takes: `http://HOST[:PORT]` (no TLS in this build yet).

use crate::ClientError;

/// Refuses a URL the client cannot use, naming where it came from (`from`: `PADDOCK_URL`, a
/// flag, a file), before reqwest's "builder error" could stand for it.
pub fn check_http_url(url: &str, from: &str) -> Result<reqwest::Url, ClientError> {
    let bad = |why: String| ClientError::BadUrl {
        from: from.to_string(),
        url: url.to_string(),
        why,
    };
    if let Err(e) = paddock_core::transport::require_plain(url) {
        return Err(ClientError::Transport {
            from: from.to_string(),
            why: e.to_string(),
        });
    }
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" && u.has_host() => Ok(u),
        Ok(_) => Err(bad("is not an http:// URL".into())),
        Err(e) => Err(bad(format!("is not a URL: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_with_a_host() {
        assert!(check_http_url("http://127.0.0.1:8080", "x").is_ok());
        let e = check_http_url("localhost:8080", "PADDOCK_URL").unwrap_err();
        assert_eq!(
            e.to_string(),
            "PADDOCK_URL: \"localhost:8080\" is not an http:// URL (expected http://HOST:PORT)"
        );
        let e = check_http_url("nope", "--url").unwrap_err().to_string();
        assert!(
            e.starts_with("--url: \"nope\" is not a URL: ")
                && e.ends_with("(expected http://HOST:PORT)"),
            "{e}"
        );
        let e = check_http_url("https://x", "--url")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--url: "), "{e}");
    }
}
