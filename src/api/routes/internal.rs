//! The client-facing write endpoints, under `/v1/internal/` on the same HTTP server:
//!
//! | method and path                        | body                                 | reply                  |
//! |----------------------------------------|--------------------------------------|------------------------|
//! | `PUT /v1/internal/node/register`       | `{"Node": Node}`                     | `NodeUpdateResponse`   |
//! | `PUT /v1/internal/node/:id/heartbeat`  | `{"SecretID": "...", "Status": ...}` | `NodeUpdateResponse`   |
//! | `PUT /v1/internal/node/:id/allocations`| `AllocUpdateRequest`                 | `{"Index": N}`         |
//! | `GET /v1/internal/node/:id/client-allocs?index=N` | (blocking query)          | `NodeClientAllocs`     |
//! | `POST /v1/internal/node/:id/allocs/pull` | `PullAllocsRequest`                | `PullAllocsResponse`   |
//! | `POST /v1/internal/node/:id/acl/resolve` | `TokenResolveRequest`              | `TokenGrant`           |
//!
//! Every call but the registration carries the node's secret in `X-Nomad-Token` (a heartbeat may
//! carry it as its body's `SecretID`, Nomad's field) and is answered only for the node it proves
//! ([`crate::server::node_identity`]): another node's allocations, updates and services are out of
//! reach.
//!
//! `NodeUpdateResponse.HeartbeatTTL` is in nanoseconds: the node must heartbeat again within it
//! or be marked down. A client watches its allocations as Nomad's does: `client-allocs` blocks on
//! the node's own allocation index and answers with IDs and `AllocModifyIndex`es only; the client
//! then pulls just the allocations that changed, each job version once. The wire types are in
//! [`crate::api::types::node`].
//!
//! Nomad does these over its RPC protocol (`Node.Register`, `Node.UpdateStatus`,
//! `Node.GetClientAllocs`, `Node.UpdateAlloc`); caravan keeps one transport, HTTP.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::jobs::parse_body;
use crate::api::blocking::{wait_for_node_allocs, with_meta};
use crate::api::error::ApiError;
use crate::api::identity::Identity;
use crate::api::query::QueryOptions;
use crate::api::types::node::{
    AllocUpdateRequest, AllocUpdateResponse, NodeClientAllocs, NodeHeartbeatRequest,
    NodeRegisterRequest, PullAllocsRequest, PullAllocsResponse, TokenResolveRequest,
};
use crate::server::Server;
use crate::structs::{NodeId, NodeStatus};

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
    Extension(identity): Extension<Identity>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: NodeHeartbeatRequest = if body.is_empty() {
        NodeHeartbeatRequest::default()
    } else {
        parse_body(&body)?
    };
    let status = request.status.unwrap_or(NodeStatus::Ready);
    let secret = Some(request.secret_id.as_str())
        .filter(|secret| !secret.is_empty())
        .or(identity.token.as_deref());
    let response = server
        .node_heartbeat(&NodeId::from(node_id), status, secret)
        .await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

pub async fn node_update_allocs(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let node_id = NodeId::from(node_id);
    server.authenticate_node(&node_id, identity.token.as_deref())?;
    let request: AllocUpdateRequest = parse_body(&body)?;
    if request.allocs.is_empty() {
        return Err(ApiError::BadRequest(
            "must update at least one allocation".to_owned(),
        ));
    }
    let index = server.node_update_allocs(&node_id, request.allocs).await?;
    Ok(with_meta(
        &server,
        index,
        Json(AllocUpdateResponse { index }).into_response(),
    ))
}

/// The node's allocations as IDs and `AllocModifyIndex`es, blocking on the node's own index.
pub async fn node_client_allocs(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(node_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let node_id = NodeId::from(node_id);
    server.authenticate_node(&node_id, identity.token.as_deref())?;
    let snapshot = wait_for_node_allocs(&server, &query, &node_id).await;
    let tables = snapshot.tables();
    let index = tables.node_alloc_index(&node_id);
    let allocs = tables
        .allocs_by_node
        .get(&node_id)
        .map(|allocs| {
            allocs
                .iter()
                .map(|(id, alloc)| (id.clone(), alloc.alloc_modify_index))
                .collect()
        })
        .unwrap_or_default();
    let body = NodeClientAllocs { allocs, index };
    Ok(with_meta(&server, index, Json(body).into_response()))
}

/// The allocations a client asks for in full, its own node's only, each job version once.
pub async fn node_pull_allocs(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let node_id = NodeId::from(node_id);
    server.authenticate_node(&node_id, identity.token.as_deref())?;
    let request: PullAllocsRequest = parse_body(&body)?;
    let snapshot = server.store.snapshot();
    let index = snapshot.tables().indexes.allocs;
    let allocs = request
        .alloc_ids
        .iter()
        .filter_map(|alloc_id| snapshot.alloc(alloc_id))
        .filter(|alloc| alloc.node_id == node_id);
    let body = PullAllocsResponse::from_allocs(allocs, index);
    Ok(with_meta(&server, index, Json(body).into_response()))
}

/// What the secret a caller of the node's own routes offered grants: the client agent checks
/// those calls itself (`crate::client::acl`). Only a registered node may ask, so the route is
/// no oracle for anyone else.
pub async fn node_resolve_token(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    server.authenticate_node(&NodeId::from(node_id), identity.token.as_deref())?;
    let request: TokenResolveRequest = parse_body(&body)?;
    let grant = server
        .token_grant(request.secret_id.as_deref())
        .map_err(|error| ApiError::Forbidden(error.to_string()))?;
    Ok(Json(grant).into_response())
}
