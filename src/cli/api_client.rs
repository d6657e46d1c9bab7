//! The CLI's HTTP client for the agent's API: address from `-address`, `CARAVAN_ADDR`,
//! `NOMAD_ADDR` or `http://127.0.0.1:4646`; errors carry the status and Nomad's plain-text reason.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ApiArgs;

/// A client for one agent.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    address: String,
    namespace: Option<String>,
}

impl ApiClient {
    pub fn new(address: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            address: address.trim_end_matches('/').to_owned(),
            namespace: None,
        }
    }

    pub fn from_args(api: &ApiArgs) -> Self {
        let mut client = Self::new(&api.resolved_address());
        client.namespace = api.namespace.clone();
        client
    }

    fn url(&self, path: &str) -> String {
        let mut url = format!("{}{path}", self.address);
        if let Some(namespace) = &self.namespace {
            url.push(if path.contains('?') { '&' } else { '?' });
            url.push_str("namespace=");
            url.push_str(namespace);
        }
        url
    }

    async fn decode<T: DeserializeOwned>(
        response: reqwest::Response,
        what: &str,
    ) -> anyhow::Result<(T, u64)> {
        let status = response.status();
        let index = response
            .headers()
            .get("X-Nomad-Index")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        let text = response.text().await.with_context(|| what.to_owned())?;
        if !status.is_success() {
            anyhow::bail!(
                "{what}: Unexpected response code: {} ({})",
                status.as_u16(),
                text.trim()
            );
        }
        let body =
            serde_json::from_str(&text).with_context(|| format!("{what}: decoding the reply"))?;
        Ok((body, index))
    }

    /// GETs `path`, returning the body and `X-Nomad-Index`.
    pub async fn get_with_index<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<(T, u64)> {
        let what = format!("Error querying {path}");
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .with_context(|| format!("{what}: the agent at {} did not answer", self.address))?;
        Self::decode(response, &what).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        Ok(self.get_with_index(path).await?.0)
    }

    /// A blocking query: waits up to `wait` for the index to pass `index`.
    pub async fn get_blocking<T: DeserializeOwned>(
        &self,
        path: &str,
        index: u64,
        wait: Duration,
    ) -> anyhow::Result<(T, u64)> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{separator}index={index}&wait={}ms", wait.as_millis());
        self.get_with_index(&path).await
    }

    pub async fn put<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let what = format!("Error writing {path}");
        let response = self
            .http
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .with_context(|| format!("{what}: the agent at {} did not answer", self.address))?;
        Ok(Self::decode(response, &what).await?.0)
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let what = format!("Error deleting {path}");
        let response = self
            .http
            .delete(self.url(path))
            .send()
            .await
            .with_context(|| format!("{what}: the agent at {} did not answer", self.address))?;
        Ok(Self::decode(response, &what).await?.0)
    }
}

/// RFC 3339 time of Unix nanoseconds, as Nomad's CLI prints times.
pub fn format_time(unix_nanos: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_nanos(u64::try_from(unix_nanos).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The first eight characters of an ID unless `verbose`.
pub fn short_id(id: &str, verbose: bool) -> &str {
    if verbose {
        id
    } else {
        id.get(..8).unwrap_or(id)
    }
}

/// A borderless table, as Nomad's CLI prints columns.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table.set_header(header.iter().copied());
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// `key = value` lines aligned on `=`, as Nomad's CLI prints records.
pub fn key_values(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(key, value)| format!("{key:<width$} = {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}
