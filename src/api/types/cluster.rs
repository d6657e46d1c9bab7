//! The messages between servers that form and change the cluster, and the operator's view of it
//! (Nomad: `structs.RaftConfigurationResponse`, `api.AgentMember`'s tags).
//!
//! | method and path                         | body                | reply                    |
//! |-----------------------------------------|---------------------|--------------------------|
//! | `GET /v1/internal/raft/info`            |                     | [`RaftServerInfo`]       |
//! | `POST /v1/internal/raft/join`           | [`RaftJoinRequest`] | [`RaftJoinResponse`]     |
//! | `GET /v1/operator/raft/configuration`   |                     | [`RaftConfiguration`]    |
//! | `DELETE /v1/operator/raft/peer?id=`     |                     | (empty)                  |
//! | `GET /v1/operator/snapshot`             |                     | [`SnapshotHeader`], state (binary) |
//! | `PUT /v1/operator/snapshot`             | a snapshot file     | (empty)                  |

use serde::{Deserialize, Serialize};

/// What a server says about itself to the servers that look for it: enough to decide who
/// bootstraps, or where to ask to join.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftServerInfo {
    /// The server's Raft ID, kept in its data dir.
    #[serde(rename = "ID")]
    pub id: u64,
    pub name: String,
    pub region: String,
    pub datacenter: String,
    /// Where the other servers reach its RPC port.
    #[serde(rename = "RPCAddr")]
    pub rpc_addr: String,
    /// Its HTTP API.
    #[serde(rename = "HTTPAddr")]
    pub http_addr: String,
    /// It holds a Raft configuration (bootstrapped, or replicated to it).
    pub initialized: bool,
    /// It is a voter of the configuration it holds.
    pub voter: bool,
    /// Its `bootstrap_expect`.
    pub bootstrap_expect: u32,
    /// The RPC address of the leader it knows, if any.
    #[serde(rename = "LeaderRPCAddr")]
    pub leader_rpc_addr: Option<String>,
    pub build: String,
}

/// Asks the leader to add a server: as a learner first, promoted to voter once it caught up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftJoinRequest {
    #[serde(rename = "ID")]
    pub id: u64,
    #[serde(rename = "RPCAddr")]
    pub rpc_addr: String,
}

/// The answer to [`RaftJoinRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftJoinResponse {
    /// The Raft index of the configuration that made it a voter.
    pub index: u64,
}

/// `GET /v1/operator/raft/configuration` (Nomad: `structs.RaftConfigurationResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftConfiguration {
    pub servers: Vec<RaftServer>,
    pub index: u64,
}

/// One server of the Raft configuration (Nomad: `structs.RaftServer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftServer {
    #[serde(rename = "ID")]
    pub id: String,
    /// The server's name (`name.region`), or its address when it does not answer.
    pub node: String,
    pub address: String,
    pub leader: bool,
    pub voter: bool,
    pub raft_protocol: String,
}

/// `POST /v1/agent/join?address=...` (Nomad: `api.joinResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    pub num_joined: usize,
    pub error: String,
}

/// The first item of an operator snapshot file (`GET /v1/operator/snapshot`, a `codec` stream):
/// what the file holds, readable without the state that follows it (`operator snapshot inspect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotHeader {
    /// Always [`SnapshotHeader::FORMAT`].
    pub format: String,
    pub version: u32,
    /// The Raft index and term the state was read at.
    pub index: u64,
    pub term: u64,
    /// Unix nanoseconds when the snapshot was taken.
    pub created_at: i64,
    pub jobs: u64,
    pub allocations: u64,
    pub nodes: u64,
    pub evaluations: u64,
    pub deployments: u64,
}

impl SnapshotHeader {
    pub const FORMAT: &'static str = "caravan-snapshot";
    /// A binary `codec` stream.
    pub const VERSION: u32 = 2;
    /// A JSON header line and the state as JSON, as earlier builds wrote.
    pub const JSON_VERSION: u32 = 1;
}
