//! The scheduler configuration routes (Nomad: `api/operator.go` `SchedulerConfigurationResponse`,
//! `SchedulerSetConfigurationResponse`).
//!
//! | method and path                                  | body                       | reply |
//! |--------------------------------------------------|----------------------------|-------|
//! | `GET /v1/operator/scheduler/configuration`       |                            | [`SchedulerConfigurationResponse`] |
//! | `PUT/POST /v1/operator/scheduler/configuration[?cas=N]` | [`SchedulerConfiguration`] | [`SchedulerSetConfigurationResponse`] |

use serde::{Deserialize, Serialize};

use crate::structs::SchedulerConfiguration;

/// The configuration in force, with the query's metadata in the body as Nomad sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SchedulerConfigurationResponse {
    pub scheduler_config: Option<SchedulerConfiguration>,
    pub index: u64,
    pub last_contact: u64,
    pub known_leader: bool,
    pub next_token: String,
}

/// Whether a set (or check-and-set) stored the configuration, and the index of the write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SchedulerSetConfigurationResponse {
    pub updated: bool,
    pub index: u64,
}
