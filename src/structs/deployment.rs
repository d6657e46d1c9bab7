//! The deployment: the progress of a job version rolling out.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{DeploymentId, Job, JobId, UpdateStrategy, nullable};

/// Nomad's deployment status descriptions (`nomad/structs/structs.go`).
pub mod descriptions {
    pub const RUNNING: &str = "Deployment is running";
    pub const RUNNING_NEEDS_PROMOTION: &str = "Deployment is running but requires manual promotion";
    pub const RUNNING_AUTO_PROMOTION: &str = "Deployment is running pending automatic promotion";
    pub const PAUSED: &str = "Deployment is paused";
    pub const SUCCESSFUL: &str = "Deployment completed successfully";
    pub const STOPPED_JOB: &str = "Cancelled because job is stopped";
    pub const NEWER_JOB: &str = "Cancelled due to newer version of job";
    pub const FAILED_ALLOCATIONS: &str = "Failed due to unhealthy allocations";
    pub const PROGRESS_DEADLINE: &str = "Failed due to progress deadline";
    pub const FAILED_BY_USER: &str = "Deployment marked as failed";

    /// The description of a failure that rolls the job back to `version`.
    pub fn rollback(description: &str, version: u64) -> String {
        format!("{description} - rolling back to job version {version}")
    }

    /// The description of a failure with no stable version to roll back to.
    pub fn rollback_no_stable(description: &str) -> String {
        format!("{description} - no stable job version to auto revert to")
    }
}

/// An allocation's health within its deployment, as its client reports it and the servers
/// stamp it (Nomad: `AllocDeploymentStatus`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocDeploymentStatus {
    /// `None` until the client decides.
    pub healthy: Option<bool>,
    /// RFC 3339 time the health was decided, stamped by the servers.
    pub timestamp: Option<String>,
    /// True for a canary placed alongside the previous version.
    pub canary: bool,
    pub modify_index: u64,
}

impl AllocDeploymentStatus {
    pub fn is_healthy(status: Option<&Self>) -> bool {
        status.is_some_and(|status| status.healthy == Some(true))
    }

    pub fn is_unhealthy(status: Option<&Self>) -> bool {
        status.is_some_and(|status| status.healthy == Some(false))
    }

    pub fn is_canary(status: Option<&Self>) -> bool {
        status.is_some_and(|status| status.canary)
    }
}

/// True if a group's update block asks for deployments (Nomad: `UpdateStrategy.IsEmpty` is
/// false: a positive `max_parallel`).
pub fn strategy_of(job: &Job, group: &str) -> Option<UpdateStrategy> {
    if job.job_type != super::JobType::Service {
        return None;
    }
    job.task_group(group)
        .and_then(|group| group.update.clone())
        .filter(|update| update.max_parallel > 0)
}

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

impl Deployment {
    /// A running deployment of `job`'s current version, without groups.
    pub fn new_for(job: &Job) -> Self {
        Self {
            id: DeploymentId::generate(),
            namespace: job.namespace.clone(),
            job_id: job.id.clone(),
            job_version: job.version,
            job_modify_index: job.job_modify_index,
            job_spec_modify_index: job.job_modify_index,
            job_create_index: job.create_index,
            status: DeploymentStatus::Running,
            status_description: descriptions::RUNNING.to_owned(),
            ..Self::default()
        }
    }

    /// True if this deployment rolls out `job`'s current version.
    pub fn is_for(&self, job: &Job) -> bool {
        self.job_id == job.id
            && self.namespace == job.namespace
            && self.job_version == job.version
            && self.job_create_index == job.create_index
    }

    /// True if a running deployment's groups that place canaries all promote them themselves
    /// (Nomad: `Deployment.HasAutoPromote`).
    pub fn has_auto_promote(&self) -> bool {
        self.status == DeploymentStatus::Running
            && !self.task_groups.is_empty()
            && self
                .task_groups
                .values()
                .all(|group| group.desired_canaries == 0 || group.auto_promote)
    }

    /// True while some group waits for its canaries to be promoted.
    pub fn requires_promotion(&self) -> bool {
        self.task_groups
            .values()
            .any(|group| group.desired_canaries > 0 && !group.promoted)
    }
}
