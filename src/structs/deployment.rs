//! The deployment: the progress of a job version rolling out.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{DeploymentId, JobId, nullable};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    #[default]
    Running,
    Paused,
    Failed,
    Successful,
    Cancelled,
    Pending,
    Blocked,
    Unblocking,
}

impl DeploymentStatus {
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Running | Self::Paused | Self::Pending | Self::Blocked | Self::Unblocking
        )
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Failed => "failed",
            Self::Successful => "successful",
            Self::Cancelled => "cancelled",
            Self::Pending => "pending",
            Self::Blocked => "blocked",
            Self::Unblocking => "unblocking",
        })
    }
}

/// One task group's progress within a deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeploymentState {
    pub auto_revert: bool,
    pub auto_promote: bool,
    /// Nanoseconds.
    pub progress_deadline: i64,
    /// RFC 3339 time by which progress must be made.
    pub require_progress_by: Option<String>,
    pub promoted: bool,
    #[serde(deserialize_with = "nullable::default")]
    pub placed_canaries: Vec<String>,
    pub desired_canaries: i32,
    pub desired_total: i32,
    pub placed_allocs: i32,
    pub healthy_allocs: i32,
    pub unhealthy_allocs: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Deployment {
    #[serde(rename = "ID")]
    pub id: DeploymentId,
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    pub job_version: u64,
    pub job_modify_index: u64,
    pub job_spec_modify_index: u64,
    pub job_create_index: u64,
    pub is_multiregion: bool,
    #[serde(deserialize_with = "nullable::default")]
    pub task_groups: BTreeMap<String, DeploymentState>,
    pub status: DeploymentStatus,
    pub status_description: String,
    pub create_index: u64,
    pub modify_index: u64,
}
