//! `GET /v1/agent/monitor?log_level=&log_json=&plain=&node_id=&server_id=` (Nomad:
//! `command/agent/agent_endpoint.go` `AgentMonitor`): the agent's log lines as they are written
//! ([`crate::agent::log_stream`]), one [`StreamFrame`] per line, or the plain lines with
//! `plain=true`. A server asked for another agent's lines (`node_id`, or `server_id` naming
//! another server or `leader`) forwards the request to that agent and streams its answer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, Request, State};
use axum::response::Response;
use bytes::Bytes;

use crate::agent::log_stream::{MonitorError, Watch, parse_level};
use crate::api::error::ApiError;
use crate::api::query::parse_bool;
use crate::api::routes::client::logs::{encode_chunk, stream_response};
use crate::api::types::client::StreamFrame;
use crate::scheduler::State as _;
use crate::server::Server;
use crate::structs::NodeId;
use crate::tls::{Dial, Dialer};

/// A monitor request, once read.
struct MonitorQuery {
    params: HashMap<String, String>,
    level: tracing_subscriber::filter::LevelFilter,
    json: bool,
    plain: bool,
}

impl MonitorQuery {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let params: HashMap<String, String> =
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let flag = |name: &str, what: &str| match params.get(name) {
            None => Ok(false),
            Some(value) => parse_bool(value).ok_or_else(|| {
                ApiError::BadRequest(format!("Unknown option for {what}: {value:?}"))
            }),
        };
        let level = parse_level(params.get("log_level").map_or("info", String::as_str))
            .map_err(|err| ApiError::BadRequest(err.to_string()))?;
        let json = flag("log_json", "log json")?;
        let plain = flag("plain", "plain")?;
        if !params.get("node_id").is_none_or(String::is_empty)
            && !params.get("server_id").is_none_or(String::is_empty)
        {
            return Err(ApiError::BadRequest(
                "Cannot target node and server simultaneously".to_owned(),
            ));
        }
        Ok(Self {
            params,
            level,
            json,
            plain,
        })
    }

    fn target(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }
}

/// The route on an agent without a server: its own lines.
pub async fn monitor_local(RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    stream(&MonitorQuery::parse(raw.as_deref())?)
}

/// The route on a server: its own lines, or those of the node or server the query names.
pub async fn monitor(
    State(server): State<Arc<Server>>,
    RawQuery(raw): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let query = MonitorQuery::parse(raw.as_deref())?;
    if let Some(node_id) = query.target("node_id") {
        let node = server
            .store
            .snapshot()
            .node_by_id(&NodeId::from(node_id))
            .ok_or_else(|| ApiError::NotFound(format!("Unknown node {node_id:?}")))?;
        if node.http_addr.is_empty() {
            return Err(ApiError::Unavailable(format!(
                "node {} has no HTTP address to forward to",
                node.name
            )));
        }
        let dialer = Dialer::new(
            server.options.tls.as_deref(),
            Dial::Nodes,
            Duration::from_secs(5),
        )
        .map_err(|err| ApiError::Internal(err.to_string()))?;
        return forward(&dialer, &node.http_addr, &query, request).await;
    }
    if let Some(server_id) = query.target("server_id") {
        let me = &server.options.node_name;
        let local = server_id == me.as_str() || (server_id == "leader" && server.is_leader());
        if !local {
            let address = server_address(&server, server_id).await?;
            return forward(&server.dialer, &address, &query, request).await;
        }
    }
    stream(&query)
}

/// The RPC address (which serves the API too) of the server named `server_id`, or of the leader.
async fn server_address(server: &Server, server_id: &str) -> Result<String, ApiError> {
    let infos = server
        .peer_infos(&server.dialer, Duration::from_secs(1))
        .await;
    let leader = server.raft.raft.metrics().borrow().current_leader;
    infos
        .iter()
        .find(|(id, info)| {
            if server_id == "leader" {
                leader == Some(**id)
            } else {
                info.name == server_id || id.to_string() == server_id
            }
        })
        .map(|(_, info)| info.rpc_addr.clone())
        .ok_or_else(|| ApiError::NotFound(format!("Unknown server {server_id:?}")))
}

/// Sends the request on to the agent at `address` without its target, streaming the answer.
async fn forward(
    dialer: &Dialer,
    address: &str,
    query: &MonitorQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = request.into_parts();
    let kept = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            query
                .params
                .iter()
                .filter(|(name, _)| *name != "node_id" && *name != "server_id"),
        )
        .finish();
    parts.uri = format!("/v1/agent/monitor?{kept}")
        .parse()
        .map_err(|err| ApiError::Internal(format!("{err}")))?;
    crate::agent::proxy::forward_once(&dialer.http, &dialer.base(address), &parts, Bytes::new())
        .await
        .map_err(|err| ApiError::Unavailable(format!("agent at {address} did not answer: {err}")))
}

/// This agent's lines, as frames or plain text, until the caller hangs up.
fn stream(query: &MonitorQuery) -> Result<Response, ApiError> {
    let watch = Watch::start(query.level, query.json).map_err(|err| match err {
        MonitorError::UnknownLevel(_) => ApiError::BadRequest(err.to_string()),
        MonitorError::NotCaptured => ApiError::Unavailable(err.to_string()),
    })?;
    let plain = query.plain;
    let lines = futures::stream::unfold(watch, move |mut watch| async move {
        let line = watch.next().await?;
        let frame = StreamFrame {
            data: line.text.to_vec(),
            ..StreamFrame::default()
        };
        Some((Ok::<_, Infallible>(encode_chunk(frame, plain)), watch))
    });
    // An empty frame first sends the response head at once (the agent may log nothing for a
    // while); plain text has nothing to send before its first line.
    let head =
        futures::stream::iter((!plain).then(|| Ok(encode_chunk(StreamFrame::default(), false))));
    Ok(stream_response(
        plain,
        futures::StreamExt::chain(head, lines),
    ))
}
