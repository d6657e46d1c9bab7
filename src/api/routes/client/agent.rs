//! `GET|PUT /v1/agent/servers` on an agent that runs a client (Nomad:
//! `command/agent/agent_endpoint.go` `AgentServersRequest`): the servers the client's link calls,
//! as `host:port` in the order it tries them, and `PUT ?address=a&address=b` to replace them
//! (`caravan node config -servers | -update-servers`). A server-only agent answers 501.
//! `GET /v1/agent/health` on a client-only agent answers for its client.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::Response;

use crate::api::error::ApiError;
use crate::api::types::agent::AgentHealth;
use crate::client::Shared;
use crate::client::server_link::LinkError;

pub(crate) async fn list_servers(State(shared): State<Arc<Shared>>) -> Json<Vec<String>> {
    let mut servers = shared.link.servers();
    servers.sort();
    Json(servers)
}

/// `GET /v1/agent/health` on a client-only agent: healthy while it knows a server.
pub(crate) async fn health(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let known = !shared.link.servers().is_empty();
    let client = AgentHealth {
        ok: known,
        message: if known { "ok" } else { "no known servers" }.to_owned(),
    };
    crate::api::routes::agent::health_answer(query.as_deref(), Some(client), None)
}

pub(crate) async fn update_servers(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Json<()>, ApiError> {
    let servers: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "address")
        .map(|(_, value)| value.into_owned())
        .collect();
    if servers.is_empty() {
        return Err(ApiError::BadRequest("missing server address".to_owned()));
    }
    shared
        .link
        .set_servers(&servers)
        .map_err(|error| match error {
            LinkError::Invalid(message) => ApiError::BadRequest(message),
            other => ApiError::Internal(other.to_string()),
        })?;
    Ok(Json(()))
}
