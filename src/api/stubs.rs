//! The list stubs Nomad's list endpoints return instead of whole objects (Nomad:
//! `nomad/structs/structs.go` `JobListStub`, `AllocListStub`, `NodeListStub`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::structs::{
    AllocClientStatus, AllocDeploymentStatus, AllocDesiredStatus, AllocatedResources, Allocation,
    DesiredTransition, DriverInfo, Job, JobStatus, JobSummary, JobType, Node, NodeStatus,
    RescheduleTracker, SchedulingEligibility, TaskState,
};

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
            task_states: alloc.task_states.clone(),
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeListStub {
    pub address: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub attributes: Option<BTreeMap<String, String>>,
    pub datacenter: String,
    pub name: String,
    pub node_class: String,
    pub node_pool: String,
    pub version: String,
    pub drain: bool,
    pub scheduling_eligibility: SchedulingEligibility,
    pub status: NodeStatus,
    pub status_description: String,
    pub drivers: BTreeMap<String, DriverInfo>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl NodeListStub {
    pub fn new(node: &Node, with_attributes: bool) -> Self {
        Self {
            address: node
                .attributes
                .get("unique.network.ip-address")
                .cloned()
                .unwrap_or_else(|| {
                    node.http_addr
                        .rsplit_once(':')
                        .map_or_else(|| node.http_addr.clone(), |(host, _)| host.to_owned())
                }),
            id: node.id.to_string(),
            attributes: with_attributes.then(|| node.attributes.clone()),
            datacenter: node.datacenter.clone(),
            name: node.name.clone(),
            node_class: node.node_class.clone(),
            node_pool: node.node_pool.clone(),
            version: node
                .attributes
                .get("nomad.version")
                .cloned()
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
            drain: node.drain_strategy.is_some(),
            scheduling_eligibility: node.scheduling_eligibility,
            status: node.status,
            status_description: node.status_description.clone(),
            drivers: node.drivers.clone(),
            create_index: node.create_index,
            modify_index: node.modify_index,
        }
    }
}
