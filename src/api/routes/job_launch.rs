//! Launching a job's children: `/v1/job/<id>/periodic/force` and `/v1/job/<id>/dispatch`
//! (Nomad: `command/agent/job_endpoint.go` `periodicForceRequest`, `jobDispatchRequest`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use crate::api::blocking::with_meta;
use crate::api::error::ApiError;
use crate::api::query::QueryOptions;
use crate::api::routes::jobs::parse_body;
use crate::api::types::job_launch::JobDispatchRequest;
use crate::server::Server;
use crate::server::dispatch::DispatchRequest;
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

pub async fn dispatch(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let request: JobDispatchRequest = parse_body(&body)?;
    if !request.job_id.is_empty() && request.job_id != job_id {
        return Err(ApiError::BadRequest(
            "Job ID does not match request".to_owned(),
        ));
    }
    let response = server
        .job_dispatch(
            &query.namespace,
            &JobId::from(job_id),
            DispatchRequest {
                payload: request.payload,
                meta: request.meta,
                id_prefix_template: request.id_prefix_template,
            },
        )
        .await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}
