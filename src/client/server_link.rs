//! The client's link to the servers: registration, heartbeats, the allocation watch and status
//! updates, as a trait so the client loop runs against HTTP in production and an in-process fake
//! in unit tests.
//!
//! The HTTP implementation is [`crate::client::http_link::HttpServerLink`].

use std::time::Duration;

use futures::future::BoxFuture;

use crate::structs::{
    AllocId, Allocation, Node, NodeId, ServiceRegistration, ServiceRegistrationListStub, Variable,
};

/// Why a call to the servers failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The servers do not know this node (e.g. they lost their state): register again.
    #[error("node {0} is not registered with the servers")]
    NodeUnknown(NodeId),
    /// The servers could not be reached or answered with an error; retry later.
    #[error("server call {call} failed: {message}")]
    Unavailable { call: &'static str, message: String },
    /// The servers refused the call (403), with their reason (`ACL token not found`...).
    #[error("{0}")]
    Denied(String),
    /// The request to the link itself was wrong (a server address that is not one).
    #[error("{0}")]
    Invalid(String),
}

/// The answer to a registration or heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// Heartbeat again within this time or be marked down.
    pub heartbeat_ttl: Duration,
}

pub use crate::api::types::node::{AllocUpdate, NodeClientAllocs, TokenGrant};

/// The calls a client makes to the servers. Object-safe: the client holds an
/// `Arc<dyn ServerLink>`.
pub trait ServerLink: Send + Sync + 'static {
    /// Registers (or re-registers) the node.
    fn register<'a>(
        &'a self,
        node: &'a Node,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, LinkError>>;

    /// Keeps the node alive; [`LinkError::NodeUnknown`] asks the client to register again.
    fn heartbeat<'a>(
        &'a self,
        node_id: &'a NodeId,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, LinkError>>;

    /// A blocking query on the node's own allocation index: returns once the servers changed
    /// the node's allocations past `min_index` (or the server's wait elapsed, with the same
    /// index), with every allocation's ID and `AllocModifyIndex` only.
    fn watch_allocs<'a>(
        &'a self,
        node_id: &'a NodeId,
        min_index: u64,
    ) -> BoxFuture<'a, Result<NodeClientAllocs, LinkError>>;

    /// The allocations `alloc_ids` of the node in full, with their jobs; unknown IDs and
    /// allocations of other nodes are left out.
    fn pull_allocs<'a>(
        &'a self,
        node_id: &'a NodeId,
        alloc_ids: &'a [AllocId],
    ) -> BoxFuture<'a, Result<Vec<Allocation>, LinkError>>;

    /// Reports client-side status changes, many allocations at once.
    fn update_allocs<'a>(
        &'a self,
        updates: &'a [AllocUpdate],
    ) -> BoxFuture<'a, Result<(), LinkError>>;

    /// Registers and deregisters the native services of the node's allocations.
    fn sync_services<'a>(
        &'a self,
        node_id: &'a NodeId,
        upserts: &'a [ServiceRegistration],
        deletes: &'a [String],
    ) -> BoxFuture<'a, Result<(), LinkError>>;

    /// What the secret a caller of the client's own routes offered grants (none: anonymous);
    /// [`LinkError::Denied`] with the servers' reason for a token they do not accept.
    fn resolve_token<'a>(
        &'a self,
        node_id: &'a NodeId,
        secret: Option<&'a str>,
    ) -> BoxFuture<'a, Result<TokenGrant, LinkError>>;

    /// A blocking query on the instances of service `name` in `namespace` (Nomad's
    /// `GET /v1/service/<name>`, what templates' `nomadService` reads): answers with the
    /// instances and the catalog's index once it passes `min_index` (at once for 0).
    fn read_service<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        min_index: u64,
    ) -> BoxFuture<'a, Result<(Vec<ServiceRegistration>, u64), LinkError>>;

    /// A blocking query on the services of `namespace` (`GET /v1/services`, what
    /// `nomadServices` reads), as [`ServerLink::read_service`].
    fn list_services<'a>(
        &'a self,
        namespace: &'a str,
        min_index: u64,
    ) -> BoxFuture<'a, Result<(Vec<ServiceRegistrationListStub>, u64), LinkError>>;

    /// The servers the link calls, in the order it tries them, as `host:port` (Nomad's
    /// `Client.GetServers`, `GET /v1/agent/servers`).
    fn servers(&self) -> Vec<String>;

    /// Replaces the servers the link calls (Nomad's `Client.SetServers`,
    /// `PUT /v1/agent/servers`): the next call goes to the first. An address that is neither
    /// `host:port` nor an `http(s)://` URL is refused and nothing changes.
    fn set_servers(&self, servers: &[String]) -> Result<(), LinkError>;

    /// The variable at `path` that task `task` of the node's allocation `alloc_id` may read
    /// (what templates' `nomadVar` reads); `None` if there is none. The servers refuse
    /// ([`LinkError::Denied`]) a path outside the task's job's implicit paths.
    fn read_variable<'a>(
        &'a self,
        request: &'a VariableRequest,
    ) -> BoxFuture<'a, Result<Option<Variable>, LinkError>>;
}

/// Which variable a task reads, and on whose behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableRequest {
    pub node_id: NodeId,
    pub alloc_id: AllocId,
    pub task: String,
    pub path: String,
}
