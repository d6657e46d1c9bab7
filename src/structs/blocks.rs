//! Smaller blocks of Nomad's job specification, stored under Nomad's JSON names: `ui`,
//! `scaling`, `disconnect`, `action`, `schedule`, a resources block's `numa`, a
//! template's `wait` and `change_script`, a network's `dns` and `cni`, a service's `weights`.
//!
//! Metadata-only blocks (`ui`, `scaling` without an autoscaler) are stored and shown; the others
//! are carried to the client, which acts on those it knows.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{duration, nullable};

/// `ui` block of a job (Nomad: `api.JobUIConfig`): shown by the web UI.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobUiConfig {
    pub description: String,
    #[serde(deserialize_with = "nullable::default")]
    pub links: Vec<JobUiLink>,
}

impl JobUiConfig {
    /// Nomad's limit on the description's length, in bytes.
    pub const MAX_DESCRIPTION_LEN: usize = 1000;
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobUiLink {
    pub label: String,
    #[serde(rename = "URL")]
    pub url: String,
}

/// `scaling` block of a group (`type` "horizontal") or a task (`scaling "cpu"` / `scaling
/// "mem"`, types "vertical_cpu" / "vertical_mem") (Nomad: `api.ScalingPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScalingPolicy {
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// The autoscaler's policy, free-form.
    #[serde(deserialize_with = "nullable::default")]
    pub policy: serde_json::Map<String, serde_json::Value>,
    pub enabled: Option<bool>,
    #[serde(rename = "Type")]
    pub policy_type: String,
}

/// `disconnect` block of a group (Nomad 1.8+: `api.DisconnectStrategy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DisconnectStrategy {
    #[serde(with = "duration::opt_nanos")]
    pub lost_after: Option<Duration>,
    #[serde(with = "duration::opt_nanos")]
    pub stop_on_client_after: Option<Duration>,
    pub replace: Option<bool>,
    /// "best_score", "keep_original", "keep_replacement" or "longest_running".
    pub reconcile: Option<String>,
}

/// `action "<name>"` block of a task (Nomad 1.7+: `api.Action`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Action {
    pub name: String,
    pub command: String,
    #[serde(deserialize_with = "nullable::default")]
    pub args: Vec<String>,
}

/// `schedule` block of a task (Nomad Enterprise: `api.TaskSchedule`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskSchedule {
    pub cron: Option<TaskScheduleCron>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskScheduleCron {
    pub start: String,
    pub end: String,
    pub timezone: String,
}

/// `numa` block of a task's resources (Nomad: `api.NUMAResource`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NumaResource {
    /// "none", "prefer" or "require".
    pub affinity: String,
    #[serde(deserialize_with = "nullable::default")]
    pub devices: Vec<String>,
}

/// `wait` block of a template (Nomad: `api.WaitConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitConfig {
    #[serde(with = "duration::opt_nanos")]
    pub min: Option<Duration>,
    #[serde(with = "duration::opt_nanos")]
    pub max: Option<Duration>,
}

/// `change_script` block of a template (Nomad: `api.ChangeScript`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ChangeScript {
    pub command: String,
    #[serde(deserialize_with = "nullable::default")]
    pub args: Vec<String>,
    #[serde(with = "duration::opt_nanos")]
    pub timeout: Option<Duration>,
    pub fail_on_error: bool,
    pub run_on_first_render: Option<bool>,
}

/// `dns` block of a network (Nomad: `api.DNSConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DnsConfig {
    #[serde(deserialize_with = "nullable::default")]
    pub servers: Vec<String>,
    #[serde(deserialize_with = "nullable::default")]
    pub searches: Vec<String>,
    #[serde(deserialize_with = "nullable::default")]
    pub options: Vec<String>,
}

/// `cni` block of a network (Nomad: `api.CNIConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CniConfig {
    #[serde(deserialize_with = "nullable::default")]
    pub args: BTreeMap<String, String>,
}

/// `weights` block of a service (Nomad: `api.ServiceWeights`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceWeights {
    pub passing: i32,
    pub warning: i32,
}
