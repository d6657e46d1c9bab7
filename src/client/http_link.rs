//! [`ServerLink`] over HTTP, against Nomad-shaped endpoints of the servers' HTTP API.
//!
//! Exactly these calls (JSON bodies in Nomad's PascalCase; durations in integer nanoseconds):
//!
//! | call | request | success | other answers |
//! |------|---------|---------|---------------|
//! | register | `PUT /v1/internal/node/register` body `{"Node": <Node>}` | 200 `{"HeartbeatTTL": <ns>, "Servers": [...], "Index": <n>}` | |
//! | heartbeat | `PUT /v1/internal/node/<node_id>/heartbeat` body `{"SecretID": <the node's secret>}` | 200 `{"HeartbeatTTL": <ns>, "Servers": [...]}` | 404: node unknown → the client registers again; 403: `Permission denied`, another node holds the ID |
//! | watch | `GET /v1/internal/node/<node_id>/client-allocs?index=<n>&wait=<go duration>` | 200 `NodeClientAllocs` (`{"Allocs": {<id>: <AllocModifyIndex>}, "Index": <n>}`) | |
//! | pull | `POST /v1/internal/node/<node_id>/allocs/pull` body `{"AllocIDs": [...]}` | 200 `PullAllocsResponse` (allocations, each job version once) | |
//! | update | `PUT /v1/internal/node/<node_id>/allocations` body `AllocUpdateRequest` | 200 (body ignored) | 403: not this node's allocation |
//! | services | `PUT /v1/internal/node/<node_id>/services` body `ServiceSyncRequest` | 200 (body ignored) | 403: not this node's allocation |
//!
//! Every call but the registration carries the node's secret (made at first registration and kept
//! in the data dir) in `X-Nomad-Token`, as Nomad's client RPCs carry it as their auth token: the
//! servers answer a node's calls only with its own secret (`server::node_identity`), and a 403
//! `Permission denied` otherwise. The header is marked sensitive, so it is never logged.
//!
//! These are the servers' client-facing routes (`src/api/routes/internal.rs`), with the wire
//! types of [`crate::api::types::node`].
//!
//! The watch is a blocking query on the node's own allocation index: the server holds it until
//! the servers change this node's allocations past `index` or `wait` elapses (then it answers
//! with the same index). Any other status or a
//! transport error is [`LinkError::Unavailable`]; the client retries with backoff and the link
//! moves on to the next server address. Addresses are HTTP base URLs (`http://10.0.0.1:4646`);
//! a bare `host:port` gets `http://`. Every register and heartbeat answer names the voting servers
//! (`Servers`, their RPC addresses, which serve the API too): they become the failover list, the
//! configured addresses kept after them, so a client given one server reaches all of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::api::types::node::{
    AllocUpdateRequest, NodeHeartbeatRequest, NodeRegisterRequest, NodeServerInfo,
    NodeUpdateResponse, PullAllocsRequest, PullAllocsResponse,
};
use crate::api::types::services::ServiceSyncRequest;
use crate::client::server_link::{
    AllocUpdate, HeartbeatResponse, LinkError, NodeClientAllocs, ServerLink,
};
use crate::structs::{AllocId, Allocation, Node, NodeId, ServiceRegistration};

/// How long the server may hold a watch.
const DEFAULT_WATCH_WAIT: Duration = Duration::from_secs(300);

/// The HTTP link; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct HttpServerLink {
    client: reqwest::Client,
    /// The servers configured, then those the servers name (every register and heartbeat
    /// answer lists them all, Nomad's `Servers`), as HTTP base URLs.
    servers: std::sync::Mutex<Vec<String>>,
    configured: Vec<String>,
    current: AtomicUsize,
    watch_wait: Duration,
    /// The secret the node last registered with; every later call carries it as proof of
    /// identity.
    secret_id: std::sync::Mutex<String>,
}

/// `host:port` → `http://host:port`; URLs keep their scheme, lose a trailing slash.
fn base_url(server: &str) -> String {
    let server = server.trim_end_matches('/');
    if server.contains("://") {
        server.to_owned()
    } else {
        format!("http://{server}")
    }
}

impl HttpServerLink {
    /// A link to `servers` (at least one HTTP address).
    pub fn new(servers: &[String]) -> HttpServerLink {
        Self::with_watch_wait(servers, DEFAULT_WATCH_WAIT)
    }

    /// As [`HttpServerLink::new`], with the blocking query's `wait`.
    pub fn with_watch_wait(servers: &[String], watch_wait: Duration) -> HttpServerLink {
        let servers: Vec<String> = servers.iter().map(|server| base_url(server)).collect();
        HttpServerLink {
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            servers: std::sync::Mutex::new(servers.clone()),
            configured: servers,
            current: AtomicUsize::new(0),
            watch_wait,
            secret_id: std::sync::Mutex::new(String::new()),
        }
    }

    fn servers(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn base(&self) -> Result<String, LinkError> {
        let servers = self.servers();
        if servers.is_empty() {
            return Err(LinkError::Unavailable {
                call: "connect",
                message: "no servers configured".to_owned(),
            });
        }
        let index = self.current.load(Ordering::Relaxed) % servers.len();
        Ok(servers[index].clone())
    }

    /// The servers this link knows now, as HTTP base URLs.
    pub fn known_servers(&self) -> Vec<String> {
        self.servers().clone()
    }

    /// Takes the servers a register or heartbeat answer named: they first, then the configured
    /// ones they did not name; the link stays on the server it is using.
    fn learn_servers(&self, named: &[NodeServerInfo]) {
        if named.is_empty() {
            return;
        }
        let mut learned: Vec<String> = named
            .iter()
            .filter(|server| !server.rpc_advertise_addr.is_empty())
            .map(|server| base_url(&server.rpc_advertise_addr))
            .collect();
        for configured in &self.configured {
            if !learned.contains(configured) {
                learned.push(configured.clone());
            }
        }
        let mut servers = self.servers();
        if *servers == learned {
            return;
        }
        let current = servers
            .get(self.current.load(Ordering::Relaxed) % servers.len().max(1))
            .cloned();
        let position = current
            .and_then(|current| learned.iter().position(|server| *server == current))
            .unwrap_or(0);
        tracing::debug!(servers = ?learned, "learned the servers");
        *servers = learned;
        self.current.store(position, Ordering::Relaxed);
    }

    /// `request` with the node's secret in `X-Nomad-Token` (none before the first registration).
    fn as_node(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let secret_id = self
            .secret_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match reqwest::header::HeaderValue::from_str(&secret_id) {
            Ok(mut value) if !secret_id.is_empty() => {
                value.set_sensitive(true);
                request.header("X-Nomad-Token", value)
            }
            _ => request,
        }
    }

    fn failed(&self, call: &'static str, message: String) -> LinkError {
        self.current.fetch_add(1, Ordering::Relaxed);
        LinkError::Unavailable { call, message }
    }

    async fn send(
        &self,
        call: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, LinkError> {
        request
            .send()
            .await
            .map_err(|err| self.failed(call, err.to_string()))
    }

    async fn expect_ok(
        &self,
        call: &'static str,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, LinkError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(self.failed(call, format!("status {}: {}", status.as_u16(), body.trim())))
    }

    async fn ttl_of(
        &self,
        call: &'static str,
        response: reqwest::Response,
    ) -> Result<HeartbeatResponse, LinkError> {
        let body: NodeUpdateResponse = response
            .json()
            .await
            .map_err(|err| self.failed(call, format!("bad body: {err}")))?;
        self.learn_servers(&body.servers);
        Ok(HeartbeatResponse {
            heartbeat_ttl: Duration::from_nanos(body.heartbeat_ttl),
        })
    }
}

impl ServerLink for HttpServerLink {
    fn register<'a>(
        &'a self,
        node: &'a Node,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, LinkError>> {
        Box::pin(async move {
            *self
                .secret_id
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = node.secret_id.clone();
            let url = format!("{}/v1/internal/node/register", self.base()?);
            let response = self
                .send(
                    "register",
                    self.client.put(url).json(&NodeRegisterRequest {
                        node: Some(node.clone()),
                    }),
                )
                .await?;
            let response = self.expect_ok("register", response).await?;
            self.ttl_of("register", response).await
        })
    }

    fn heartbeat<'a>(
        &'a self,
        node_id: &'a NodeId,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, LinkError>> {
        Box::pin(async move {
            let url = format!("{}/v1/internal/node/{node_id}/heartbeat", self.base()?);
            let secret_id = self
                .secret_id
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let request = self.as_node(self.client.put(url).json(&NodeHeartbeatRequest {
                status: None,
                secret_id,
            }));
            let response = self.send("heartbeat", request).await?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Err(LinkError::NodeUnknown(node_id.clone()));
            }
            let response = self.expect_ok("heartbeat", response).await?;
            self.ttl_of("heartbeat", response).await
        })
    }

    fn watch_allocs<'a>(
        &'a self,
        node_id: &'a NodeId,
        min_index: u64,
    ) -> BoxFuture<'a, Result<NodeClientAllocs, LinkError>> {
        Box::pin(async move {
            let wait = crate::structs::duration::format_go_duration(self.watch_wait);
            let url = format!(
                "{}/v1/internal/node/{node_id}/client-allocs?index={min_index}&wait={wait}",
                self.base()?
            );
            let request = self.as_node(
                self.client
                    .get(url)
                    .timeout(self.watch_wait + Duration::from_secs(30)),
            );
            let response = self.send("watch allocations", request).await?;
            let response = self.expect_ok("watch allocations", response).await?;
            response
                .json()
                .await
                .map_err(|err| self.failed("watch allocations", format!("bad body: {err}")))
        })
    }

    fn pull_allocs<'a>(
        &'a self,
        node_id: &'a NodeId,
        alloc_ids: &'a [AllocId],
    ) -> BoxFuture<'a, Result<Vec<Allocation>, LinkError>> {
        Box::pin(async move {
            let url = format!("{}/v1/internal/node/{node_id}/allocs/pull", self.base()?);
            let body = PullAllocsRequest {
                alloc_ids: alloc_ids.to_vec(),
            };
            let response = self
                .send(
                    "pull allocations",
                    self.as_node(self.client.post(url).json(&body)),
                )
                .await?;
            let response = self.expect_ok("pull allocations", response).await?;
            let pulled: PullAllocsResponse = response
                .json()
                .await
                .map_err(|err| self.failed("pull allocations", format!("bad body: {err}")))?;
            Ok(pulled.into_allocs())
        })
    }

    fn update_allocs<'a>(
        &'a self,
        updates: &'a [AllocUpdate],
    ) -> BoxFuture<'a, Result<(), LinkError>> {
        Box::pin(async move {
            // One request per node: a client only ever reports its own, so this is one request.
            let mut by_node: std::collections::BTreeMap<&NodeId, Vec<AllocUpdate>> =
                std::collections::BTreeMap::new();
            for update in updates {
                by_node
                    .entry(&update.node_id)
                    .or_default()
                    .push(update.clone());
            }
            for (node_id, allocs) in by_node {
                let url = format!("{}/v1/internal/node/{node_id}/allocations", self.base()?);
                let response = self
                    .send(
                        "update allocations",
                        self.as_node(self.client.put(url).json(&AllocUpdateRequest { allocs })),
                    )
                    .await?;
                self.expect_ok("update allocations", response).await?;
            }
            Ok(())
        })
    }

    fn sync_services<'a>(
        &'a self,
        node_id: &'a NodeId,
        upserts: &'a [ServiceRegistration],
        deletes: &'a [String],
    ) -> BoxFuture<'a, Result<(), LinkError>> {
        Box::pin(async move {
            let url = format!("{}/v1/internal/node/{node_id}/services", self.base()?);
            let body = ServiceSyncRequest {
                upserts: upserts.to_vec(),
                deletes: deletes.to_vec(),
            };
            let response = self
                .send(
                    "sync services",
                    self.as_node(self.client.put(url).json(&body)),
                )
                .await?;
            self.expect_ok("sync services", response).await?;
            Ok(())
        })
    }
}
