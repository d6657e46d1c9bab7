//! The job routes' messages: `/v1/jobs`, `/v1/job/:id/...`, `/v1/validate/job`, `/v1/jobs/parse`
//! (Nomad: `api/jobs.go`, `nomad/structs/structs.go` `JobRegisterRequest` and friends).
//!
//! A job is read as the stored [`Job`] and submitted as a [`JobSubmission`] (unset fields stay
//! `None` until `JobSubmission::into_job` applies Nomad's defaults). The request types are generic
//! over the job they carry: the server decodes a `JobSubmission`, a client that holds a complete
//! stored `Job` (every default already explicit) sends that.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::structs::{AllocMetric, Evaluation, Job, JobStatus, JobSubmission, JobSummary, JobType};

/// `GET /v1/jobs`: one entry per job (Nomad: `structs.JobListStub`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobListStub {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    pub name: String,
    pub namespace: String,
    pub datacenters: Vec<String>,
    pub node_pool: String,
    #[serde(rename = "Type")]
    pub job_type: JobType,
    pub priority: i32,
    pub periodic: bool,
    pub parameterized_job: bool,
    pub stop: bool,
    pub status: JobStatus,
    pub status_description: String,
    pub job_summary: Option<JobSummary>,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
    pub submit_time: i64,
    pub meta: BTreeMap<String, String>,
    pub version: u64,
}

impl JobListStub {
    pub fn new(job: &Job, summary: Option<&JobSummary>) -> Self {
        Self {
            id: job.id.to_string(),
            parent_id: job.parent_id.clone(),
            name: job.name.clone(),
            namespace: job.namespace.clone(),
            datacenters: job.datacenters.clone(),
            node_pool: job.node_pool.clone(),
            job_type: job.job_type,
            priority: job.priority,
            periodic: job
                .periodic
                .as_ref()
                .is_some_and(|periodic| periodic.enabled),
            parameterized_job: job.parameterized_job.is_some(),
            stop: job.stop,
            status: job.status,
            status_description: job.status_description.clone(),
            job_summary: summary.cloned(),
            create_index: job.create_index,
            modify_index: job.modify_index,
            job_modify_index: job.job_modify_index,
            submit_time: job.submit_time,
            meta: job.meta.clone(),
            version: job.version,
        }
    }
}

/// `PUT /v1/jobs` and `PUT /v1/job/:id` (Nomad: `api.JobRegisterRequest`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobRegisterRequest<J = JobSubmission> {
    pub job: Option<J>,
    /// Register only if the job's modify index is still `JobModifyIndex` (0: the job must not
    /// exist).
    pub enforce_index: bool,
    pub job_modify_index: u64,
}

/// `PUT /v1/job/:id/evaluate` (Nomad: `api.JobEvaluateRequest`); the answer is a
/// [`JobRegisterResponse`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobEvaluateRequest {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub eval_options: EvalOptions,
}

/// What a forced evaluation does besides running the scheduler (Nomad: `api.EvalOptions`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EvalOptions {
    /// Replace the job's failed allocations now, whatever their reschedule policy says.
    pub force_reschedule: bool,
}

/// The answer to a register (Nomad: `api.JobRegisterResponse`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobRegisterResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub warnings: String,
    pub index: u64,
    pub last_contact: u64,
    pub known_leader: bool,
}

/// `DELETE /v1/job/:id` (Nomad: `api.JobDeregisterResponse`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobDeregisterResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub index: u64,
}

/// `PUT /v1/job/:id/plan` (Nomad: `api.JobPlanRequest`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobPlanRequest<J = JobSubmission> {
    pub job: Option<J>,
    pub diff: bool,
}

/// Per task group, what the plan would do (Nomad: `api.DesiredUpdates`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DesiredUpdates {
    pub ignore: u64,
    pub place: u64,
    pub migrate: u64,
    pub stop: u64,
    pub in_place_update: u64,
    pub destructive_update: u64,
    pub canary: u64,
    pub preemptions: u64,
}

/// Nomad: `api.PlanAnnotations`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PlanAnnotations {
    #[serde(rename = "DesiredTGUpdates")]
    pub desired_tg_updates: BTreeMap<String, DesiredUpdates>,
}

pub use super::job_diff::JobDiff;

/// The answer to a plan (Nomad: `api.JobPlanResponse`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobPlanResponse {
    pub annotations: PlanAnnotations,
    #[serde(rename = "FailedTGAllocs")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    pub job_modify_index: u64,
    pub created_evals: Vec<Evaluation>,
    pub diff: Option<JobDiff>,
    pub warnings: String,
    pub index: u64,
}

/// `PUT /v1/validate/job` (Nomad: `api.JobValidateRequest`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobValidateRequest<J = JobSubmission> {
    pub job: Option<J>,
}

/// Nomad: `api.JobValidateResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobValidateResponse {
    pub driver_config_validated: bool,
    pub validation_errors: Vec<String>,
    pub error: String,
    pub warnings: String,
}

/// `POST /v1/jobs/parse` (Nomad: `api.JobsParseRequest`); the answer is the [`Job`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobsParseRequest {
    #[serde(rename = "JobHCL")]
    pub job_hcl: String,
    /// HCLv1 is not supported; a request asking for it is refused (Nomad's `hclv1`, gone
    /// since Nomad 1.9).
    #[serde(rename = "hclv1", alias = "HCLv1", skip_serializing_if = "is_false")]
    pub hcl_v1: bool,
    /// Variable-file text (`name = value` lines).
    pub variables: String,
    pub canonicalize: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// `GET /v1/job/:id/versions` (Nomad: `api.JobVersionsResponse`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobVersionsResponse {
    pub versions: Vec<Arc<Job>>,
    /// With `diffs=true`: the diff of each version (newest first) from the one before it.
    pub diffs: Option<Vec<JobDiff>>,
}

/// `PUT /v1/job/:id/revert` (Nomad: `api.JobRevertRequest`); the answer is a
/// [`JobRegisterResponse`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobRevertRequest {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_version: u64,
    pub enforce_prior_version: Option<u64>,
}

/// `PUT /v1/job/:id/stable` (Nomad: `api.JobStabilityRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobStabilityRequest {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_version: u64,
    pub stable: bool,
}

/// Nomad: `api.JobStabilityResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobStabilityResponse {
    pub index: u64,
}
