//! The allocation routes' messages: `/v1/allocations`, `/v1/allocation/:id`,
//! `/v1/allocation/:id/stop` (Nomad: `api/allocations.go`). An allocation is read as the stored
//! [`Allocation`]; lists answer stubs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::structs::{
    AllocClientStatus, AllocDeploymentStatus, AllocDesiredStatus, AllocatedResources, Allocation,
    DesiredTransition, JobType, RescheduleTracker, TaskState,
};

/// One entry of an allocation list (Nomad: `structs.AllocListStub`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocListStub {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub name: String,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_name: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_type: JobType,
    pub job_version: u64,
    pub task_group: String,
    pub allocated_resources: Option<AllocatedResources>,
    pub desired_status: AllocDesiredStatus,
    pub desired_description: String,
    pub desired_transition: DesiredTransition,
    pub client_status: AllocClientStatus,
    pub client_description: String,
    pub task_states: BTreeMap<String, TaskState>,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: String,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: Option<String>,
    pub deployment_status: Option<AllocDeploymentStatus>,
    pub reschedule_tracker: Option<RescheduleTracker>,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

impl AllocListStub {
    pub fn new(alloc: &Allocation, with_resources: bool) -> Self {
        Self {
            id: alloc.id.to_string(),
            eval_id: alloc.eval_id.to_string(),
            name: alloc.name.clone(),
            namespace: alloc.namespace.clone(),
            node_id: alloc.node_id.to_string(),
            node_name: alloc.node_name.clone(),
            job_id: alloc.job_id.to_string(),
            job_type: alloc
                .job
                .as_ref()
                .map(|job| job.job_type)
                .unwrap_or_default(),
            job_version: alloc.job.as_ref().map_or(0, |job| job.version),
            task_group: alloc.task_group.clone(),
            allocated_resources: with_resources.then(|| alloc.allocated_resources.clone()),
            desired_status: alloc.desired_status,
            desired_description: alloc.desired_description.clone(),
            desired_transition: alloc.desired_transition.clone(),
            client_status: alloc.client_status,
            client_description: alloc.client_description.clone(),
            task_states: alloc.task_states.clone().into(),
            followup_eval_id: alloc
                .followup_eval_id
                .as_ref()
                .map(|id| id.to_string())
                .unwrap_or_default(),
            deployment_id: alloc.deployment_id.as_ref().map(|id| id.to_string()),
            deployment_status: alloc.deployment_status.clone(),
            reschedule_tracker: alloc.reschedule_tracker.clone(),
            create_index: alloc.create_index,
            modify_index: alloc.modify_index,
            create_time: alloc.create_time,
            modify_time: alloc.modify_time,
        }
    }
}

/// `PUT /v1/allocation/:id/stop` (Nomad: `api.AllocStopResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocStopResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub index: u64,
}
