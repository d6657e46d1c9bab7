//! Scaling a job's groups: `/v1/job/<id>/scale` (Nomad: `api.ScalingRequest`,
//! `api.JobScaleStatusResponse`, `api.TaskGroupScaleStatus`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::structs::ScalingEvent;

/// The key of `Target` that names the group (Nomad: `structs.ScalingTargetGroup`).
pub const SCALING_TARGET_GROUP: &str = "Group";

/// The body of `POST /v1/job/<id>/scale`. `Target` names the group (`{"Group": "web"}`); without
/// `Count` the request only records an event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScalingRequest {
    pub count: Option<i64>,
    #[serde(deserialize_with = "nullable_map")]
    pub target: BTreeMap<String, String>,
    pub error: bool,
    pub message: String,
    #[serde(deserialize_with = "nullable_map")]
    pub meta: BTreeMap<String, serde_json::Value>,
    pub policy_override: bool,
    /// With `EnforceIndex`-like intent: scale only if the job's modify index is still this one
    /// (0: any).
    pub job_modify_index: u64,
}

/// The answer to `GET /v1/job/<id>/scale`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobScaleStatusResponse {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub namespace: String,
    pub job_create_index: u64,
    pub job_modify_index: u64,
    pub job_stopped: bool,
    pub task_groups: BTreeMap<String, TaskGroupScaleStatus>,
}

/// One group's count and its scaling events, newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroupScaleStatus {
    pub desired: i64,
    pub placed: i64,
    pub running: i64,
    pub healthy: i64,
    pub unhealthy: i64,
    #[serde(deserialize_with = "nullable_vec")]
    pub events: Vec<ScalingEvent>,
}

fn nullable_map<'de, D: serde::Deserializer<'de>, V: Deserialize<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, V>, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}

fn nullable_vec<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ScalingEvent>, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}
