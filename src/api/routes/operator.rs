//! The Raft configuration: `/v1/operator/raft/configuration`, `/v1/operator/raft/peer`,
//! operator snapshots (`/v1/operator/snapshot`), the scheduler configuration
//! (`/v1/operator/scheduler/configuration`), and the
//! servers' own `/v1/internal/raft/info` and `/v1/internal/raft/join` (Nomad:
//! `command/agent/operator_endpoint.go`, `nomad/operator_endpoint.go`).
//!
//! Changes to the configuration reach the leader through [`crate::api::forward`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::jobs::parse_body;
use crate::api::error::ApiError;
use crate::api::types::cluster::{RaftConfiguration, RaftJoinRequest, RaftServerInfo};
use crate::api::types::scheduler::{
    SchedulerConfigurationResponse, SchedulerSetConfigurationResponse,
};
use crate::server::Server;
use crate::structs::SchedulerConfiguration;

pub async fn raft_info(State(server): State<Arc<Server>>) -> Json<RaftServerInfo> {
    Json(server.raft_info().await)
}

pub async fn raft_join(
    State(server): State<Arc<Server>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: RaftJoinRequest = parse_body(&body)?;
    Ok(Json(server.raft_join(request).await?).into_response())
}

pub async fn raft_configuration(State(server): State<Arc<Server>>) -> Json<RaftConfiguration> {
    Json(
        server
            .raft_configuration(&server.dialer, Duration::from_secs(1))
            .await,
    )
}

/// `DELETE /v1/operator/raft/peer?id=ID` or `?address=HOST:PORT`.
pub async fn raft_remove_peer(
    State(server): State<Arc<Server>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let metrics = server.raft.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership().clone();
    let id = match (params.get("id"), params.get("address")) {
        (Some(id), None) => id
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest(format!("invalid server ID {id:?}")))?,
        (None, Some(address)) => membership
            .nodes()
            .find(|(_, node)| node.addr == *address)
            .map(|(id, _)| *id)
            .ok_or_else(|| {
                ApiError::BadRequest(format!("address {address:?} is not a Raft peer"))
            })?,
        _ => {
            return Err(ApiError::BadRequest(
                "must specify either ?id or ?address, not both".to_owned(),
            ));
        }
    };
    server.raft_remove_peer(id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /v1/operator/snapshot`: the whole state as a snapshot file.
pub async fn snapshot_save(State(server): State<Arc<Server>>) -> Result<Response, ApiError> {
    let file = server.snapshot_save().await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        file,
    )
        .into_response())
}

/// `PUT /v1/operator/snapshot`: replaces the cluster's state with the snapshot file in the body.
pub async fn snapshot_restore(
    State(server): State<Arc<Server>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let index = server.snapshot_restore(&body).await?;
    Ok(crate::api::blocking::with_meta(
        &server,
        index,
        StatusCode::OK.into_response(),
    ))
}

/// `GET /v1/operator/scheduler/configuration`: the configuration in force.
pub async fn scheduler_get_config(State(server): State<Arc<Server>>) -> Response {
    let config = server.scheduler_config();
    let index = config.modify_index;
    let body = SchedulerConfigurationResponse {
        scheduler_config: Some(config),
        index,
        last_contact: server.last_contact_ms(),
        known_leader: server.leader_addr().is_some(),
        next_token: String::new(),
    };
    crate::api::blocking::with_meta(&server, index, Json(body).into_response())
}

/// `PUT /v1/operator/scheduler/configuration[?cas=N]`: stores the configuration in the body;
/// with `cas`, only if the stored one's modify index is `N` (`Updated: false` otherwise).
pub async fn scheduler_set_config(
    State(server): State<Arc<Server>>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let config: SchedulerConfiguration = parse_body(&body)?;
    let cas = params
        .get("cas")
        .map(|cas| {
            cas.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid cas index {cas:?}")))
        })
        .transpose()?;
    let (updated, index) = server.scheduler_set_config(config, cas).await?;
    Ok(crate::api::blocking::with_meta(
        &server,
        index,
        Json(SchedulerSetConfigurationResponse { updated, index }).into_response(),
    ))
}
