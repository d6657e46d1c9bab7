//! The evaluation: a request to the schedulers to reconcile a job with the cluster.
//!
//! ```text
//! pending ─► complete
//!    │  └──► failed          (delivery limit reached)
//!    └─────► blocked ─► pending (capacity freed)
//!    └─────► canceled        (superseded)
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AllocMetric, DeploymentId, EvalId, JobId, JobType, NodeId, duration, nullable};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalStatus {
    Blocked,
    #[default]
    Pending,
    Complete,
    Failed,
    Canceled,
}

impl EvalStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Canceled)
    }
}

impl fmt::Display for EvalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Blocked => "blocked",
            Self::Pending => "pending",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        })
    }
}

/// Why an evaluation was made, with Nomad's names.
pub struct EvalTrigger;

impl EvalTrigger {
    pub const JOB_REGISTER: &'static str = "job-register";
    pub const JOB_DEREGISTER: &'static str = "job-deregister";
    pub const PERIODIC_JOB: &'static str = "periodic-job";
    pub const NODE_DRAIN: &'static str = "node-drain";
    pub const NODE_UPDATE: &'static str = "node-update";
    pub const ALLOC_STOP: &'static str = "alloc-stop";
    pub const SCHEDULED: &'static str = "scheduled";
    pub const ROLLING_UPDATE: &'static str = "rolling-update";
    pub const DEPLOYMENT_WATCHER: &'static str = "deployment-watcher";
    pub const FAILED_FOLLOW_UP: &'static str = "failed-follow-up";
    pub const MAX_PLANS: &'static str = "max-plan-attempts";
    pub const RETRY_FAILED_ALLOC: &'static str = "alloc-failure";
    pub const QUEUED_ALLOCS: &'static str = "queued-allocs";
    pub const PREEMPTION: &'static str = "preemption";
    pub const JOB_SCALING: &'static str = "job-scaling";
    pub const RECONNECT: &'static str = "reconnect";
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Evaluation {
    #[serde(rename = "ID")]
    pub id: EvalId,
    pub namespace: String,
    pub priority: i32,
    /// The scheduler to use: the job's type, or "_core" for garbage collection.
    #[serde(rename = "Type")]
    pub eval_type: JobType,
    pub triggered_by: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    pub job_modify_index: u64,
    #[serde(rename = "NodeID")]
    pub node_id: Option<NodeId>,
    pub node_modify_index: u64,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: Option<DeploymentId>,
    pub status: EvalStatus,
    pub status_description: String,
    /// Wait before processing (reschedule delays), in nanoseconds.
    #[serde(with = "duration::nanos")]
    pub wait: std::time::Duration,
    /// Unix nanoseconds before which the evaluation is not processed; 0 for now.
    pub wait_until: i64,
    pub next_eval: Option<EvalId>,
    pub previous_eval: Option<EvalId>,
    pub blocked_eval: Option<EvalId>,
    /// Per task group, why placements failed.
    #[serde(rename = "FailedTGAllocs", deserialize_with = "nullable::default")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    #[serde(deserialize_with = "nullable::default")]
    pub class_eligibility: BTreeMap<String, bool>,
    pub escaped_computed_class: bool,
    pub annotate_plan: bool,
    /// Per task group, allocations still waiting for capacity.
    #[serde(deserialize_with = "nullable::default")]
    pub queued_allocations: BTreeMap<String, u64>,
    pub snapshot_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub modify_time: i64,
}
