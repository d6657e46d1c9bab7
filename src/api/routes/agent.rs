//! `/v1/status/leader`, `/v1/status/peers`, `/v1/agent/self`, `/v1/agent/members`,
//! `/v1/agent/health` (Nomad: `command/agent/agent_endpoint.go`, `status_endpoint.go`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::api::types::agent::{
    AgentAddresses, AgentConfig, AgentHealth, AgentHealthResponse, AgentMember, AgentSelf,
    AgentServerConfig, AgentVersion, ServerMembers,
};
use crate::api::types::status::{StatusLeader, StatusPeers};
use crate::server::Server;

pub async fn leader(State(server): State<Arc<Server>>) -> Json<StatusLeader> {
    Json(server.leader_addr().unwrap_or_default())
}

pub async fn peers(State(server): State<Arc<Server>>) -> Json<StatusPeers> {
    Json(server.peers())
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

pub async fn members(State(server): State<Arc<Server>>) -> Json<ServerMembers> {
    let options = &server.options;
    Json(ServerMembers {
        server_name: options.node_name.clone(),
        server_region: options.region.clone(),
        server_dc: options.datacenter.clone(),
        members: vec![self_member(&server)],
    })
}

/// Counters as `/v1/agent/self` shows them: strings, as Nomad's.
fn counters<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

pub async fn agent_self(State(server): State<Arc<Server>>) -> Json<AgentSelf> {
    let options = &server.options;
    let metrics = server.raft.raft.metrics().borrow().clone();
    let broker = server.broker.stats();
    let stats = BTreeMap::from([
        (
            "raft".to_owned(),
            counters([
                ("state", format!("{:?}", metrics.state)),
                ("term", metrics.current_term.to_string()),
                (
                    "last_log_index",
                    metrics.last_log_index.unwrap_or(0).to_string(),
                ),
                (
                    "applied_index",
                    metrics
                        .last_applied
                        .map_or(0, |log_id| log_id.index)
                        .to_string(),
                ),
                (
                    "snapshot_index",
                    metrics
                        .snapshot
                        .map_or(0, |log_id| log_id.index)
                        .to_string(),
                ),
            ]),
        ),
        (
            "broker".to_owned(),
            counters([
                ("total_ready", broker.total_ready.to_string()),
                ("total_unacked", broker.total_unacked.to_string()),
                ("total_pending", broker.total_pending.to_string()),
                ("total_waiting", broker.total_waiting.to_string()),
                ("total_failed", broker.total_failed.to_string()),
            ]),
        ),
        (
            "blocked_evals".to_owned(),
            counters([("total_blocked", server.blocked.len().to_string())]),
        ),
        (
            "heartbeats".to_owned(),
            counters([("tracked_nodes", server.heartbeats.tracked().to_string())]),
        ),
    ]);
    Json(AgentSelf {
        config: AgentConfig {
            region: options.region.clone(),
            datacenter: options.datacenter.clone(),
            node_name: options.node_name.clone(),
            data_dir: options
                .data_dir
                .as_ref()
                .map(|dir| dir.display().to_string())
                .unwrap_or_default(),
            dev_mode: options.dev,
            version: AgentVersion {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            addresses: AgentAddresses {
                http: options.http_addr.to_string(),
                rpc: options.rpc_addr.to_string(),
            },
            server: AgentServerConfig {
                enabled: true,
                bootstrap_expect: options.bootstrap_expect,
                num_schedulers: options.num_workers,
            },
        },
        member: self_member(&server),
        stats,
    })
}

pub async fn health(State(server): State<Arc<Server>>) -> Result<Response, ApiError> {
    let known_leader = server.leader_addr().is_some();
    let body = AgentHealthResponse {
        client: None,
        server: Some(AgentHealth {
            ok: known_leader,
            message: if known_leader {
                "ok"
            } else {
                "no known leader"
            }
            .to_owned(),
        }),
    };
    let status = if known_leader {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Ok((status, Json(body)).into_response())
}
