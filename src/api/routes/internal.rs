//! The client-facing write endpoints, under `/v1/internal/` on the same HTTP server:
//!
//! | method and path                        | body                                 | reply                  |
//! |----------------------------------------|--------------------------------------|------------------------|
//! | `PUT /v1/internal/node/register`       | `{"Node": Node}`                     | `NodeUpdateResponse`   |
//! | `PUT /v1/internal/node/:id/heartbeat`  | `{"SecretID": "...", "Status": ...}` | `NodeUpdateResponse`   |
//! | `PUT /v1/internal/node/:id/allocations`| `{"Allocs": [AllocClientUpdate]}`    | `{"Index": N}`         |
//!
//! `NodeUpdateResponse.HeartbeatTTL` is in nanoseconds: the node must heartbeat again within it
//! or be marked down. A client watches its allocations with the public blocking query
//! `GET /v1/node/:id/allocations?index=N&wait=5m` (whole allocations, with their job).
//!
//! Nomad does these over its RPC protocol (`Node.Register`, `Node.UpdateStatus`,
//! `Node.GetClientAllocs`, `Node.UpdateAlloc`); caravan keeps one transport, HTTP.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::jobs::parse_body;
use crate::api::blocking::with_meta;
use crate::api::error::ApiError;
use crate::server::Server;
use crate::server::raft::AllocClientUpdate;
use crate::structs::{Node, NodeId, NodeStatus};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeRegisterRequest {
    pub node: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HeartbeatRequest {
    pub status: Option<NodeStatus>,
    /// The secret the node registered with: a heartbeat for a node ID registered with another
    /// secret is refused (403).
    #[serde(rename = "SecretID")]
    pub secret_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocUpdateRequest {
    pub allocs: Vec<AllocClientUpdate>,
}

pub async fn node_register(
    State(server): State<Arc<Server>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: NodeRegisterRequest = parse_body(&body)?;
    let node = request
        .node
        .ok_or_else(|| ApiError::BadRequest("missing node for client registration".to_owned()))?;
    let response = server.node_register(node).await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

pub async fn node_heartbeat(
    State(server): State<Arc<Server>>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: HeartbeatRequest = if body.is_empty() {
        HeartbeatRequest::default()
    } else {
        parse_body(&body)?
    };
    let status = request.status.unwrap_or(NodeStatus::Ready);
    let response = server
        .node_heartbeat(&NodeId::from(node_id), status, &request.secret_id)
        .await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

pub async fn node_update_allocs(
    State(server): State<Arc<Server>>,
    Path(_node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: AllocUpdateRequest = parse_body(&body)?;
    if request.allocs.is_empty() {
        return Err(ApiError::BadRequest(
            "must update at least one allocation".to_owned(),
        ));
    }
    let index = server.node_update_allocs(request.allocs).await?;
    Ok(with_meta(
        &server,
        index,
        Json(serde_json::json!({ "Index": index })).into_response(),
    ))
}
