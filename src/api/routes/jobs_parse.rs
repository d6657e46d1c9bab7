//! `POST /v1/jobs/parse`: HCL job text → the job as API JSON (Nomad: `jobs_endpoint.go`
//! `JobsParseRequest`), so API clients need no HCL parser of their own.
//!
//! Body: `{"JobHCL": "<job file>", "Variables": "<var file text>", "Canonicalize": true}`. The reply
//! is the job, canonicalized but not validated (as Nomad's: a job without groups parses; the
//! server validates at registration): caravan's jobspec always applies Nomad's defaults, so
//! `Canonicalize = false` is accepted and gives the same answer. A file that does not parse is a
//! 400 with the jobspec's one-line `file:line:col` error; so is a file whose expressions go over
//! the jobspec's evaluation budget. Evaluation runs on a blocking thread, off the async runtime.

use axum::Json;
use axum::response::{IntoResponse, Response};

use super::jobs::parse_body;
use crate::api::error::ApiError;
use crate::api::types::jobs::JobsParseRequest;
use crate::jobspec::{self, ParseConfig};

pub async fn parse(body: axum::body::Bytes) -> Result<Response, ApiError> {
    let request: JobsParseRequest = parse_body(&body)?;
    if request.hcl_v1 {
        return Err(ApiError::BadRequest(
            "HCLv1 job files are not supported; write HCL2".to_owned(),
        ));
    }
    if request.job_hcl.trim().is_empty() {
        return Err(ApiError::BadRequest("JobHCL must not be empty".to_owned()));
    }
    let var_files = if request.variables.trim().is_empty() {
        Vec::new()
    } else {
        vec![("variables".to_owned(), request.variables)]
    };
    // Off the async runtime: evaluation is CPU work, bounded by the jobspec's budget, and must
    // not stall the agent's other endpoints meanwhile.
    let job = tokio::task::spawn_blocking(move || {
        jobspec::parse_with_var_files(
            &request.job_hcl,
            "input.nomad.hcl",
            &ParseConfig::default(),
            &var_files,
        )
    })
    .await
    .map_err(|error| ApiError::Internal(format!("job file evaluation failed: {error}")))?
    .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    Ok(Json(job).into_response())
}
