//! `/v1/deployments`, `/v1/deployment/:id`, `/v1/deployment/allocations/:id`,
//! `/v1/deployment/{promote,fail,pause,allocation-health}/:id`, and the job routes of deployments:
//! `/v1/job/:id/revert`, `/v1/job/:id/stable` (Nomad: `command/agent/deployment_endpoint.go`,
//! `job_endpoint.go`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::by_id_or_prefix;
use super::jobs::parse_body;
use crate::api::blocking::{blocking_list, blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::list::namespaced_token;
use crate::api::query::QueryOptions;
use crate::api::types::allocs::AllocListStub;
use crate::api::types::deployments::{
    DeploymentAllocHealthRequest, DeploymentPauseRequest, DeploymentPromoteRequest,
};
use crate::api::types::jobs::{JobRevertRequest, JobStabilityRequest, JobStabilityResponse};
use crate::server::Server;
use crate::server::state::Table;
use crate::structs::{AllocId, Deployment, DeploymentId, JobId};

pub async fn list(
    State(server): State<Arc<Server>>,
    axum::Extension(identity): axum::Extension<crate::api::identity::Identity>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let token = |deployment: &Arc<Deployment>| {
        namespaced_token(&query, &deployment.namespace, &deployment.id)
    };
    blocking_list(&server, &query, &[Table::Deployments], token, |snapshot| {
        Ok(snapshot
            .deployments_with_prefix(&query.prefix)
            .filter(|deployment| query.all_namespaces() || deployment.namespace == query.namespace)
            .filter(|deployment| identity.may_read_namespace(&deployment.namespace))
            .cloned()
            .collect::<Vec<_>>())
    })
    .await
}

pub async fn read(
    State(server): State<Arc<Server>>,
    Path(deployment_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Deployments], |snapshot| {
        by_id_or_prefix(
            "deployment",
            &deployment_id,
            snapshot.deployment(&DeploymentId::from(deployment_id.clone())),
            snapshot.deployments_with_prefix(&deployment_id),
        )
    })
    .await
}

/// `GET /v1/deployment/allocations/:id`: the deployment's allocations.
pub async fn allocations(
    State(server): State<Arc<Server>>,
    Path(deployment_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(
        &server,
        &query,
        &[Table::Deployments, Table::Allocs],
        |snapshot| {
            let deployment = by_id_or_prefix(
                "deployment",
                &deployment_id,
                snapshot.deployment(&DeploymentId::from(deployment_id.clone())),
                snapshot.deployments_with_prefix(&deployment_id),
            )?;
            let allocs = crate::scheduler::State::allocs_by_job(
                snapshot,
                &deployment.namespace,
                &deployment.job_id,
            );
            Ok(allocs
                .iter()
                .filter(|alloc| alloc.deployment_id.as_ref() == Some(&deployment.id))
                .map(|alloc| AllocListStub::new(alloc, false))
                .collect::<Vec<_>>())
        },
    )
    .await
}

fn find(server: &Server, deployment_id: &str) -> Result<DeploymentId, ApiError> {
    let snapshot = server.store.snapshot();
    Ok(by_id_or_prefix(
        "deployment",
        deployment_id,
        snapshot.deployment(&DeploymentId::from(deployment_id)),
        snapshot.deployments_with_prefix(deployment_id),
    )?
    .id
    .clone())
}

/// `PUT /v1/deployment/promote/:id`.
pub async fn promote(
    State(server): State<Arc<Server>>,
    Path(deployment_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: DeploymentPromoteRequest = if body.is_empty() {
        DeploymentPromoteRequest {
            all: true,
            ..DeploymentPromoteRequest::default()
        }
    } else {
        parse_body(&body)?
    };
    if !request.all && request.groups.is_empty() {
        return Err(ApiError::BadRequest(
            "promote: set All or name the Groups to promote".to_owned(),
        ));
    }
    let id = find(&server, &deployment_id)?;
    let groups = if request.all {
        Vec::new()
    } else {
        request.groups
    };
    let response = server.deployment_promote(&id, groups).await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

/// `PUT /v1/deployment/fail/:id`.
pub async fn fail(
    State(server): State<Arc<Server>>,
    Path(deployment_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = find(&server, &deployment_id)?;
    let response = server.deployment_fail(&id).await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

/// `PUT /v1/deployment/pause/:id`: pauses (`Pause: true`) or resumes a deployment.
pub async fn pause(
    State(server): State<Arc<Server>>,
    Path(deployment_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: DeploymentPauseRequest = parse_body(&body)?;
    let id = find(&server, &deployment_id)?;
    let response = server.deployment_pause(&id, request.pause).await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

/// `PUT /v1/deployment/allocation-health/:id`: the operator's verdict on allocations of a
/// deployment with manual health checks.
pub async fn allocation_health(
    State(server): State<Arc<Server>>,
    Path(deployment_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: DeploymentAllocHealthRequest = parse_body(&body)?;
    let id = find(&server, &deployment_id)?;
    let ids = |ids: Vec<String>| ids.into_iter().map(AllocId::from).collect::<Vec<_>>();
    let response = server
        .deployment_alloc_health(
            &id,
            ids(request.healthy_allocation_ids),
            ids(request.unhealthy_allocation_ids),
        )
        .await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

/// `PUT /v1/job/:id/revert`.
pub async fn revert(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let request: JobRevertRequest = parse_body(&body)?;
    let response = server
        .job_revert(
            &query.namespace,
            &JobId::from(job_id),
            request.job_version,
            request.enforce_prior_version,
        )
        .await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

/// `PUT /v1/job/:id/stable`.
pub async fn stable(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let request: JobStabilityRequest = parse_body(&body)?;
    let index = server
        .job_stability(
            &query.namespace,
            &JobId::from(job_id),
            request.job_version,
            request.stable,
        )
        .await?;
    Ok(with_meta(
        &server,
        index,
        Json(JobStabilityResponse { index }).into_response(),
    ))
}
