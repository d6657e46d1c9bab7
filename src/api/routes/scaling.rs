//! `/v1/job/<id>/scale`: scale a group (PUT/POST) and read the scale status with its events
//! (GET) (Nomad: `command/agent/job_endpoint.go` `jobScale`, `jobScaleAction`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use crate::api::blocking::{blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::query::QueryOptions;
use crate::api::routes::jobs::parse_body;
use crate::api::types::scaling::ScalingRequest;
use crate::server::Server;
use crate::server::scaling::scale_status;
use crate::server::state::Table;
use crate::structs::JobId;

pub async fn scale(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let request: ScalingRequest = parse_body(&body)?;
    let response = server
        .job_scale(&query.namespace, &JobId::from(job_id), request)
        .await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

pub async fn status(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let job_id = JobId::from(job_id);
    blocking_query(
        &server,
        &query,
        &[Table::Jobs, Table::Allocs, Table::ScalingEvents],
        |snapshot| {
            scale_status(snapshot, &query.namespace, &job_id)
                .ok_or_else(|| ApiError::NotFound(format!("job {:?}", job_id.as_str())))
        },
    )
    .await
}
