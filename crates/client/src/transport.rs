//! What every client here shares: the HTTP client's settings, bounded reading of answers,
//! transfer errors as text, and the retries of requests that got no answer.

use std::future::Future;
use std::time::Duration;

use reqwest::Response;

/// An HTTP client with keep-alive connections (up to 64 idle per host, for the parallel
/// downloads of a mirror), no Nagle delay, and `connect` as the limit of a TCP connect.
pub fn http_client(connect: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .connect_timeout(connect)
        .build()
        // Only a TLS back end or a resolver that cannot start fails here; neither is used.
        .unwrap_or_default()
}

/// A failed transfer's reqwest error as text: without the URL (the caller's message names it
/// once) and with its causes (reqwest's own text is only "error sending request").
pub fn transfer_text(e: reqwest::Error) -> String {
    paddock_core::error_text::with_causes(&e.without_url())
}

/// Why an answer's body was not read whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Larger than the caller reads (announced by its length, or found while reading).
    #[error("the answer is larger than {max} bytes")]
    TooLarge { max: usize },
    /// The transfer broke off (or ran past its time limit).
    #[error("{0}")]
    Transfer(String),
}

/// The body of `resp`, refused past `max` bytes without reading past them.
pub async fn read_bounded(mut resp: Response, max: usize) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(ReadError::TooLarge { max });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ReadError::Transfer(transfer_text(e)))?
    {
        if out.len() + chunk.len() > max {
            return Err(ReadError::TooLarge { max });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Runs `attempt` up to `tries` times (at least once) while it fails with an error that
/// `no_answer` says got no answer (refused, reset, timed out), waiting 250 ms, then twice as
/// long each time. Only idempotent requests are given more than one try.
pub async fn retry<T, E, F, Fut>(
    tries: u32,
    no_answer: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let tries = tries.max(1);
    let mut wait = Duration::from_millis(250);
    let mut n = 1;
    loop {
        match attempt().await {
            Err(e) if n < tries && no_answer(&e) => {
                tracing::debug!(error = %e, attempt = n, "no answer; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                n += 1;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn retry_tries_again_only_without_an_answer_and_stops_at_the_limit() {
        let calls = AtomicU32::new(0);
        let r: Result<(), String> = retry(
            3,
            |e: &String| e == "refused",
            || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err("refused".to_string())
            },
        )
        .await;
        assert_eq!(r, Err("refused".to_string()));
        assert_eq!(calls.load(Ordering::Relaxed), 3);

        let calls = AtomicU32::new(0);
        let r: Result<(), String> = retry(
            3,
            |e: &String| e == "refused",
            || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err("HTTP 500".to_string())
            },
        )
        .await;
        assert_eq!(r, Err("HTTP 500".to_string()));
        assert_eq!(calls.load(Ordering::Relaxed), 1, "an answer is not retried");

        let calls = AtomicU32::new(0);
        let r: Result<u32, String> = retry(
            0,
            |_: &String| true,
            || async { Err(format!("try {}", calls.fetch_add(1, Ordering::Relaxed))) },
        )
        .await;
        assert_eq!(r, Err("try 0".to_string()), "zero tries is one try");
    }
}
