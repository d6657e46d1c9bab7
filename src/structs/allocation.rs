//! The allocation: a task group placed on a node, and what became of its tasks.
//!
//! ```text
//! desired:  run ──────────────► stop / evict            (set by servers)
//! client:   pending ─► running ─► complete | failed      (reported by the client)
//!                  └──────────────► lost | unknown       (set by servers for down nodes)
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    AllocId, AllocatedDeviceResource, DeploymentId, EvalId, Job, JobId, NetworkResource, NodeId,
    Port, Scores, Service, SortedVecMap, nullable,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocDesiredStatus {
    #[default]
    Run,
    Stop,
    Evict,
}

impl fmt::Display for AllocDesiredStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Run => "run",
            Self::Stop => "stop",
            Self::Evict => "evict",
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocClientStatus {
    #[default]
    Pending,
    Running,
    Complete,
    Failed,
    Lost,
    Unknown,
}

impl AllocClientStatus {
    /// True once the allocation will never run again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Lost)
    }
}

impl fmt::Display for AllocClientStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Lost => "lost",
            Self::Unknown => "unknown",
        })
    }
}

/// A task's state within its allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStateValue {
    #[default]
    Pending,
    Running,
    Dead,
}

impl fmt::Display for TaskStateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Dead => "dead",
        })
    }
}

/// Something that happened to a task, as `alloc status` lists it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskEvent {
    /// Nomad's event names: "Received", "Task Setup", "Started", "Terminated", "Restarting",
    /// "Killing", "Killed", "Not Restarting", "Driver Failure", "Alloc Unhealthy"...
    #[serde(rename = "Type")]
    pub event_type: String,
    /// Unix nanoseconds.
    pub time: i64,
    pub message: String,
    pub display_message: String,
    #[serde(deserialize_with = "nullable::default")]
    pub details: BTreeMap<String, String>,
    pub fails_task: bool,
    pub restart_reason: String,
    pub exit_code: i32,
    pub signal: i32,
    pub driver_error: String,
    pub kill_timeout: i64,
    pub kill_error: String,
    pub start_delay: i64,
}

impl TaskEvent {
    pub const RECEIVED: &'static str = "Received";
    pub const TASK_SETUP: &'static str = "Task Setup";
    pub const STARTED: &'static str = "Started";
    pub const TERMINATED: &'static str = "Terminated";
    pub const RESTARTING: &'static str = "Restarting";
    pub const NOT_RESTARTING: &'static str = "Not Restarting";
    pub const KILLING: &'static str = "Killing";
    pub const KILLED: &'static str = "Killed";
    pub const DRIVER_FAILURE: &'static str = "Driver Failure";
    pub const SETUP_FAILURE: &'static str = "Setup Failure";
    pub const DOWNLOADING_ARTIFACTS: &'static str = "Downloading Artifacts";
    pub const FAILED_ARTIFACT_DOWNLOAD: &'static str = "Failed Artifact Download";
    pub const SIGNALING: &'static str = "Signaling";
    pub const RESTART_SIGNAL: &'static str = "Restart Signaled";
    pub const SIBLING_FAILED: &'static str = "Sibling Task Failed";
    /// A batch group's `max_run_duration` ran out: the task was killed and failed.
    pub const MAX_RUN_DURATION_EXCEEDED: &'static str = "Max Run Duration Exceeded";
}

/// A task's state, restarts and event history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskState {
    pub state: TaskStateValue,
    pub failed: bool,
    pub restarts: u64,
    /// RFC 3339 times, as Nomad's API gives them; empty when not yet.
    pub last_restart: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(deserialize_with = "nullable::default")]
    pub events: Vec<TaskEvent>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedCpu {
    pub cpu_shares: i64,
    #[serde(deserialize_with = "nullable::default")]
    pub reserved_cores: Vec<u32>,
}

impl AllocatedCpu {
    /// The reserved cores as a Linux cpuset list (`0-2,5`), as `NOMAD_CPU_CORES` carries them.
    pub fn reserved_cores_list(&self) -> String {
        let mut sorted = self.reserved_cores.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for core in sorted {
            match ranges.last_mut() {
                Some((_, high)) if *high + 1 == core => *high = core,
                _ => ranges.push((core, core)),
            }
        }
        ranges
            .iter()
            .map(|(low, high)| {
                if low == high {
                    low.to_string()
                } else {
                    format!("{low}-{high}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod allocated_cpu_tests {
    use super::AllocatedCpu;

    #[test]
    fn reserved_cores_are_listed_as_cpuset_ranges() {
        let list = |cores: &[u32]| {
            AllocatedCpu {
                reserved_cores: cores.to_vec(),
                ..AllocatedCpu::default()
            }
            .reserved_cores_list()
        };
        assert_eq!(list(&[3, 0, 1, 2, 5, 7, 8]), "0-3,5,7-8");
        assert_eq!(list(&[4]), "4");
        assert_eq!(list(&[]), "");
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedMemory {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedTaskResources {
    pub cpu: AllocatedCpu,
    pub memory: AllocatedMemory,
    #[serde(deserialize_with = "nullable::default")]
    pub networks: Vec<NetworkResource>,
    /// The device instances the task was given.
    #[serde(deserialize_with = "nullable::default")]
    pub devices: Vec<AllocatedDeviceResource>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedSharedResources {
    #[serde(deserialize_with = "nullable::default")]
    pub networks: Vec<NetworkResource>,
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    /// The group's ports with the host ports the scheduler chose.
    #[serde(deserialize_with = "nullable::default")]
    pub ports: Vec<AllocatedPort>,
}

/// A port as allocated: label, host value, container `to`, and the host IP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedPort {
    pub label: String,
    pub value: i32,
    pub to: i32,
    #[serde(rename = "HostIP")]
    pub host_ip: String,
}

impl From<(&Port, &str)> for AllocatedPort {
    fn from((port, host_ip): (&Port, &str)) -> Self {
        Self {
            label: port.label.clone(),
            value: port.value,
            to: port.to,
            host_ip: host_ip.to_owned(),
        }
    }
}

/// The resources the scheduler granted, per task and shared by the group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedResources {
    /// By task name: most groups have one task, so a sorted vector, not a B-tree map.
    #[serde(deserialize_with = "nullable::default")]
    pub tasks: SortedVecMap<String, AllocatedTaskResources>,
    pub shared: AllocatedSharedResources,
}

impl AllocatedResources {
    pub fn total_cpu(&self) -> i64 {
        self.tasks.values().map(|task| task.cpu.cpu_shares).sum()
    }

    pub fn total_memory_mb(&self) -> i64 {
        self.tasks.values().map(|task| task.memory.memory_mb).sum()
    }
}

/// A node's score in a placement decision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeScoreMeta {
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    #[serde(deserialize_with = "nullable::default")]
    pub scores: Scores,
    pub norm_score: f64,
}

/// How the scheduler reached (or failed to reach) a placement: the evaluation's explanation.
///
/// Every placement keeps its own, so its maps (by datacenter, class, constraint, dimension:
/// usually one entry or none) are sorted vectors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocMetric {
    pub nodes_evaluated: u64,
    pub nodes_filtered: u64,
    pub nodes_in_pool: u64,
    #[serde(deserialize_with = "nullable::default")]
    pub nodes_available: SortedVecMap<String, u64>,
    #[serde(deserialize_with = "nullable::default")]
    pub class_filtered: SortedVecMap<String, u64>,
    #[serde(deserialize_with = "nullable::default")]
    pub constraint_filtered: SortedVecMap<String, u64>,
    pub nodes_exhausted: u64,
    #[serde(deserialize_with = "nullable::default")]
    pub class_exhausted: SortedVecMap<String, u64>,
    #[serde(deserialize_with = "nullable::default")]
    pub dimension_exhausted: SortedVecMap<String, u64>,
    #[serde(deserialize_with = "nullable::default")]
    pub quota_exhausted: Vec<String>,
    #[serde(deserialize_with = "nullable::default")]
    pub score_meta_data: Vec<NodeScoreMeta>,
    /// Nanoseconds spent placing.
    pub allocation_time: i64,
    pub coalesced_failures: u64,
}

/// An operator's request about an allocation that the servers act on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DesiredTransition {
    pub migrate: Option<bool>,
    pub reschedule: Option<bool>,
    pub force_reschedule: Option<bool>,
}

/// One reschedule of an allocation's lineage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RescheduleEvent {
    /// Unix nanoseconds.
    pub reschedule_time: i64,
    #[serde(rename = "PrevAllocID")]
    pub prev_alloc_id: AllocId,
    #[serde(rename = "PrevNodeID")]
    pub prev_node_id: NodeId,
    /// Nanoseconds waited before this reschedule.
    pub delay: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RescheduleTracker {
    #[serde(deserialize_with = "nullable::default")]
    pub events: Vec<RescheduleEvent>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Allocation {
    #[serde(rename = "ID")]
    pub id: AllocId,
    pub namespace: String,
    #[serde(rename = "EvalID")]
    pub eval_id: EvalId,
    /// `<job>.<group>[<index>]`.
    pub name: String,
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    pub node_name: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    /// The job version the allocation runs; shared, never copied per allocation in the store.
    #[serde(skip_serializing_if = "job_written_apart")]
    pub job: Option<std::sync::Arc<Job>>,
    pub task_group: String,
    pub allocated_resources: AllocatedResources,
    #[serde(deserialize_with = "nullable::default")]
    pub services: BTreeMap<String, Service>,
    /// Shared: plans, results, the state store and events all hold the same placement.
    pub metrics: Option<std::sync::Arc<AllocMetric>>,
    pub desired_status: AllocDesiredStatus,
    pub desired_description: String,
    pub desired_transition: DesiredTransition,
    pub client_status: AllocClientStatus,
    pub client_description: String,
    /// By task name, sorted: one entry for most groups ([`SortedVecMap`]).
    #[serde(deserialize_with = "nullable::default")]
    pub task_states: SortedVecMap<String, TaskState>,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: Option<DeploymentId>,
    /// Health within the deployment (`DeploymentID`); `None` until placed as a canary or judged.
    pub deployment_status: Option<super::AllocDeploymentStatus>,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: Option<EvalId>,
    pub previous_allocation: Option<AllocId>,
    pub next_allocation: Option<AllocId>,
    pub reschedule_tracker: Option<RescheduleTracker>,
    pub create_index: u64,
    pub modify_index: u64,
    pub alloc_modify_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub modify_time: i64,
}

impl Allocation {
    /// The index in `<job>.<group>[<index>]`, if the name has one.
    pub fn index(&self) -> Option<u32> {
        let open = self.name.rfind('[')?;
        self.name
            .get(open + 1..self.name.len().checked_sub(1)?)?
            .parse()
            .ok()
    }

    /// True once the allocation is finished on the client or asked to stop by the servers.
    pub fn is_terminal(&self) -> bool {
        self.client_status.is_terminal() || self.desired_status != AllocDesiredStatus::Run
    }

    /// True once the client has finished it for good.
    pub fn is_client_terminal(&self) -> bool {
        self.client_status.is_terminal()
    }

    /// `<job>.<group>[<index>]`, Nomad's allocation name.
    pub fn make_name(job_id: &str, group: &str, index: u32) -> String {
        format!("{job_id}.{group}[{index}]")
    }
}

thread_local! {
    static JOBS_WRITTEN_APART: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn job_written_apart(_job: &Option<std::sync::Arc<Job>>) -> bool {
    JOBS_WRITTEN_APART.get()
}

/// While it lives, allocations serialised on this thread leave out their `Job`: for a response
/// that serialises each distinct job once and writes it beside each allocation itself (a node's
/// allocations, 10,000 of them carrying one job). Dropping it restores what was before.
pub struct JobsWrittenApart {
    before: bool,
}

impl JobsWrittenApart {
    pub fn enter() -> Self {
        Self {
            before: JOBS_WRITTEN_APART.replace(true),
        }
    }
}

impl Drop for JobsWrittenApart {
    fn drop(&mut self) {
        JOBS_WRITTEN_APART.set(self.before);
    }
}
