//! `PUT /v1/validate/job`: checks a job as registration would, without registering it (Nomad:
//! `command/agent/job_endpoint.go` `ValidateJobRequest`, the route `nomad job validate` asks).
//!
//! Body: `{"Job": {...}}`. The reply is always 200 for a job that decoded, with Nomad's shape:
//! `ValidationErrors` (one string per problem), `Error` (the multierror text, empty when valid),
//! `Warnings` and `DriverConfigValidated` (false: caravan's servers do not check a driver's
//! `config` block; the client's driver does when the task starts).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};

use super::jobs::parse_body;
use crate::api::error::ApiError;
use crate::api::query::QueryOptions;
use crate::api::types::jobs::{JobValidateRequest, JobValidateResponse};
use crate::server::Server;
use crate::server::endpoints::ServerError;

pub async fn validate_job(
    State(server): State<Arc<Server>>,
    axum::Extension(identity): axum::Extension<crate::api::identity::Identity>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Json<JobValidateResponse>, ApiError> {
    let query = QueryOptions::parse(params)?;
    let request: JobValidateRequest = parse_body(&body)?;
    let Some(mut submission) = request.job else {
        return Err(ApiError::BadRequest("Job must be specified".to_owned()));
    };
    if submission.job.namespace.is_empty() {
        submission.job.namespace = query.namespace.clone();
    }
    identity.require(&submission.job.namespace, "read-job")?;
    let mut job = submission.into_job();
    let mut response = JobValidateResponse::default();
    match server.job_validate(&mut job) {
        Ok(()) => {}
        Err(ServerError::Validation(errors)) => {
            response.validation_errors = errors.errors.iter().map(ToString::to_string).collect();
            response.error = errors.to_string();
        }
        Err(ServerError::Invalid(message)) => {
            response.error = format!("1 error occurred:\n\t* {message}");
            response.validation_errors = vec![message];
        }
        Err(other) => return Err(other.into()),
    }
    Ok(Json(response))
}
