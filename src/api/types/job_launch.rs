//! Launching children of a job: `periodic force` and `job dispatch` (Nomad:
//! `api.PeriodicForceResponse`, `api.JobDispatchRequest`, `api.JobDispatchResponse`).

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
