//! `/v1/system/gc`: a forced garbage collection of everything finished, however recent (Nomad:
//! `command/agent/system_endpoint.go`, `nomad/system_endpoint.go` `GarbageCollect`). Reaches the
//! leader through [`crate::api::forward`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use crate::api::error::ApiError;
use crate::server::Server;
use crate::server::core_gc::{GcConfig, collect_garbage};

/// `PUT /v1/system/gc`: answers once what was collected is removed.
pub async fn gc(State(server): State<Arc<Server>>) -> Result<StatusCode, ApiError> {
    collect_garbage(&server, &GcConfig::forced()).await?;
    Ok(StatusCode::OK)
}
