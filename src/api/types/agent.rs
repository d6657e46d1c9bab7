//! The agent routes' messages: `/v1/agent/self`, `/v1/agent/members`, `/v1/agent/health`
//! (Nomad: `api/agent.go`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A member of the cluster as `/v1/agent/members` lists it (Nomad: `api.AgentMember`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentMember {
    pub name: String,
    pub addr: String,
    pub port: u16,
    pub tags: BTreeMap<String, String>,
    pub status: String,
    pub protocol_min: u8,
    pub protocol_max: u8,
    pub protocol_cur: u8,
    pub delegate_min: u8,
    pub delegate_max: u8,
    pub delegate_cur: u8,
}

/// `GET /v1/agent/members` (Nomad: `api.ServerMembers`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServerMembers {
    pub server_name: String,
    pub server_region: String,
    #[serde(rename = "ServerDC")]
    pub server_dc: String,
    pub members: Vec<AgentMember>,
}

/// `GET /v1/agent/self` (Nomad: `api.AgentSelf`; its keys are lowercase).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSelf {
    pub config: AgentConfig,
    pub member: AgentMember,
    /// Per subsystem (`raft`, `broker`, `client`...), its counters as strings, as Nomad's.
    pub stats: BTreeMap<String, BTreeMap<String, String>>,
}

/// The parts of the agent's configuration `/v1/agent/self` shows (Nomad: the agent's `Config`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentConfig {
    pub region: String,
    pub datacenter: String,
    pub node_name: String,
    pub data_dir: String,
    pub dev_mode: bool,
    pub version: AgentVersion,
    pub addresses: AgentAddresses,
    pub server: AgentServerConfig,
}

/// Nomad: `version.VersionInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentVersion {
    pub version: String,
}

/// Nomad: the agent's `Addresses`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentAddresses {
    #[serde(rename = "HTTP")]
    pub http: String,
    #[serde(rename = "RPC")]
    pub rpc: String,
}

/// Nomad: the agent's `ServerConfig`, the fields caravan has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentServerConfig {
    pub enabled: bool,
    pub bootstrap_expect: u32,
    pub num_schedulers: usize,
}

/// `GET /v1/agent/health` (Nomad: `api.AgentHealthResponse`): 200 when every part is healthy,
/// 500 otherwise, with this body either way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentHealthResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<AgentHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<AgentHealth>,
}

/// Nomad: `api.AgentHealth`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentHealth {
    pub ok: bool,
    pub message: String,
}
