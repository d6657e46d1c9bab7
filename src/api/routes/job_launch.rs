//! Launching a job's children: `/v1/job/<id>/periodic/force` (Nomad:
//! `command/agent/job_endpoint.go` `periodicForceRequest`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use crate::api::blocking::with_meta;
use crate::api::error::ApiError;
use crate::api::query::QueryOptions;
use crate::server::Server;
use crate::structs::JobId;

pub async fn periodic_force(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let response = server
        .periodic_force(&query.namespace, &JobId::from(job_id))
        .await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}
