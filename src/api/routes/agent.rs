//! `/v1/status/leader`, `/v1/status/peers`, `/v1/agent/self`, `/v1/agent/members`,
//! `/v1/agent/health`, `/v1/agent/join`, `/v1/agent/force-leave` (Nomad:
//! `command/agent/agent_endpoint.go`, `status_endpoint.go`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::api::types::agent::{
    AgentAddresses, AgentConfig, AgentHealth, AgentHealthResponse, AgentMember, AgentSelf,
    AgentServerConfig, AgentVersion, ServerMembers,
};
use crate::api::types::cluster::{JoinResponse, RaftServerInfo};
use crate::api::types::status::{StatusLeader, StatusPeers};
use crate::server::Server;

pub async fn leader(State(server): State<Arc<Server>>) -> Json<StatusLeader> {
    Json(server.leader_addr().unwrap_or_default())
}

pub async fn peers(State(server): State<Arc<Server>>) -> Json<StatusPeers> {
    Json(server.peers())
}

/// A server as a member, from its own answer; `alive` if it answered.
fn member(info: &RaftServerInfo, alive: bool, leader: bool) -> AgentMember {
    let (addr, port) = info
        .rpc_addr
        .rsplit_once(':')
        .map_or((info.rpc_addr.as_str(), 0), |(host, port)| {
            (host, port.parse().unwrap_or(0))
        });
    let tags = BTreeMap::from([
        ("role".to_owned(), "nomad".to_owned()),
        ("region".to_owned(), info.region.clone()),
        ("dc".to_owned(), info.datacenter.clone()),
        ("build".to_owned(), info.build.clone()),
        ("port".to_owned(), port.to_string()),
        (
            "bootstrap".to_owned(),
            (info.bootstrap_expect == 1).to_string(),
        ),
        ("expect".to_owned(), info.bootstrap_expect.to_string()),
        ("raft_vsn".to_owned(), "3".to_owned()),
        ("id".to_owned(), info.id.to_string()),
        ("leader".to_owned(), leader.to_string()),
    ]);
    AgentMember {
        name: info.name.clone(),
        addr: addr.trim_matches(['[', ']']).to_owned(),
        port,
        tags,
        status: if alive { "alive" } else { "failed" }.to_owned(),
        protocol_min: 1,
        protocol_max: 5,
        protocol_cur: 2,
        delegate_min: 2,
        delegate_max: 5,
        delegate_cur: 4,
    }
}

async fn self_member(server: &Server) -> AgentMember {
    member(&server.raft_info().await, true, server.is_leader())
}

/// `GET /v1/agent/members`: every server of the Raft configuration, `alive` if it answered
/// within a second (Nomad: serf's members; caravan asks each server instead of gossiping).
pub async fn members(State(server): State<Arc<Server>>) -> Json<ServerMembers> {
    let options = &server.options;
    let infos = server
        .peer_infos(&server.dialer, Duration::from_secs(1))
        .await;
    let metrics = server.raft.raft.metrics().borrow().clone();
    let leader = metrics.current_leader;
    let mut members: Vec<AgentMember> = metrics
        .membership_config
        .membership()
        .nodes()
        .map(|(id, node)| match infos.get(id) {
            Some(info) => member(info, true, leader == Some(*id)),
            None => member(
                &RaftServerInfo {
                    id: *id,
                    name: node.addr.clone(),
                    rpc_addr: node.addr.clone(),
                    ..RaftServerInfo::default()
                },
                false,
                false,
            ),
        })
        .collect();
    if members.is_empty() {
        members.push(self_member(&server).await);
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Json(ServerMembers {
        server_name: options.node_name.clone(),
        server_region: options.region.clone(),
        server_dc: options.datacenter.clone(),
        members,
    })
}

/// `PUT /v1/agent/join?address=...`: one attempt at joining (or bootstrapping with) the
/// servers at the addresses (Nomad: `Agent.Join`).
pub async fn join(
    State(server): State<Arc<Server>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<JoinResponse>, ApiError> {
    let addresses: Vec<String> = params
        .into_iter()
        .filter(|(name, _)| name == "address")
        .map(|(_, value)| value)
        .collect();
    if addresses.is_empty() {
        return Err(ApiError::BadRequest("missing address to join".to_owned()));
    }
    Ok(Json(
        match crate::server::cluster::join_once(&server, &server.dialer, &addresses).await {
            Ok(num_joined) => JoinResponse {
                num_joined,
                error: String::new(),
            },
            Err(error) => JoinResponse {
                num_joined: 0,
                error: error.to_string(),
            },
        },
    ))
}

/// `PUT /v1/agent/force-leave?node=NAME`: removes a server that no longer answers from the
/// Raft configuration, by member name, address or ID (Nomad: `Agent.ForceLeave`).
pub async fn force_leave(
    State(server): State<Arc<Server>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let node = params
        .get("node")
        .filter(|node| !node.is_empty())
        .ok_or_else(|| ApiError::BadRequest("missing node to force leave".to_owned()))?;
    let infos = server
        .peer_infos(&server.dialer, Duration::from_secs(1))
        .await;
    let metrics = server.raft.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership().clone();
    let found = membership.nodes().find(|(id, raft_node)| {
        raft_node.addr == *node
            || id.to_string() == *node
            || infos.get(id).is_some_and(|info| {
                info.name == *node || info.name.split('.').next() == Some(node.as_str())
            })
    });
    let Some((id, _)) = found else {
        return Err(ApiError::NotFound(format!("member {node:?}")));
    };
    if infos.contains_key(id) {
        return Err(ApiError::BadRequest(format!(
            "member {node:?} is alive; only a failed server can be forced to leave"
        )));
    }
    server.raft_remove_peer(*id).await?;
    Ok(StatusCode::OK.into_response())
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
        member: self_member(&server).await,
        stats,
    })
}

pub async fn health(State(server): State<Arc<Server>>, RawQuery(query): RawQuery) -> Response {
    let known_leader = server.leader_addr().is_some();
    let server_part = AgentHealth {
        ok: known_leader,
        message: if known_leader { "ok" } else { "no leader" }.to_owned(),
    };
    // The agent's own client talks to this server: it always knows one.
    let client_part = server.options.local_client.then(|| AgentHealth {
        ok: true,
        message: "ok".to_owned(),
    });
    health_answer(query.as_deref(), client_part, Some(server_part))
}

/// The `/v1/agent/health` answer from the parts this agent runs (Nomad: `HealthRequest`). Both
/// are reported unless `?type=client` / `?type=server` names some; a named part the agent does
/// not run is reported failing ("client not enabled"). 200 when no reported part fails, else 500
/// with the same body.
pub(crate) fn health_answer(
    query: Option<&str>,
    client: Option<AgentHealth>,
    server: Option<AgentHealth>,
) -> Response {
    let types: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "type")
        .map(|(_, value)| value.into_owned())
        .collect();
    let part = |name: &str, health: Option<AgentHealth>| {
        if types.is_empty() {
            return health;
        }
        types.iter().any(|asked| asked == name).then(|| {
            health.unwrap_or_else(|| AgentHealth {
                ok: false,
                message: format!("{name} not enabled"),
            })
        })
    };
    let body = AgentHealthResponse {
        client: part("client", client),
        server: part("server", server),
    };
    let ok = [&body.client, &body.server]
        .into_iter()
        .flatten()
        .all(|health| health.ok);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (status, Json(body)).into_response()
}
