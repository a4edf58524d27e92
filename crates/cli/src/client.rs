//! A small client for the switchboard's JSON API. Non-2xx answers become errors carrying the
//! status and the server's `error` message.

use anyhow::{Context, anyhow};
use paddock_core::api::error::ErrorBody;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ClientConfig;

/// Refuses a URL this client cannot use, naming where it came from (`from`: `PADDOCK_URL`, a
/// flag, a file), before reqwest's "builder error" could stand for it.
pub fn check_http_url(url: &str, from: &str) -> anyhow::Result<()> {
    paddock_core::transport::require_plain(url).with_context(|| from.to_string())?;
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" && u.has_host() => Ok(()),
        Ok(_) => Err(anyhow!(
            "{from}: {url:?} is not an http:// URL (expected http://HOST:PORT)"
        )),
        Err(e) => Err(anyhow!(
            "{from}: {url:?} is not a URL: {e} (expected http://HOST:PORT)"
        )),
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(url: &str, token: Option<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: url.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// From the environment / config file; a token is required.
    pub fn from_config() -> anyhow::Result<Client> {
        let c = ClientConfig::load()?;
        let url = c
            .url
            .ok_or_else(|| anyhow!("no switchboard URL: set PADDOCK_URL or run `paddock login`"))?;
        check_http_url(&url, c.url_from.as_deref().unwrap_or("the switchboard URL"))?;
        let token = c
            .token
            .ok_or_else(|| anyhow!("no API token: set PADDOCK_TOKEN or run `paddock login`"))?;
        crate::config::check_token(
            &token,
            c.token_from.as_deref().unwrap_or("the configuration"),
        )?;
        Ok(Client::new(&url, Some(token)))
    }

    /// The same switchboard and token, for the deploy library.
    pub fn deploy_target(&self) -> paddock_deploy::apply::Switchboard {
        paddock_deploy::apply::Switchboard {
            url: self.base.clone(),
            token: self.token.clone().unwrap_or_default(),
            http: self.http.clone(),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        // The URL is named once, in the context (reqwest's own text would repeat it).
        let resp = req
            .send()
            .await
            .map_err(reqwest::Error::without_url)
            .with_context(|| format!("connecting to {}", self.base))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Err(anyhow!(
            "{} {}: {msg}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ))
    }

    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<(T, serde_json::Value)> {
        let v: serde_json::Value = self
            .send(self.request(Method::GET, path))
            .await?
            .json()
            .await?;
        Ok((
            serde_json::from_value(v.clone()).context("decoding the answer")?,
            v,
        ))
    }

    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        Ok(self
            .send(self.request(Method::POST, path).json(body))
            .await?
            .json()
            .await?)
    }

    pub async fn patch_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        Ok(self
            .send(self.request(Method::PATCH, path).json(body))
            .await?
            .json()
            .await?)
    }
}
