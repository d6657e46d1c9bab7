//! Forwarding client API calls from a server to the node that runs the allocation.
//!
//! `caravan alloc logs ID` asks whichever agent `-address` names. A server holds no task logs or
//! files: for `/v1/client/fs/...` and `/v1/client/allocation/:id/...` it looks the allocation up,
//! finds its node's advertised HTTP address (`Node.HTTPAddr`) and forwards the request there,
//! streaming the reply (so `-f` follows), as Nomad's servers forward client RPCs to the node.
//! `alloc exec`'s websocket is relayed: the server opens the same websocket to the node (the
//! caller's token with it) and, once the node has accepted it, upgrades the caller's connection
//! and copies frames both ways until either side closes; a node's refusal reaches the caller as
//! the node's HTTP answer. Agents that run a client themselves answer for their own allocations
//! first.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts as _, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::{self, Message as TMessage, client::IntoClientRequest as _};

use super::proxy::{MAX_BODY_BYTES, forward_once};
use crate::scheduler::State as _;
use crate::server::Server;
use crate::structs::{AllocId, Node};
use crate::tls::{Dial, Dialer, websocket};

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
    Path((alloc_id, op)): Path<(String, String)>,
    request: Request,
) -> Response {
    if op == "exec" && request.headers().contains_key(header::UPGRADE) {
        return forward_exec(&state, &alloc_id, request).await;
    }
    forward(&state, &alloc_id, request).await
}

/// The node that runs `alloc_id`, with an HTTP address; otherwise the status and why not.
fn node_of(state: &Forwarding, alloc_id: &str) -> Result<Arc<Node>, (StatusCode, String)> {
    let snapshot = state.server.store.snapshot();
    let Some(alloc) = snapshot.alloc(&AllocId::from(alloc_id)) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("alloc {alloc_id:?} not found"),
        ));
    };
    let Some(node) = snapshot.node_by_id(&alloc.node_id) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("node {} of alloc {alloc_id:?} not found", alloc.node_id),
        ));
    };
    if node.http_addr.is_empty() {
        return Err((
            StatusCode::BAD_GATEWAY,
            format!("node {} has no HTTP address to forward to", node.name),
        ));
    }
    Ok(node)
}

async fn forward(state: &Forwarding, alloc_id: &str, request: Request) -> Response {
    let node = match node_of(state, alloc_id) {
        Ok(node) => node,
        Err(refusal) => return refusal.into_response(),
    };
    let (parts, body) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return (
            StatusCode::BAD_REQUEST,
            "only alloc exec's websocket is forwarded",
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

/// Relays an `alloc exec` websocket to the node that runs the allocation.
async fn forward_exec(state: &Forwarding, alloc_id: &str, request: Request) -> Response {
    let node = match node_of(state, alloc_id) {
        Ok(node) => node,
        Err(refusal) => return refusal.into_response(),
    };
    let (mut parts, _) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let base = state.dialer.base(&node.http_addr);
    let ws_base = match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{base}"),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |path| path.as_str());
    let mut to_node = match format!("{ws_base}{path}").into_client_request() {
        Ok(to_node) => to_node,
        Err(err) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("node {} at {}: {err}", node.name, node.http_addr),
            )
                .into_response();
        }
    };
    // The node checks the caller's token itself, as for every forwarded call.
    for name in ["x-nomad-token", "authorization"] {
        if let Some(value) = parts.headers.get(name) {
            to_node.headers_mut().insert(name, value.clone());
        }
    }
    let node_socket = match websocket::connect(to_node, state.dialer.tls()).await {
        Ok(socket) => socket,
        Err(tungstenite::Error::Http(refused)) => {
            let (parts, body) = refused.into_parts();
            return (parts.status, body.unwrap_or_default()).into_response();
        }
        Err(err) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!(
                    "node {} at {} did not answer: {err}",
                    node.name, node.http_addr
                ),
            )
                .into_response();
        }
    };
    upgrade.on_upgrade(move |caller| relay(caller, node_socket))
}

/// Copies frames between the caller's websocket and the node's until either side closes.
async fn relay(caller: WebSocket, node: websocket::AgentSocket) {
    let (mut to_caller, mut from_caller) = caller.split();
    let (mut to_node, mut from_node) = node.split();
    let upstream = async {
        while let Some(Ok(message)) = from_caller.next().await {
            let close = matches!(message, ws::Message::Close(_));
            let forwarded = match message {
                ws::Message::Text(text) => TMessage::text(text.as_str()),
                ws::Message::Binary(bytes) => TMessage::binary(bytes),
                ws::Message::Ping(bytes) => TMessage::Ping(bytes),
                ws::Message::Pong(bytes) => TMessage::Pong(bytes),
                ws::Message::Close(frame) => {
                    TMessage::Close(frame.map(|frame| tungstenite::protocol::CloseFrame {
                        code: frame.code.into(),
                        reason: frame.reason.as_str().into(),
                    }))
                }
            };
            if to_node.send(forwarded).await.is_err() || close {
                break;
            }
        }
        let _ = to_node.close().await;
    };
    let downstream = async {
        while let Some(Ok(message)) = from_node.next().await {
            let close = matches!(message, TMessage::Close(_));
            let forwarded = match message {
                TMessage::Text(text) => ws::Message::text(text.as_str()),
                TMessage::Binary(bytes) => ws::Message::binary(bytes),
                TMessage::Ping(bytes) => ws::Message::Ping(bytes),
                TMessage::Pong(bytes) => ws::Message::Pong(bytes),
                TMessage::Close(frame) => ws::Message::Close(frame.map(|frame| ws::CloseFrame {
                    code: frame.code.into(),
                    reason: frame.reason.as_str().into(),
                })),
                TMessage::Frame(_) => continue,
            };
            if to_caller.send(forwarded).await.is_err() || close {
                break;
            }
        }
        let _ = to_caller.close().await;
    };
    // Either side ending ends the exec: the other direction is dropped with it.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}
