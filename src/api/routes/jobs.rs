//! `/v1/jobs` and `/v1/job/:id/...` (Nomad: `command/agent/job_endpoint.go`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::api::blocking::{blocking_list, blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::identity::Identity;
use crate::api::list::namespaced_token;
use crate::api::query::QueryOptions;
use crate::api::types::allocs::AllocListStub;
use crate::api::types::jobs::{
    JobDiff, JobEvaluateRequest, JobListStub, JobPlanRequest, JobRegisterRequest,
    JobRegisterResponse, JobVersionsResponse,
};
use crate::server::Server;
use crate::server::state::Table;
use crate::structs::JobId;

/// Decodes a request body strictly (see [`crate::api::decode`]): a 400 naming the bad field.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::api::decode::decode_json(body).map_err(|error| ApiError::BadRequest(error.to_string()))
}

pub async fn list(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_list(
        &server,
        &query,
        &[Table::Jobs, Table::JobSummaries],
        |stub: &JobListStub| namespaced_token(&query, &stub.namespace, &stub.id),
        |snapshot| {
            Ok(snapshot
                .jobs()
                .filter(|job| query.all_namespaces() || job.namespace == query.namespace)
                .filter(|job| identity.acl.allow_namespace_op(&job.namespace, "list-jobs"))
                .filter(|job| job.id.0.starts_with(&query.prefix))
                .map(|job| {
                    JobListStub::new(
                        job,
                        snapshot.job_summary(&job.namespace, &job.id).as_deref(),
                    )
                })
                .collect::<Vec<_>>())
        },
    )
    .await
}

async fn register_job(
    server: &Arc<Server>,
    identity: &Identity,
    request: JobRegisterRequest,
    path_id: Option<&str>,
    namespace: &str,
) -> Result<Response, ApiError> {
    let Some(mut submission) = request.job else {
        return Err(ApiError::BadRequest("Job must be specified".to_owned()));
    };
    if submission.job.namespace.is_empty() {
        submission.job.namespace = namespace.to_owned();
    }
    // The job's own namespace is where it is written: the token must allow it there.
    identity.require(&submission.job.namespace, "submit-job")?;
    // The one conversion that applies Nomad's defaults, as for job files.
    let job = submission.into_job();
    if let Some(path_id) = path_id
        && job.id.as_str() != path_id
    {
        return Err(ApiError::BadRequest(
            "Job ID does not match name".to_owned(),
        ));
    }
    let enforce_index = request.enforce_index.then_some(request.job_modify_index);
    let response = server.job_register_enforced(job, enforce_index).await?;
    let index = response.index;
    Ok(with_meta(server, index, Json(response).into_response()))
}

pub async fn register(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    register_job(
        &server,
        &identity,
        parse_body(&body)?,
        None,
        &query.namespace,
    )
    .await
}

pub async fn register_at(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    register_job(
        &server,
        &identity,
        parse_body(&body)?,
        Some(&job_id),
        &query.namespace,
    )
    .await
}

fn missing_job(job_id: &str) -> ApiError {
    ApiError::NotFound(format!("job {job_id:?}"))
}

pub async fn read(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let job_id = JobId::from(job_id);
    blocking_query(&server, &query, &[Table::Jobs], |snapshot| {
        snapshot
            .job(&query.namespace, &job_id)
            .ok_or_else(|| missing_job(&job_id.0))
    })
    .await
}

pub async fn deregister(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let purge = query.flag("purge")?;
    let response = server
        .job_deregister(&query.namespace, &JobId::from(job_id), purge)
        .await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}

/// `PUT /v1/job/:id/evaluate`: a new evaluation of the job. An empty body is allowed, as Nomad's.
pub async fn evaluate(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        JobEvaluateRequest {
            job_id: job_id.clone(),
            ..JobEvaluateRequest::default()
        }
    } else {
        parse_body::<JobEvaluateRequest>(&body)?
    };
    if request.job_id.is_empty() {
        return Err(ApiError::BadRequest("Job ID must be set".to_owned()));
    }
    if request.job_id != job_id {
        return Err(ApiError::BadRequest(
            "JobID not same as job name".to_owned(),
        ));
    }
    let response = server
        .job_evaluate(
            &query.namespace,
            &JobId::from(job_id),
            request.eval_options.force_reschedule,
        )
        .await?;
    let index = response.index;
    let answer = JobRegisterResponse {
        eval_id: response.eval_id,
        eval_create_index: response.eval_create_index,
        job_modify_index: index,
        index,
        ..JobRegisterResponse::default()
    };
    Ok(with_meta(&server, index, Json(answer).into_response()))
}

pub async fn allocations(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let all = query.flag("all")?;
    let job_id = JobId::from(job_id);
    blocking_query(&server, &query, &[Table::Allocs], |snapshot| {
        let current_version = snapshot
            .job(&query.namespace, &job_id)
            .map(|job| (job.create_index, job.version));
        let allocs = crate::scheduler::State::allocs_by_job(snapshot, &query.namespace, &job_id);
        Ok(allocs
            .iter()
            // Without `all`, allocations of an earlier job of the same ID are left out.
            .filter(|alloc| {
                all || match (&alloc.job, current_version) {
                    (Some(job), Some((create_index, _))) => job.create_index == create_index,
                    _ => true,
                }
            })
            .map(|alloc| AllocListStub::new(alloc, false))
            .collect::<Vec<_>>())
    })
    .await
}

pub async fn evaluations(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let job_id = JobId::from(job_id);
    blocking_query(&server, &query, &[Table::Evals], |snapshot| {
        let mut evals = snapshot.evals_by_job(&query.namespace, &job_id);
        evals.sort_by_key(|eval| std::cmp::Reverse(eval.create_index));
        Ok(evals)
    })
    .await
}

pub async fn versions(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let diffs = query.flag("diffs")?;
    let job_id = JobId::from(job_id);
    blocking_query(&server, &query, &[Table::JobVersions], |snapshot| {
        let mut versions = snapshot.job_versions(&query.namespace, &job_id);
        if versions.is_empty() {
            return Err(missing_job(&job_id.0));
        }
        versions.sort_by_key(|job| std::cmp::Reverse(job.version));
        // Nomad: each version's diff from the one before it, newest first.
        let diffs = diffs.then(|| {
            versions
                .windows(2)
                .map(|pair| JobDiff::between(Some(&*pair[1]), Some(&*pair[0])))
                .collect()
        });
        Ok(JobVersionsResponse { versions, diffs })
    })
    .await
}

pub async fn summary(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let job_id = JobId::from(job_id);
    blocking_query(&server, &query, &[Table::JobSummaries], |snapshot| {
        snapshot
            .job_summary(&query.namespace, &job_id)
            .ok_or_else(|| missing_job(&job_id.0))
    })
    .await
}

pub async fn deployments(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let job_id = JobId::from(job_id);
    blocking_query(&server, &query, &[Table::Deployments], |snapshot| {
        Ok(snapshot.deployments_by_job(&query.namespace, &job_id))
    })
    .await
}

pub async fn latest_deployment(
    State(server): State<Arc<Server>>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let job_id = JobId::from(job_id);
    blocking_query(&server, &query, &[Table::Deployments], |snapshot| {
        Ok(crate::scheduler::State::latest_deployment_by_job(
            snapshot,
            &query.namespace,
            &job_id,
        ))
    })
    .await
}

pub async fn plan(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let request: JobPlanRequest = parse_body(&body)?;
    let Some(mut submission) = request.job else {
        return Err(ApiError::BadRequest("Job must be specified".to_owned()));
    };
    if submission.job.namespace.is_empty() {
        submission.job.namespace = query.namespace.clone();
    }
    identity.require(&submission.job.namespace, "submit-job")?;
    let job = submission.into_job();
    if job.id.as_str() != job_id {
        return Err(ApiError::BadRequest("Job ID does not match".to_owned()));
    }
    let response = server.job_plan(job, request.diff).await?;
    let index = response.index;
    Ok(with_meta(&server, index, Json(response).into_response()))
}
