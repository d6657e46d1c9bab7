//! Launching children of a job: `periodic force` and `job dispatch` (Nomad:
//! `api.PeriodicForceResponse`, `api.JobDispatchRequest`, `api.JobDispatchResponse`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The answer to `PUT /v1/job/<id>/periodic/force`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PeriodicForceResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub index: u64,
}

/// The body of `PUT /v1/job/<id>/dispatch` (Nomad: `api.JobDispatchRequest`): the payload is
/// base64 in JSON, as Go writes a `[]byte`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobDispatchRequest {
    #[serde(rename = "JobID")]
    pub job_id: String,
    #[serde(
        with = "crate::structs::payload_base64",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub payload: Vec<u8>,
    #[serde(deserialize_with = "nullable_map")]
    pub meta: BTreeMap<String, String>,
    pub id_prefix_template: String,
}

/// The answer to a dispatch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobDispatchResponse {
    #[serde(rename = "DispatchedJobID")]
    pub dispatched_job_id: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_create_index: u64,
    pub index: u64,
}

fn nullable_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}
