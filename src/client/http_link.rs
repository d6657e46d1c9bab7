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
//! | resolve token | `POST /v1/internal/node/<node_id>/acl/resolve` body `{"SecretID": <a caller's secret>}` | 200 `TokenGrant` | 403: the token is unknown or expired |
//! | read service | `GET /v1/service/<name>?namespace=<ns>&index=<n>&wait=<ms>` | 200 `[ServiceRegistration]`, `X-Nomad-Index` | |
//! | list services | `GET /v1/services?namespace=<ns>&index=<n>&wait=<ms>` | 200 `[ServiceRegistrationListStub]`, `X-Nomad-Index` | |
//!
//! Every call but the registration carries the node's secret (made at first registration and kept
//! in the data dir) in `X-Nomad-Token`, as Nomad's client RPCs carry it as their auth token: the
//! servers answer a node's calls only with its own secret (`server::node_identity`), and a 403
//! `Permission denied` otherwise. The header is marked sensitive, so it is never logged.
//!
//! These are the servers' client-facing routes (`src/api/routes/internal.rs`), with the wire
//! types of [`crate::api::types::node`], called through the one typed client
//! ([`crate::api::client::ApiClient`], the CLI's too) pointed at the current server.
//!
//! The watch is a blocking query on the node's own allocation index: the server holds it until
//! the servers change this node's allocations past `index` or `wait` elapses (then it answers
//! with the same index). Any other status or a
//! transport error is [`LinkError::Unavailable`]; the client retries with backoff and the link
//! moves on to the next server address. Addresses are HTTP base URLs (`http://10.0.0.1:4646`);
//! a bare `host:port` gets `http://`, or `https://` from a TLS dialer (`tls.rpc`, which also
//! presents the agent's certificate). Every register and heartbeat answer names the voting servers
//! (`Servers`, their RPC addresses, which serve the API too): they become the failover list, the
//! configured addresses kept after them, so a client given one server reaches all of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::IgnoredAny;

use crate::api::client::{ApiClient, ClientConfig, ClientError};
use crate::api::types::node::{
    AllocUpdateRequest, NodeHeartbeatRequest, NodeRegisterRequest, NodeServerInfo,
    NodeUpdateResponse, PullAllocsRequest, PullAllocsResponse, TokenGrant, TokenResolveRequest,
};
use crate::api::types::services::ServiceSyncRequest;
use crate::client::server_link::{
    AllocUpdate, HeartbeatResponse, LinkError, NodeClientAllocs, ServerLink, VariableRequest,
};
use crate::structs::{
    AllocId, Allocation, Node, NodeId, ServiceRegistration, ServiceRegistrationListStub, Variable,
};
use crate::tls::{Dial, Dialer};

/// How long the server may hold a watch.
const DEFAULT_WATCH_WAIT: Duration = Duration::from_secs(300);

/// The HTTP link; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct HttpServerLink {
    /// The typed client; each call points it at the current server with the node's secret.
    api: ApiClient,
    /// The servers configured, then those the servers name (every register and heartbeat
    /// answer lists them all, Nomad's `Servers`), as HTTP base URLs.
    servers: std::sync::Mutex<Vec<String>>,
    /// The servers the operator named (config, or `PUT /v1/agent/servers`): kept after those the
    /// servers name, so the link can always fall back on them.
    configured: std::sync::Mutex<Vec<String>>,
    current: AtomicUsize,
    watch_wait: Duration,
    /// Its TLS and scheme.
    dialer: Dialer,
    /// The secret the node last registered with; every later call carries it as proof of
    /// identity.
    secret_id: std::sync::Mutex<String>,
}

impl HttpServerLink {
    /// A link to `servers` (at least one HTTP address).
    pub fn new(servers: &[String]) -> HttpServerLink {
        Self::with_watch_wait(servers, DEFAULT_WATCH_WAIT)
    }

    /// As [`HttpServerLink::new`], with the blocking query's `wait`.
    pub fn with_watch_wait(servers: &[String], watch_wait: Duration) -> HttpServerLink {
        let dialer = Dialer::new(None, Dial::Servers, Duration::from_secs(5)).unwrap_or_default();
        Self::build(servers, watch_wait, dialer)
    }

    /// A link to `servers` through `dialer`: its TLS, and its scheme for bare `host:port`
    /// addresses (the configured ones and those the servers name).
    pub fn with_dialer(servers: &[String], dialer: Dialer) -> HttpServerLink {
        Self::build(servers, DEFAULT_WATCH_WAIT, dialer)
    }

    fn build(servers: &[String], watch_wait: Duration, dialer: Dialer) -> HttpServerLink {
        let servers: Vec<String> = servers.iter().map(|server| dialer.base(server)).collect();
        let config = ClientConfig {
            address: servers.first().cloned().unwrap_or_default(),
            ..ClientConfig::default()
        };
        HttpServerLink {
            api: ApiClient::with_http(config, dialer.http.clone()),
            dialer,
            servers: std::sync::Mutex::new(servers.clone()),
            configured: std::sync::Mutex::new(servers),
            current: AtomicUsize::new(0),
            watch_wait,
            secret_id: std::sync::Mutex::new(String::new()),
        }
    }

    fn lock_servers(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn configured(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.configured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn base(&self) -> Result<String, LinkError> {
        let servers = self.lock_servers();
        if servers.is_empty() {
            return Err(LinkError::Unavailable {
                call: "connect",
                message: "no servers configured".to_owned(),
            });
        }
        let index = self.current.load(Ordering::Relaxed) % servers.len();
        Ok(servers[index].clone())
    }

    /// The typed client at the current server, carrying the node's secret in `X-Nomad-Token`
    /// (none before the first registration).
    fn api(&self) -> Result<ApiClient, LinkError> {
        let secret_id = self.secret_id();
        let token = (!secret_id.is_empty()).then_some(secret_id);
        Ok(self.api.at(&self.base()?).with_token(token))
    }

    fn secret_id(&self) -> String {
        self.secret_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The servers this link knows now, as HTTP base URLs.
    pub fn known_servers(&self) -> Vec<String> {
        self.lock_servers().clone()
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
            .map(|server| self.dialer.base(&server.rpc_advertise_addr))
            .collect();
        for configured in self.configured().iter() {
            if !learned.contains(configured) {
                learned.push(configured.clone());
            }
        }
        let mut servers = self.lock_servers();
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

    /// A failed call: the link moves on to the next server and the client retries later.
    fn failed(&self, call: &'static str, error: &ClientError) -> LinkError {
        self.current.fetch_add(1, Ordering::Relaxed);
        let message = match error {
            ClientError::UnexpectedResponse { status, reason } => {
                format!("status {status}: {reason}")
            }
            other => other.to_string(),
        };
        LinkError::Unavailable { call, message }
    }

    fn ttl_of(&self, body: &NodeUpdateResponse) -> HeartbeatResponse {
        self.learn_servers(&body.servers);
        HeartbeatResponse {
            heartbeat_ttl: Duration::from_nanos(body.heartbeat_ttl),
        }
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
            let request = NodeRegisterRequest {
                node: Some(node.clone()),
            };
            // The registration proves the secret by carrying it in the node, not in a header.
            let body: NodeUpdateResponse = self
                .api()?
                .with_token(None)
                .put("/v1/internal/node/register", &request)
                .await
                .map_err(|error| self.failed("register", &error))?;
            Ok(self.ttl_of(&body))
        })
    }

    fn heartbeat<'a>(
        &'a self,
        node_id: &'a NodeId,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, LinkError>> {
        Box::pin(async move {
            let request = NodeHeartbeatRequest {
                status: None,
                secret_id: self.secret_id(),
            };
            let answer: Result<NodeUpdateResponse, _> = self
                .api()?
                .put(&format!("/v1/internal/node/{node_id}/heartbeat"), &request)
                .await;
            match answer {
                Ok(body) => Ok(self.ttl_of(&body)),
                Err(error) if error.status() == Some(404) => {
                    Err(LinkError::NodeUnknown(node_id.clone()))
                }
                Err(error) => Err(self.failed("heartbeat", &error)),
            }
        })
    }

    fn watch_allocs<'a>(
        &'a self,
        node_id: &'a NodeId,
        min_index: u64,
    ) -> BoxFuture<'a, Result<NodeClientAllocs, LinkError>> {
        Box::pin(async move {
            let path = format!("/v1/internal/node/{node_id}/client-allocs");
            self.api()?
                .blocking(&path, min_index, self.watch_wait)
                .await
                .map(|(allocs, _meta)| allocs)
                .map_err(|error| self.failed("watch allocations", &error))
        })
    }

    fn pull_allocs<'a>(
        &'a self,
        node_id: &'a NodeId,
        alloc_ids: &'a [AllocId],
    ) -> BoxFuture<'a, Result<Vec<Allocation>, LinkError>> {
        Box::pin(async move {
            let request = PullAllocsRequest {
                alloc_ids: alloc_ids.to_vec(),
            };
            let pulled: PullAllocsResponse = self
                .api()?
                .post(
                    &format!("/v1/internal/node/{node_id}/allocs/pull"),
                    &request,
                )
                .await
                .map_err(|error| self.failed("pull allocations", &error))?;
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
                let _: IgnoredAny = self
                    .api()?
                    .put(
                        &format!("/v1/internal/node/{node_id}/allocations"),
                        &AllocUpdateRequest { allocs },
                    )
                    .await
                    .map_err(|error| self.failed("update allocations", &error))?;
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
            let request = ServiceSyncRequest {
                upserts: upserts.to_vec(),
                deletes: deletes.to_vec(),
            };
            let _: IgnoredAny = self
                .api()?
                .put(&format!("/v1/internal/node/{node_id}/services"), &request)
                .await
                .map_err(|error| self.failed("sync services", &error))?;
            Ok(())
        })
    }

    fn resolve_token<'a>(
        &'a self,
        node_id: &'a NodeId,
        secret: Option<&'a str>,
    ) -> BoxFuture<'a, Result<TokenGrant, LinkError>> {
        Box::pin(async move {
            let request = TokenResolveRequest {
                secret_id: secret.map(str::to_owned),
            };
            let answer = self
                .api()?
                .post(
                    &format!("/v1/internal/node/{node_id}/acl/resolve"),
                    &request,
                )
                .await;
            match answer {
                Ok(grant) => Ok(grant),
                Err(ClientError::UnexpectedResponse {
                    status: 403,
                    reason,
                }) => Err(LinkError::Denied(reason)),
                Err(error) => Err(self.failed("resolve token", &error)),
            }
        })
    }

    fn read_service<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        min_index: u64,
    ) -> BoxFuture<'a, Result<(Vec<ServiceRegistration>, u64), LinkError>> {
        Box::pin(async move {
            let path = format!(
                "/v1/service/{}?namespace={}",
                crate::api::client::encode(name),
                crate::api::client::encode(namespace)
            );
            self.api()?
                .blocking(&path, min_index, self.watch_wait)
                .await
                .map(|(instances, meta)| (instances, meta.last_index))
                .map_err(|error| self.failed("read service", &error))
        })
    }

    fn list_services<'a>(
        &'a self,
        namespace: &'a str,
        min_index: u64,
    ) -> BoxFuture<'a, Result<(Vec<ServiceRegistrationListStub>, u64), LinkError>> {
        Box::pin(async move {
            let path = format!(
                "/v1/services?namespace={}",
                crate::api::client::encode(namespace)
            );
            self.api()?
                .blocking(&path, min_index, self.watch_wait)
                .await
                .map(|(services, meta)| (services, meta.last_index))
                .map_err(|error| self.failed("list services", &error))
        })
    }

    fn servers(&self) -> Vec<String> {
        self.lock_servers()
            .iter()
            .map(|base| {
                base.split_once("://")
                    .map_or(base.as_str(), |(_, address)| address)
                    .to_owned()
            })
            .collect()
    }

    fn set_servers(&self, servers: &[String]) -> Result<(), LinkError> {
        if servers.is_empty() {
            return Err(LinkError::Invalid("missing server address".to_owned()));
        }
        let mut bases = Vec::with_capacity(servers.len());
        for server in servers {
            let server = server.trim();
            let base = self.dialer.base(server);
            // A bare address needs its port; a URL may leave it to its scheme.
            let bare = !server.contains("://");
            let valid = reqwest::Url::parse(&base).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some_and(|host| !host.is_empty())
                    && (url.port().is_some() || !bare)
                    && url.path() == "/"
            });
            if !valid {
                return Err(LinkError::Invalid(format!(
                    "invalid server address {server:?}: expected host:port or an http(s) URL"
                )));
            }
            if !bases.contains(&base) {
                bases.push(base);
            }
        }
        tracing::info!(servers = ?bases, "the operator set the servers");
        *self.configured() = bases.clone();
        *self.lock_servers() = bases;
        self.current.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn read_variable<'a>(
        &'a self,
        request: &'a VariableRequest,
    ) -> BoxFuture<'a, Result<Option<Variable>, LinkError>> {
        Box::pin(async move {
            let encode = crate::api::client::encode;
            let path = format!(
                "/v1/internal/node/{}/var?alloc_id={}&task={}&path={}",
                request.node_id,
                encode(request.alloc_id.as_str()),
                encode(&request.task),
                encode(&request.path)
            );
            match self.api()?.get(&path).await {
                Ok(variable) => Ok(Some(variable)),
                Err(error) if error.status() == Some(404) => Ok(None),
                Err(ClientError::UnexpectedResponse {
                    status: 403,
                    reason,
                }) => Err(LinkError::Denied(reason)),
                Err(error) => Err(self.failed("read variable", &error)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_replaces_the_servers_and_bad_addresses_change_nothing() {
        let link = HttpServerLink::new(&["127.0.0.1:4647".to_owned()]);
        assert_eq!(link.servers(), vec!["127.0.0.1:4647"]);
        link.set_servers(&[
            "127.0.0.1:5001".to_owned(),
            "http://127.0.0.1:5002".to_owned(),
            "127.0.0.1:5001".to_owned(),
        ])
        .expect("valid addresses");
        assert_eq!(link.servers(), vec!["127.0.0.1:5001", "127.0.0.1:5002"]);
        assert_eq!(link.base().expect("a server"), "http://127.0.0.1:5001");

        for bad in [
            "",
            "127.0.0.1",
            "ftp://127.0.0.1:1",
            "127.0.0.1:1/path",
            "a b:1",
        ] {
            let error = link
                .set_servers(&["127.0.0.1:6000".to_owned(), bad.to_owned()])
                .expect_err(bad);
            assert!(
                error.to_string().contains("invalid server address"),
                "{bad}: {error}"
            );
        }
        assert!(link.set_servers(&[]).is_err());
        assert_eq!(link.servers(), vec!["127.0.0.1:5001", "127.0.0.1:5002"]);

        // Servers a heartbeat names come first; the operator's stay behind them.
        link.learn_servers(&[NodeServerInfo {
            rpc_advertise_addr: "127.0.0.1:7000".to_owned(),
            ..NodeServerInfo::default()
        }]);
        assert_eq!(
            link.servers(),
            vec!["127.0.0.1:7000", "127.0.0.1:5001", "127.0.0.1:5002"]
        );
    }
}
