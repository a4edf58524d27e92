//! What this build can reach: plain HTTP and WebSocket. TLS is not built in yet, so every
//! configuration that takes a URL refuses `https://` and `wss://` when it is read (and in
//! `check-config`), instead of failing the first time the URL is used.

/// A URL that needs TLS, which this build does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{url:?}: https:// and wss:// are not supported by this build (no TLS yet); use http:// or \
     ws:// over a network you trust, or a TLS-terminating proxy on this host"
)]
pub struct TlsUnsupported {
    pub url: String,
}

/// Refuses a URL whose scheme needs TLS.
pub fn require_plain(url: &str) -> Result<(), TlsUnsupported> {
    let scheme = url.trim().split("://").next().unwrap_or_default();
    if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        Err(TlsUnsupported {
            url: url.to_string(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_schemes_are_refused_with_the_url() {
        for u in ["https://a:1", "HTTPS://a", "wss://a/x", " https://a"] {
            let e = require_plain(u).unwrap_err();
            assert!(e.to_string().contains("no TLS"), "{e}");
            assert!(e.to_string().contains(u.trim()), "{e}");
        }
        for u in [
            "http://a",
            "ws://a",
            "file:///x",
            "/a/path",
            "ssh://git@h/r",
        ] {
            assert!(require_plain(u).is_ok(), "{u}");
        }
    }
}
