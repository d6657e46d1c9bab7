//! The CLI's HTTP client for the agent's API: JSON reads and writes, blocking queries, ID prefix
//! resolution, and errors worded as Nomad's CLI words them.
//!
//! Boundary: the CLI reaches an agent only through [`crate::api::client`]; the commands not yet
//! moved to its wire types see `serde_json::Value`s in the API's shape through this wrapper.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::ApiArgs;
pub use crate::api::client::encode;
use crate::api::client::{ApiClient as TypedClient, ClientConfig, HasId, PrefixMatch};

/// A reply body and the `X-Nomad-Index` that came with it.
#[derive(Debug)]
pub struct Indexed {
    pub body: Value,
    pub index: u64,
}

/// A client for one agent address: the typed [`crate::api::client::ApiClient`], with the
/// untyped reads the commands not yet moved to wire types still make.
#[derive(Clone, Debug)]
pub struct ApiClient {
    typed: TypedClient,
}

impl ApiClient {
    pub fn new(args: &ApiArgs) -> anyhow::Result<Self> {
        let typed = TypedClient::new(ClientConfig {
            address: args.resolved_address(),
            region: args.region.clone(),
            namespace: args.namespace.clone(),
            token: args.resolved_token(),
            stale: false,
        })?;
        Ok(Self { typed })
    }

    /// The typed client underneath.
    pub fn typed(&self) -> &TypedClient {
        &self.typed
    }

    /// The agent's address, as given.
    pub fn address(&self) -> &str {
        self.typed.address()
    }

    /// `GET path`, the body as JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.typed.get(path).await?)
    }

    /// A blocking query: returns when the object's index passes `index` or `wait` elapses.
    pub async fn get_blocking(
        &self,
        path: &str,
        index: u64,
        wait: Duration,
    ) -> anyhow::Result<Indexed> {
        let (body, meta) = self.typed.blocking(path, index, wait).await?;
        Ok(Indexed {
            body,
            index: meta.last_index,
        })
    }

    /// `GET path`, the raw response for streaming bodies.
    pub async fn get_stream(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self.typed.get_stream(path).await?)
    }

    /// `PUT path` with a raw body (a snapshot file).
    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> anyhow::Result<()> {
        Ok(self.typed.put_bytes(path, body).await?)
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self.typed.put(path, body).await?)
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self.typed.post(path, body).await?)
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.typed.delete(path).await?)
    }

    /// Resolves `prefix` among `/v1/<plural>` with the typed client's prefix rules and
    /// returns the one object; none or several are errors worded as Nomad's CLI words them.
    pub async fn resolve(&self, kind: ObjectKind, prefix: &str) -> anyhow::Result<Value> {
        let (plural, noun) = kind.names();
        let found = self
            .typed
            .by_prefix::<Untyped>(plural, prefix)
            .await
            .with_context(|| format!("Error querying {noun}"))?;
        match found {
            PrefixMatch::One(Untyped(object)) => Ok(object),
            // Nomad's wording differs by command: jobs say "ID", nodes only "prefix".
            PrefixMatch::None => match kind {
                ObjectKind::Job => anyhow::bail!("No job(s) with prefix or ID {prefix:?} found"),
                ObjectKind::Node => anyhow::bail!("No node(s) with prefix {prefix:?} found"),
                _ => anyhow::bail!("No {noun}(s) with prefix or id {prefix:?} found"),
            },
            PrefixMatch::Many(matches) => {
                let matches: Vec<Value> = matches.into_iter().map(|Untyped(value)| value).collect();
                Err(anyhow::anyhow!(ambiguous(kind, &matches)))
            }
        }
    }
}

/// A list entry read as JSON, resolvable by its `ID`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(transparent)]
struct Untyped(Value);

impl HasId for Untyped {
    fn id(&self) -> &str {
        str_of(&self.0, "ID")
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
