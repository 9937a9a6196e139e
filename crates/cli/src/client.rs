//! How client commands reach a server: `--server`/`EVALMINT_URL` and `--api-key`/`EVALMINT_API_KEY`,
//! falling back to the admin key a local `evalmint serve` saved in its data directory.

use std::path::PathBuf;

use anyhow::{Context, bail};

#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// The evalmint server.
    #[arg(
        long = "server",
        env = "EVALMINT_URL",
        default_value = "http://127.0.0.1:4318"
    )]
    url: String,
    /// API key with the review scope. Defaults to ./evalmint-data/admin-key when present.
    #[arg(long, env = "EVALMINT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

/// A configured HTTP client for one server.
pub(crate) struct Client {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl ServerArgs {
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let key = match &self.api_key {
            Some(key) => key.clone(),
            None => {
                let saved = PathBuf::from("evalmint-data/admin-key");
                std::fs::read_to_string(&saved)
                    .map(|k| k.trim().to_owned())
                    .with_context(|| {
                        "no API key: pass --api-key or set EVALMINT_API_KEY (a local server saves its admin key in evalmint-data/admin-key)"
                    })?
            }
        };
        Ok(Client::new(&self.url, key))
    }
}

impl Client {
    /// A client for the server at `url` that authenticates with `key`.
    pub(crate) fn new(url: &str, key: String) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: url.trim_end_matches('/').to_owned(),
            key,
        }
    }

    /// GETs a JSON document, turning API errors into their message.
    pub(crate) async fn get(&self, path_and_query: &str) -> anyhow::Result<serde_json::Value> {
        self.get_with(path_and_query, &[]).await
    }

    /// GETs a JSON document with query parameters (encoded here).
    pub(crate) async fn get_with(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.url);
        self.send(&url, self.http.get(&url).query(query)).await
    }

    /// GETs a body as bytes (an export), turning API errors into their message.
    pub(crate) async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.url);
        let response = self
            .http
            .get(&url)
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("cannot reach {}: is `evalmint serve` running?", self.url))?;
        let status = response.status();
        let bytes = response.bytes().await?.to_vec();
        if !status.is_success() {
            let body: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or("no details");
            bail!("{url} answered {status}: {message}");
        }
        Ok(bytes)
    }

    /// DELETEs with query parameters (encoded here) and returns the JSON answer.
    pub(crate) async fn delete(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.url);
        self.send(&url, self.http.delete(&url).query(query)).await
    }

    /// POSTs a body of `content_type`, turning API errors into their message.
    pub(crate) async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.url);
        let request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.send(&url, request).await
    }

    async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<serde_json::Value> {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("cannot reach {}: is `evalmint serve` running?", self.url))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no details");
            bail!("{url} answered {status}: {message}");
        }
        Ok(body)
    }
}
