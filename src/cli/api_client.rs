//! The CLI's HTTP client for the agent's API: JSON reads and writes, blocking queries, ID prefix
//! resolution, and errors worded as Nomad's CLI words them.
//!
//! Boundary: this is the only place the CLI talks to an agent; commands see `serde_json::Value`s
//! in the API's shape (Nomad's PascalCase JSON), never the agent's internals.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::ApiArgs;

/// A reply body and the `X-Nomad-Index` that came with it.
#[derive(Debug)]
pub struct Indexed {
    pub body: Value,
    pub index: u64,
}

/// An answer other than 2xx, with the API's plain-text reason.
#[derive(Debug, thiserror::Error)]
#[error("Unexpected response code: {status} ({reason})")]
pub struct UnexpectedResponse {
    pub status: u16,
    pub reason: String,
}

/// A client for one agent address.
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: String,
    namespace: Option<String>,
    region: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(args: &ApiArgs) -> anyhow::Result<Self> {
        let mut base = args.resolved_address();
        if !base.contains("://") {
            base = format!("http://{base}");
        }
        let base = base.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("failed to build the HTTP client")?;
        Ok(Self {
            base,
            namespace: args.namespace.clone(),
            region: args.region.clone(),
            http,
        })
    }

    /// The agent's address, as given.
    pub fn address(&self) -> &str {
        &self.base
    }

    fn url(&self, path_and_query: &str) -> String {
        let mut url = format!("{}{path_and_query}", self.base);
        let mut extra = Vec::new();
        if let Some(namespace) = &self.namespace {
            extra.push(format!("namespace={namespace}"));
        }
        if let Some(region) = &self.region {
            extra.push(format!("region={region}"));
        }
        if !extra.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&extra.join("&"));
        }
        url
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request.send().await.map_err(|err| {
            anyhow::anyhow!(
                "{}",
                // reqwest's own chain repeats the URL; the root cause is what a person needs.
                std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
                    .last()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| err.to_string())
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let reason = response.text().await.unwrap_or_default();
        Err(UnexpectedResponse {
            status: status.as_u16(),
            reason: reason.trim().to_owned(),
        }
        .into())
    }

    async fn json_of(response: reqwest::Response) -> anyhow::Result<Indexed> {
        let index = response
            .headers()
            .get("X-Nomad-Index")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        let text = response.text().await?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).context("the agent's reply is not JSON")?
        };
        Ok(Indexed { body, index })
    }

    /// `GET path`, the body as JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.get_indexed(path).await?.body)
    }

    /// `GET path` with its index.
    pub async fn get_indexed(&self, path: &str) -> anyhow::Result<Indexed> {
        let response = self.send(self.http.get(self.url(path))).await?;
        Self::json_of(response).await
    }

    /// A blocking query: returns when the object's index passes `index` or `wait` elapses.
    pub async fn get_blocking(
        &self,
        path: &str,
        index: u64,
        wait: Duration,
    ) -> anyhow::Result<Indexed> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{separator}index={index}&wait={}ms", wait.as_millis());
        let request = self
            .http
            .get(self.url(&path))
            .timeout(wait + Duration::from_secs(10));
        Self::json_of(self.send(request).await?).await
    }

    /// `GET path`, the raw response for streaming bodies.
    pub async fn get_stream(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        self.send(self.http.get(self.url(path))).await
    }

    /// `PUT path` with a raw body (a snapshot file).
    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> anyhow::Result<()> {
        self.send(self.http.put(self.url(path)).body(body)).await?;
        Ok(())
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self.send(self.http.put(self.url(path)).json(body)).await?;
        Ok(Self::json_of(response).await?.body)
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self.send(self.http.post(self.url(path)).json(body)).await?;
        Ok(Self::json_of(response).await?.body)
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.send(self.http.delete(self.url(path))).await?;
        Ok(Self::json_of(response).await?.body)
    }

    /// Lists `/v1/<plural>?prefix=` and returns the one object whose `ID` starts with `prefix`.
    /// An exact match wins; several matches are an error listing them, as Nomad's CLI does.
    pub async fn resolve(&self, kind: ObjectKind, prefix: &str) -> anyhow::Result<Value> {
        let (plural, noun) = kind.names();
        let query = short_prefix(prefix);
        let list = self
            .get(&format!("/v1/{plural}?prefix={}", encode(&query)))
            .await
            .with_context(|| format!("Error querying {noun}"))?;
        let matches: Vec<Value> = list
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|item| str_of(item, "ID").starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if let Some(exact) = matches.iter().find(|item| str_of(item, "ID") == prefix) {
            return Ok(exact.clone());
        }
        match matches.len() {
            // Nomad's wording differs by command: jobs say "ID", nodes only "prefix".
            0 => match kind {
                ObjectKind::Job => anyhow::bail!("No job(s) with prefix or ID {prefix:?} found"),
                ObjectKind::Node => anyhow::bail!("No node(s) with prefix {prefix:?} found"),
                _ => anyhow::bail!("No {noun}(s) with prefix or id {prefix:?} found"),
            },
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            _ => Err(anyhow::anyhow!(ambiguous(kind, &matches))),
        }
    }
}

/// The kinds of object the CLI resolves by ID prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Job,
    Alloc,
    Eval,
    Node,
    Deployment,
}

impl ObjectKind {
    /// The list path and the noun Nomad's messages use.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            ObjectKind::Job => ("jobs", "job"),
            ObjectKind::Alloc => ("allocations", "allocation"),
            ObjectKind::Eval => ("evaluations", "evaluation"),
            ObjectKind::Node => ("nodes", "node"),
            ObjectKind::Deployment => ("deployments", "deployment"),
        }
    }
}

/// Nomad queries UUID prefixes in even-length hex only: an odd prefix is cut by one for the query
/// and filtered client-side (Nomad: `api.Allocations().PrefixList` callers, `sanitizeUUIDPrefix`).
fn short_prefix(prefix: &str) -> String {
    let is_uuid_like = prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if is_uuid_like && prefix.len() % 2 == 1 {
        prefix[..prefix.len() - 1].to_owned()
    } else {
        prefix.to_owned()
    }
}

fn ambiguous(kind: ObjectKind, matches: &[Value]) -> String {
    match kind {
        ObjectKind::Job => {
            let mut text = String::from("Prefix matched multiple jobs\n\n");
            text.push_str(&super::format::jobs_table(matches));
            text
        }
        ObjectKind::Alloc => {
            let mut text = String::from("Prefix matched multiple allocations\n\n");
            let rows: Vec<Vec<String>> = matches
                .iter()
                .map(|alloc| {
                    vec![
                        super::format::short_id(str_of(alloc, "ID"), false),
                        super::format::short_id(str_of(alloc, "EvalID"), false),
                        str_of(alloc, "JobID").to_owned(),
                        str_of(alloc, "TaskGroup").to_owned(),
                        str_of(alloc, "DesiredStatus").to_owned(),
                        str_of(alloc, "ClientStatus").to_owned(),
                    ]
                })
                .collect();
            text.push_str(&super::format::table(
                &[
                    "ID",
                    "Eval ID",
                    "Job ID",
                    "Task Group",
                    "Desired Status",
                    "Client Status",
                ],
                &rows,
            ));
            text
        }
        ObjectKind::Node => format!(
            "Prefix matched multiple nodes\n\n{}",
            super::node_status::nodes_table(matches, true)
        ),
        ObjectKind::Eval => format!(
            "Prefix matched multiple evaluations\n\n{}",
            super::eval_status::evals_table(matches, true)
        ),
        ObjectKind::Deployment => {
            let (_, noun) = kind.names();
            let ids: Vec<&str> = matches.iter().map(|item| str_of(item, "ID")).collect();
            format!("Prefix matched multiple {noun}s\n\n{}", ids.join("\n"))
        }
    }
}

/// A string field of a JSON object, or "".
pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An integer field of a JSON object, or 0.
pub fn i64_of(value: &Value, key: &str) -> i64 {
    value
        .get(key)
        .and_then(|field| field.as_i64().or_else(|| field.as_f64().map(|f| f as i64)))
        .unwrap_or(0)
}

/// A boolean field of a JSON object, or false.
pub fn bool_of(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Runs a CLI command's async body on a small runtime.
pub fn block_on<T>(
    future: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?
        .block_on(future)
}
