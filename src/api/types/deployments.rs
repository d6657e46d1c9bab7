//! The deployment routes' messages: `/v1/deployment/{promote,fail,pause,allocation-health}/:id`
//! (Nomad: `api/deployments.go`). A deployment is read as the stored [`crate::structs::Deployment`];
//! its allocations as [`super::allocs::AllocListStub`]s.

use serde::{Deserialize, Serialize};

/// `PUT /v1/deployment/promote/:id` (Nomad: `api.DeploymentPromoteRequest`). An empty body
/// promotes every group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeploymentPromoteRequest {
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    pub all: bool,
    pub groups: Vec<String>,
}

/// `PUT /v1/deployment/fail/:id` (Nomad: `api.DeploymentFailRequest`); the path names the
/// deployment, the body may be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeploymentFailRequest {
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
}

/// `PUT /v1/deployment/pause/:id`: pauses (`Pause: true`) or resumes (Nomad:
/// `api.DeploymentPauseRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeploymentPauseRequest {
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    pub pause: bool,
}

/// `PUT /v1/deployment/allocation-health/:id`: the operator's verdict on allocations of a
/// deployment with manual health checks (Nomad: `api.DeploymentAllocHealthRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeploymentAllocHealthRequest {
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    #[serde(rename = "HealthyAllocationIDs")]
    pub healthy_allocation_ids: Vec<String>,
    #[serde(rename = "UnhealthyAllocationIDs")]
    pub unhealthy_allocation_ids: Vec<String>,
}

/// What every deployment write answers (Nomad: `api.DeploymentUpdateResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeploymentUpdateResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub deployment_modify_index: u64,
    /// The version the job was reverted to, if the failure rolled it back.
    pub reverted_job_version: Option<u64>,
    pub index: u64,
}
