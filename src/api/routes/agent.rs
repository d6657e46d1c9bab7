//! `/v1/status/leader`, `/v1/status/peers`, `/v1/agent/self`, `/v1/agent/members`,
//! `/v1/agent/health` (Nomad: `command/agent/agent_endpoint.go`, `status_endpoint.go`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::api::error::ApiError;
use crate::server::Server;

pub async fn leader(State(server): State<Arc<Server>>) -> Json<String> {
    Json(server.leader_addr().unwrap_or_default())
}

pub async fn peers(State(server): State<Arc<Server>>) -> Json<Vec<String>> {
    Json(server.peers())
}

/// A member of the cluster as `/v1/agent/members` lists it (Nomad: `api.AgentMember`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
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

fn self_member(server: &Server) -> AgentMember {
    let options = &server.options;
    let tags = BTreeMap::from([
        ("role".to_owned(), "nomad".to_owned()),
        ("region".to_owned(), options.region.clone()),
        ("dc".to_owned(), options.datacenter.clone()),
        ("build".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        ("port".to_owned(), options.rpc_addr.port().to_string()),
        (
            "bootstrap".to_owned(),
            (options.bootstrap_expect == 1).to_string(),
        ),
        ("expect".to_owned(), options.bootstrap_expect.to_string()),
        ("raft_vsn".to_owned(), "3".to_owned()),
        ("id".to_owned(), server.raft_id().to_string()),
        ("leader".to_owned(), server.is_leader().to_string()),
    ]);
    AgentMember {
        name: format!("{}.{}", options.node_name, options.region),
        addr: options.rpc_addr.ip().to_string(),
        port: options.rpc_addr.port(),
        tags,
        status: "alive".to_owned(),
        protocol_min: 1,
        protocol_max: 5,
        protocol_cur: 2,
        delegate_min: 2,
        delegate_max: 5,
        delegate_cur: 4,
    }
}

pub async fn members(State(server): State<Arc<Server>>) -> Json<serde_json::Value> {
    let options = &server.options;
    Json(json!({
        "ServerName": options.node_name,
        "ServerRegion": options.region,
        "ServerDC": options.datacenter,
        "Members": [self_member(&server)],
    }))
}

pub async fn agent_self(State(server): State<Arc<Server>>) -> Json<serde_json::Value> {
    let options = &server.options;
    let metrics = server.raft.raft.metrics().borrow().clone();
    Json(json!({
        "config": {
            "Region": options.region,
            "Datacenter": options.datacenter,
            "NodeName": options.node_name,
            "DataDir": options.data_dir,
            "DevMode": options.dev,
            "Version": { "Version": env!("CARGO_PKG_VERSION") },
            "Addresses": { "HTTP": options.http_addr.to_string(), "RPC": options.rpc_addr.to_string() },
            "Server": {
                "Enabled": true,
                "BootstrapExpect": options.bootstrap_expect,
                "NumSchedulers": options.num_workers,
            },
        },
        "member": self_member(&server),
        "stats": {
            "raft": {
                "state": format!("{:?}", metrics.state),
                "term": metrics.current_term.to_string(),
                "last_log_index": metrics.last_log_index.unwrap_or(0).to_string(),
                "applied_index": metrics.last_applied.map_or(0, |log_id| log_id.index).to_string(),
                "snapshot_index": metrics.snapshot.map_or(0, |log_id| log_id.index).to_string(),
            },
            "broker": server.broker.stats(),
            "blocked_evals": { "total_blocked": server.blocked.len() },
            "heartbeats": { "tracked_nodes": server.heartbeats.tracked() },
        },
    }))
}

pub async fn health(State(server): State<Arc<Server>>) -> Result<Response, ApiError> {
    let known_leader = server.leader_addr().is_some();
    let body = json!({
        "server": {
            "ok": known_leader,
            "message": if known_leader { "ok" } else { "no known leader" },
        },
    });
    let status = if known_leader {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Ok((status, Json(body)).into_response())
}
