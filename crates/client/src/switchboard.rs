//! A switchboard's API as one value: its URL, the token, the HTTP client and the time limits.

use std::time::Duration;

use paddock_core::api::error::ErrorBody;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::transport::{http_client, read_bounded, retry};
use crate::{ClientError, check_http_url};

/// The time limits of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting (TCP), for every request.
    pub connect: Duration,
    /// A whole call of [`Switchboard::call`] and the helpers on it (not a stream from
    /// [`Switchboard::request`], which may last as long as a job).
    pub call: Duration,
    /// How many times an idempotent call (GET, PUT, DELETE) is tried when no answer came
    /// (refused, reset, timed out); the waits between tries double from 250 ms.
    pub tries: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            call: Duration::from_secs(60),
            tries: 3,
        }
    }
}

/// Most bytes of an answer [`Switchboard::call`] reads (a job list, a deployment state).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Most bytes of an error answer read for its message.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// The switchboard at one URL, called with one token.
#[derive(Debug, Clone)]
pub struct Switchboard {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    timeouts: Timeouts,
}

impl Switchboard {
    /// The switchboard at `url` (checked; `from` names where the URL came from in errors),
    /// called with `token` as a bearer token when there is one.
    pub fn new(url: &str, from: &str, token: Option<String>) -> Result<Switchboard, ClientError> {
        check_http_url(url, from)?;
        Ok(Switchboard::with_timeouts(url, token, Timeouts::default()))
    }

    /// As [`Switchboard::new`], with other limits, and the URL taken as it is (checked by
    /// the caller).
    pub fn with_timeouts(url: &str, token: Option<String>, timeouts: Timeouts) -> Switchboard {
        let http = http_client(timeouts.connect);
        Switchboard {
            base: url.trim_end_matches('/').to_string(),
            token,
            http,
            timeouts,
        }
    }

    /// The switchboard at `url` (taken as it is), called with `token` through `http` (a
    /// client the caller shares, so connections are reused) within `timeouts`; `http`'s own
    /// connect limit applies.
    pub fn from_parts(
        url: &str,
        token: Option<String>,
        http: reqwest::Client,
        timeouts: Timeouts,
    ) -> Switchboard {
        Switchboard {
            base: url.trim_end_matches('/').to_string(),
            token,
            http,
            timeouts,
        }
    }

    /// The same switchboard with other time limits.
    pub fn limited(self, timeouts: Timeouts) -> Switchboard {
        Switchboard::with_timeouts(&self.base, self.token, timeouts)
    }

    /// The URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The token calls are made with.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A request of `/api/v1{path}` with the token and no call time limit (a stream: job
    /// events, the console); send it with [`Switchboard::send`].
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends `req` (made by [`Switchboard::request`]) once: no answer is
    /// [`ClientError::Connect`], an error status [`ClientError::Status`] with the server's
    /// message.
    pub async fn send(&self, req: RequestBuilder) -> Result<Response, ClientError> {
        let req = req.build().map_err(|e| self.no_answer(e))?;
        let method = req.method().clone();
        let path = req
            .url()
            .path()
            .strip_prefix("/api/v1")
            .unwrap_or(req.url().path())
            .to_string();
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| self.no_answer(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = read_bounded(resp, MAX_ERROR_BYTES)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Err(ClientError::Status {
            method,
            path,
            status,
            message,
        })
    }

    /// One call of `method` `path` with `body` (JSON bytes, or none): the answer's bytes,
    /// read up to [`MAX_ANSWER_BYTES`], within the call time limit; tried again when no
    /// answer came and the method is idempotent.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ClientError> {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        let tries = if idempotent { self.timeouts.tries } else { 1 };
        let no_answer = |e: &ClientError| matches!(e, ClientError::Connect { .. });
        retry(tries, no_answer, || async {
            let mut req = self
                .request(method.clone(), path)
                .timeout(self.timeouts.call);
            if let Some(b) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            let resp = self.send(req).await?;
            read_bounded(resp, MAX_ANSWER_BYTES)
                .await
                .map_err(|e| ClientError::Answer {
                    method: method.clone(),
                    path: path.to_string(),
                    cause: e.to_string(),
                })
        })
        .await
    }

    /// One call with a JSON `body` (or none), its answer decoded as `T`.
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Encode {
                method: method.clone(),
                path: path.to_string(),
                cause: e.to_string(),
            })?;
        let answer = self.call_raw(method.clone(), path, bytes).await?;
        serde_json::from_slice(&answer).map_err(|e| ClientError::Answer {
            method,
            path: path.to_string(),
            cause: format!("not the expected JSON: {e}"),
        })
    }

    /// `GET path`, decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    /// `POST path` with `body`, decoded.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with `body`, decoded.
    pub async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`, decoded.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::DELETE, path, None).await
    }

    fn no_answer(&self, e: reqwest::Error) -> ClientError {
        // The URL is named once, by the error (reqwest's own text would repeat it).
        ClientError::Connect {
            base: self.base.clone(),
            cause: paddock_core::error_text::with_causes(&e.without_url()),
        }
    }
}
