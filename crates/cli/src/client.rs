//! The `paddock` command's switchboard client: [`paddock_client::Switchboard`] (URL checks,
//! token, timeouts, retries, the server's error message) with the URL and token from the
//! configuration, and `anyhow` errors for the commands.

use anyhow::anyhow;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ClientConfig;

/// Refuses a URL this client cannot use, naming where it came from (`from`: `PADDOCK_URL`, a
/// flag, a file), before reqwest's "builder error" could stand for it.
pub fn check_http_url(url: &str, from: &str) -> anyhow::Result<()> {
    paddock_client::check_http_url(url, from)?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Client {
    sb: paddock_client::Switchboard,
}

impl Client {
    pub fn new(url: &str, token: Option<String>) -> Client {
        Client {
            sb: paddock_client::Switchboard::with_timeouts(url, token, Default::default()),
        }
    }

    /// From the environment / config file; a token is required.
    pub fn from_config() -> anyhow::Result<Client> {
        let c = ClientConfig::load()?;
        let url = c
            .url
            .ok_or_else(|| anyhow!("no switchboard URL: set PADDOCK_URL or run `paddock login`"))?;
        let from = c.url_from.as_deref().unwrap_or("the switchboard URL");
        check_http_url(&url, from)?;
        let token = c
            .token
            .ok_or_else(|| anyhow!("no API token: set PADDOCK_TOKEN or run `paddock login`"))?;
        crate::config::check_token(
            &token,
            c.token_from.as_deref().unwrap_or("the configuration"),
        )?;
        Ok(Client {
            sb: paddock_client::Switchboard::new(&url, from, Some(token))?,
        })
    }

    /// The switchboard client itself.
    pub fn switchboard(&self) -> &paddock_client::Switchboard {
        &self.sb
    }

    /// The same switchboard and token, for the deploy library.
    pub fn deploy_target(&self) -> paddock_deploy::apply::Switchboard {
        paddock_deploy::apply::Switchboard {
            url: self.sb.base().to_string(),
            token: self.sb.token().unwrap_or_default().to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// A request of `/api/v1{path}` with the token, for [`Client::send`] (no time limit: a
    /// stream).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.sb.request(method, path)
    }

    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        Ok(self.sb.send(req).await?)
    }

    /// `GET path`: the answer decoded, and as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<(T, serde_json::Value)> {
        let v: serde_json::Value = self.sb.get(path).await?;
        Ok((
            serde_json::from_value(v.clone())
                .map_err(|e| anyhow!("GET {path}: decoding the answer: {e}"))?,
            v,
        ))
    }

    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        Ok(self.sb.post(path, body).await?)
    }

    pub async fn patch_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        Ok(self.sb.patch(path, body).await?)
    }
}
