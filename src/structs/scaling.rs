//! Scaling events: what `job scale` (or an autoscaler) did to a task group's count, kept per job
//! and group, newest first (Nomad: `structs.ScalingEvent`, `structs.JobScalingEvents`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{JobId, nullable};

/// One scaling action or error on a task group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScalingEvent {
    /// Unix nanoseconds.
    pub time: u64,
    /// The new count; `None` for an event that changed no count (an error, a message).
    pub count: Option<i64>,
    pub previous_count: i64,
    pub message: String,
    pub error: bool,
    #[serde(deserialize_with = "nullable::default")]
    pub meta: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "EvalID")]
    pub eval_id: Option<String>,
    pub create_index: u64,
}

/// A job's scaling events by task group, newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobScalingEvents {
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    #[serde(deserialize_with = "nullable::default")]
    pub scaling_events: BTreeMap<String, Vec<ScalingEvent>>,
    pub modify_index: u64,
}

impl JobScalingEvents {
    /// How many events a group keeps (Nomad: `JobTrackedScalingEvents`).
    pub const TRACKED: usize = 20;
}
