//! Forwarding client API calls from a server to the node that runs the allocation.
//!
//! `caravan alloc logs ID` asks whichever agent `-address` names. A server holds no task logs or
//! files: for `/v1/client/fs/...` and `/v1/client/allocation/:id/...` it looks the allocation up,
//! finds its node's advertised HTTP address (`Node.HTTPAddr`) and forwards the request there,
//! streaming the reply (so `-f` follows), as Nomad's servers forward client RPCs to the node.
//! Agents that run a client themselves answer for their own allocations first.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::proxy::{MAX_BODY_BYTES, forward_once};
use crate::scheduler::State as _;
use crate::server::Server;
use crate::structs::AllocId;
use crate::tls::{Dial, Dialer};

#[derive(Debug)]
struct Forwarding {
    server: Arc<Server>,
    /// To nodes' HTTP APIs: HTTPS with `tls.http`.
    dialer: Dialer,
}

/// The routes that forward to nodes.
pub fn router(server: Arc<Server>) -> anyhow::Result<axum::Router> {
    let dialer = Dialer::new(
        server.options.tls.as_deref(),
        Dial::Nodes,
        Duration::from_secs(5),
    )?;
    let state = Arc::new(Forwarding { server, dialer });
    Ok(axum::Router::new()
        .route("/v1/client/fs/{op}/{alloc_id}", any(forward_fs))
        .route("/v1/client/allocation/{alloc_id}/{op}", any(forward_alloc))
        // A server-only agent has no client whose servers could be listed or set.
        .route(
            "/v1/agent/servers",
            any(|| async { (StatusCode::NOT_IMPLEMENTED, "Invalid method") }),
        )
        .with_state(state))
}

async fn forward_fs(
    State(state): State<Arc<Forwarding>>,
    Path((_op, alloc_id)): Path<(String, String)>,
    request: Request,
) -> Response {
    forward(&state, &alloc_id, request).await
}

async fn forward_alloc(
    State(state): State<Arc<Forwarding>>,
    Path((alloc_id, _op)): Path<(String, String)>,
    request: Request,
) -> Response {
    forward(&state, &alloc_id, request).await
}

async fn forward(state: &Forwarding, alloc_id: &str, request: Request) -> Response {
    let snapshot = state.server.store.snapshot();
    let Some(alloc) = snapshot.alloc(&AllocId::from(alloc_id)) else {
        return (
            StatusCode::NOT_FOUND,
            format!("alloc {alloc_id:?} not found"),
        )
            .into_response();
    };
    let Some(node) = snapshot.node_by_id(&alloc.node_id) else {
        return (
            StatusCode::NOT_FOUND,
            format!("node {} of alloc {alloc_id:?} not found", alloc.node_id),
        )
            .into_response();
    };
    if node.http_addr.is_empty() {
        return (
            StatusCode::BAD_GATEWAY,
            format!("node {} has no HTTP address to forward to", node.name),
        )
            .into_response();
    }
    let (parts, body) = request.into_parts();
    if parts.headers.contains_key(axum::http::header::UPGRADE) {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "websocket calls are not forwarded: send them to node {} at {}",
                node.name, node.http_addr
            ),
        )
            .into_response();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(err) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {err}"),
            )
                .into_response();
        }
    };
    let base = state.dialer.base(&node.http_addr);
    match forward_once(&state.dialer.http, &base, &parts, body).await {
        Ok(response) => response,
        Err(err) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "node {} at {} did not answer: {err}",
                node.name, node.http_addr
            ),
        )
            .into_response(),
    }
}
