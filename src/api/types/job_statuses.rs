//! `/v1/jobs/statuses`: each job with its allocations summarised and its latest deployment, the
//! job index of Nomad's UI (Nomad 1.8+: `nomad/structs/job.go` `JobStatusesJob`, `api/jobs.go`
//! `JobStatusesRequest`).

use serde::{Deserialize, Serialize};

use crate::structs::{
    AllocClientStatus, AllocDeploymentStatus, Allocation, Deployment, DeploymentStatus, Job,
    JobStatus, JobType,
};

/// A job named with its namespace (Nomad: `structs.NamespacedID`); an empty namespace is
/// `default`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NamespacedId {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
}

/// The body of `GET` or `POST /v1/jobs/statuses`: only these jobs (Nomad:
/// `api.JobStatusesRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobStatusesRequest {
    pub jobs: Vec<NamespacedId>,
    /// Lists the children of periodic and parameterized jobs too.
    pub include_children: bool,
}

/// One job of `/v1/jobs/statuses` (Nomad: `structs.JobStatusesJob`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobStatusesJob {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    pub name: String,
    #[serde(rename = "Type")]
    pub job_type: JobType,
    pub node_pool: String,
    pub datacenters: Vec<String>,
    pub priority: i32,
    pub version: u64,
    pub submit_time: i64,
    pub modify_index: u64,
    /// `null` for a periodic or parameterized parent, whose children run instead.
    pub allocs: Option<Vec<JobStatusesAlloc>>,
    /// The sum of the groups' counts, to compare with the running allocations.
    pub group_count_sum: i64,
    /// The statuses of a periodic or parameterized parent's children; `null` for other jobs.
    pub child_statuses: Option<Vec<JobStatus>>,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    pub latest_deployment: Option<JobStatusesLatestDeployment>,
    pub stop: bool,
    /// Whether the job came from a Nomad Pack (`pack.name` in its meta).
    pub is_pack: bool,
    pub status: JobStatus,
}

impl JobStatusesJob {
    /// The job's entry without allocations, children or deployment.
    pub fn new(job: &Job) -> Self {
        Self {
            id: job.id.to_string(),
            namespace: job.namespace.clone(),
            name: job.name.clone(),
            job_type: job.job_type,
            node_pool: job.node_pool.clone(),
            datacenters: job.datacenters.clone(),
            priority: job.priority,
            version: job.version,
            submit_time: job.submit_time,
            modify_index: job.modify_index,
            allocs: None,
            group_count_sum: job
                .task_groups
                .iter()
                .map(|group| i64::from(group.count))
                .sum(),
            child_statuses: None,
            parent_id: job.parent_id.clone(),
            latest_deployment: None,
            stop: job.stop,
            is_pack: job.meta.contains_key("pack.name"),
            status: job.status,
        }
    }
}

/// One allocation of a [`JobStatusesJob`] (Nomad: `structs.JobStatusesAlloc`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobStatusesAlloc {
    #[serde(rename = "ID")]
    pub id: String,
    pub group: String,
    pub client_status: AllocClientStatus,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub deployment_status: JobStatusesDeployment,
    pub job_version: u64,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: String,
    /// Enterprise's paused tasks: always false here.
    pub has_paused_task: bool,
}

impl JobStatusesAlloc {
    pub fn new(alloc: &Allocation) -> Self {
        let deployment = alloc.deployment_status.as_ref();
        Self {
            id: alloc.id.to_string(),
            group: alloc.task_group.clone(),
            client_status: alloc.client_status,
            node_id: alloc.node_id.to_string(),
            deployment_status: JobStatusesDeployment {
                canary: AllocDeploymentStatus::is_canary(deployment),
                healthy: deployment.and_then(|status| status.healthy),
            },
            job_version: alloc.job.as_ref().map_or(0, |job| job.version),
            followup_eval_id: alloc
                .followup_eval_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            has_paused_task: false,
        }
    }
}

/// An allocation's place in its deployment (Nomad: `structs.JobStatusesDeployment`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobStatusesDeployment {
    pub canary: bool,
    /// `null` until the client decides.
    pub healthy: Option<bool>,
}

/// The job's latest deployment (Nomad: `structs.JobStatusesLatestDeployment`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobStatusesLatestDeployment {
    #[serde(rename = "ID")]
    pub id: String,
    pub is_active: bool,
    pub job_version: u64,
    pub status: DeploymentStatus,
    pub status_description: String,
    /// Every group with canaries promotes them itself.
    pub all_auto_promote: bool,
    pub requires_promotion: bool,
}

impl JobStatusesLatestDeployment {
    pub fn new(deployment: &Deployment) -> Self {
        Self {
            id: deployment.id.to_string(),
            is_active: deployment.status.is_active(),
            job_version: deployment.job_version,
            status: deployment.status,
            status_description: deployment.status_description.clone(),
            all_auto_promote: deployment.has_auto_promote(),
            requires_promotion: deployment.requires_promotion(),
        }
    }
}
