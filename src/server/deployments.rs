//! The server's deployment endpoints: promote, fail, pause and resume a deployment; revert a job
//! to an earlier version; mark a version stable. Each makes its evaluation here and submits one
//! [`Command`] through Raft.
//!
//! A failure — asked by the operator or decided by the deployment watcher — reverts the job to
//! its latest stable version when a group of the deployment has `auto_revert`.
//!
//! Nomad: `nomad/deployment_endpoint.go`, `nomad/job_endpoint.go` (`Revert`, `Stable`),
//! `nomad/deploymentwatcher/deployment_watcher.go` (`FailDeployment`, `handleRollbackValidity`).

use super::Server;
use super::endpoints::{ServerError, new_eval};
use super::raft::Command;
use super::state::{ApplyError, ObjectKind};
use crate::api::types::deployments::DeploymentUpdateResponse;
use crate::api::types::jobs::JobRegisterResponse;
use crate::structs::{
    AllocDeploymentStatus, AllocId, Deployment, DeploymentId, DeploymentStatus,
    DeploymentStatusUpdate, EvalTrigger, Evaluation, Job, JobId, deployment_descriptions,
};

/// An evaluation of `job` on behalf of a deployment.
pub fn deployment_eval(job: &Job, deployment_id: &DeploymentId, now: i64) -> Evaluation {
    let mut eval = new_eval(job, EvalTrigger::DEPLOYMENT_WATCHER, now);
    eval.deployment_id = Some(deployment_id.clone());
    eval
}

/// The latest stable version of `job` other than its current one.
fn latest_stable(versions: &[std::sync::Arc<Job>], current: u64) -> Option<std::sync::Arc<Job>> {
    versions
        .iter()
        .filter(|job| job.stable && job.version != current)
        .max_by_key(|job| job.version)
        .cloned()
}

impl Server {
    fn active_deployment(&self, deployment_id: &DeploymentId) -> Result<Deployment, ServerError> {
        let snapshot = self.store.snapshot();
        let deployment = snapshot.deployment(deployment_id).ok_or_else(|| {
            ServerError::State(ApplyError::not_found(ObjectKind::Deployment, deployment_id))
        })?;
        if !deployment.status.is_active() {
            return Err(ServerError::Invalid(format!(
                "can't update terminal deployment {deployment_id} (status {})",
                deployment.status
            )));
        }
        Ok((*deployment).clone())
    }

    fn deployment_job(&self, deployment: &Deployment) -> Result<std::sync::Arc<Job>, ServerError> {
        self.store
            .snapshot()
            .job(&deployment.namespace, &deployment.job_id)
            .ok_or_else(|| {
                ServerError::State(ApplyError::not_found(ObjectKind::Job, &deployment.job_id))
            })
    }

    /// Sets a deployment's status, with an evaluation of its job.
    async fn set_deployment_status(
        &self,
        deployment: &Deployment,
        status: DeploymentStatus,
        description: String,
    ) -> Result<DeploymentUpdateResponse, ServerError> {
        let job = self.deployment_job(deployment)?;
        let eval = deployment_eval(&job, &deployment.id, super::now_unix_nanos());
        let eval_id = eval.id.to_string();
        let response = self
            .write_checked(Command::DeploymentUpdate {
                update: DeploymentStatusUpdate {
                    deployment_id: deployment.id.clone(),
                    status,
                    status_description: description,
                },
                eval: Some(eval),
            })
            .await?;
        Ok(DeploymentUpdateResponse {
            eval_id,
            eval_create_index: response.index,
            deployment_modify_index: response.index,
            reverted_job_version: None,
            index: response.index,
        })
    }

    /// Pauses or resumes a deployment (Nomad: `Deployment.Pause`).
    pub async fn deployment_pause(
        &self,
        deployment_id: &DeploymentId,
        pause: bool,
    ) -> Result<DeploymentUpdateResponse, ServerError> {
        let deployment = self.active_deployment(deployment_id)?;
        let (status, description) = if pause {
            (DeploymentStatus::Paused, deployment_descriptions::PAUSED)
        } else if deployment.requires_promotion() {
            (
                DeploymentStatus::Running,
                deployment_descriptions::RUNNING_NEEDS_PROMOTION,
            )
        } else {
            (DeploymentStatus::Running, deployment_descriptions::RUNNING)
        };
        self.set_deployment_status(&deployment, status, description.to_owned())
            .await
    }

    /// Fails a deployment as the operator asks (Nomad: `Deployment.Fail`).
    pub async fn deployment_fail(
        &self,
        deployment_id: &DeploymentId,
    ) -> Result<DeploymentUpdateResponse, ServerError> {
        let deployment = self.active_deployment(deployment_id)?;
        self.fail_deployment(&deployment, deployment_descriptions::FAILED_BY_USER)
            .await
    }

    /// Fails a deployment with `description`; with `auto_revert` in one of its groups, registers
    /// the job's latest stable version again.
    pub async fn fail_deployment(
        &self,
        deployment: &Deployment,
        description: &str,
    ) -> Result<DeploymentUpdateResponse, ServerError> {
        let auto_revert = deployment
            .task_groups
            .values()
            .any(|state| state.auto_revert);
        let snapshot = self.store.snapshot();
        let job = self.deployment_job(deployment)?;
        let rollback = if auto_revert && job.version == deployment.job_version {
            latest_stable(
                &snapshot.job_versions(&deployment.namespace, &deployment.job_id),
                job.version,
            )
        } else {
            None
        };
        let description = match (&rollback, auto_revert) {
            (Some(stable), _) => deployment_descriptions::rollback(description, stable.version),
            (None, true) => deployment_descriptions::rollback_no_stable(description),
            (None, false) => description.to_owned(),
        };
        let mut response = self
            .set_deployment_status(deployment, DeploymentStatus::Failed, description)
            .await?;
        if let Some(stable) = rollback {
            tracing::info!(
                deployment_id = %deployment.id,
                job_id = %deployment.job_id,
                version = stable.version,
                "deployment failed: reverting the job"
            );
            let reverted = self.register_version(&stable).await?;
            response.eval_id = reverted.eval_id;
            response.reverted_job_version = Some(stable.version);
            response.index = reverted.index;
        }
        Ok(response)
    }

    /// Promotes the canaries of `groups` (all groups when empty) once they are healthy (Nomad:
    /// `Deployment.Promote`).
    pub async fn deployment_promote(
        &self,
        deployment_id: &DeploymentId,
        groups: Vec<String>,
    ) -> Result<DeploymentUpdateResponse, ServerError> {
        let deployment = self.active_deployment(deployment_id)?;
        if !deployment.requires_promotion() {
            return Err(ServerError::Invalid(format!(
                "deployment {deployment_id} has no canaries to promote"
            )));
        }
        for name in &groups {
            if !deployment.task_groups.contains_key(name) {
                return Err(ServerError::Invalid(format!(
                    "deployment {deployment_id} has no task group {name:?}"
                )));
            }
        }
        let snapshot = self.store.snapshot();
        for (name, state) in &deployment.task_groups {
            if state.desired_canaries == 0 || !(groups.is_empty() || groups.contains(name)) {
                continue;
            }
            let healthy = state
                .placed_canaries
                .iter()
                .filter_map(|id| snapshot.alloc(&id.as_str().into()))
                .filter(|alloc| AllocDeploymentStatus::is_healthy(alloc.deployment_status.as_ref()))
                .count();
            if healthy < usize::try_from(state.desired_canaries).unwrap_or(0) {
                return Err(ServerError::Invalid(format!(
                    "task group {name:?} has {healthy}/{} healthy canaries",
                    state.desired_canaries
                )));
            }
        }
        let job = self.deployment_job(&deployment)?;
        let eval = deployment_eval(&job, deployment_id, super::now_unix_nanos());
        let eval_id = eval.id.to_string();
        let response = self
            .write_checked(Command::DeploymentPromote {
                deployment_id: deployment_id.clone(),
                groups,
                eval: Some(eval),
            })
            .await?;
        Ok(DeploymentUpdateResponse {
            eval_id,
            eval_create_index: response.index,
            deployment_modify_index: response.index,
            reverted_job_version: None,
            index: response.index,
        })
    }

    /// Sets allocations' health in a deployment whose groups use manual health checks (Nomad:
    /// `Deployment.SetAllocHealth`).
    pub async fn deployment_alloc_health(
        &self,
        deployment_id: &DeploymentId,
        healthy: Vec<AllocId>,
        unhealthy: Vec<AllocId>,
    ) -> Result<DeploymentUpdateResponse, ServerError> {
        let deployment = self.active_deployment(deployment_id)?;
        if healthy.is_empty() && unhealthy.is_empty() {
            return Err(ServerError::Invalid(
                "must specify at least one healthy or unhealthy allocation ID".to_owned(),
            ));
        }
        let job = self.deployment_job(&deployment)?;
        let snapshot = self.store.snapshot();
        for alloc_id in healthy.iter().chain(&unhealthy) {
            let alloc = snapshot.alloc(alloc_id).ok_or_else(|| {
                ServerError::State(ApplyError::not_found(ObjectKind::Allocation, alloc_id))
            })?;
            if alloc.deployment_id.as_ref() != Some(deployment_id) {
                return Err(ServerError::Invalid(format!(
                    "allocation {alloc_id} is not part of deployment {deployment_id}"
                )));
            }
            let manual = job
                .task_group(&alloc.task_group)
                .and_then(|group| group.update.as_ref())
                .is_some_and(|update| update.health_check == "manual");
            if !manual {
                return Err(ServerError::Invalid(format!(
                    "health for allocation {alloc_id} can't be set: its task group does not use manual health checks"
                )));
            }
        }
        let now = super::now_unix_nanos();
        let eval = deployment_eval(&job, deployment_id, now);
        let eval_id = eval.id.to_string();
        let response = self
            .write_checked(Command::DeploymentAllocHealth {
                deployment_id: deployment_id.clone(),
                healthy,
                unhealthy,
                now,
                eval: Some(eval),
            })
            .await?;
        Ok(DeploymentUpdateResponse {
            eval_id,
            eval_create_index: response.index,
            deployment_modify_index: response.index,
            reverted_job_version: None,
            index: response.index,
        })
    }

    /// Registers an earlier version of a job again as its newest (Nomad: `Job.Revert`).
    pub async fn job_revert(
        &self,
        namespace: &str,
        job_id: &JobId,
        version: u64,
        enforce_prior_version: Option<u64>,
    ) -> Result<JobRegisterResponse, ServerError> {
        let snapshot = self.store.snapshot();
        let current = snapshot
            .job(namespace, job_id)
            .ok_or_else(|| ServerError::State(ApplyError::not_found(ObjectKind::Job, job_id)))?;
        if let Some(prior) = enforce_prior_version
            && prior != current.version
        {
            return Err(ServerError::Invalid(format!(
                "current job has version {}; enforcing version {prior}",
                current.version
            )));
        }
        if version == current.version {
            return Err(ServerError::Invalid(format!(
                "can't revert to current version {version}"
            )));
        }
        let target = snapshot
            .job_versions(namespace, job_id)
            .into_iter()
            .find(|job| job.version == version)
            .ok_or_else(|| {
                ServerError::State(ApplyError::not_found(
                    ObjectKind::JobVersion,
                    format!("{job_id} version {version}"),
                ))
            })?;
        self.register_version(&target).await
    }

    async fn register_version(&self, version: &Job) -> Result<JobRegisterResponse, ServerError> {
        let mut job = version.clone();
        job.stable = false;
        job.stop = false;
        self.job_register(job).await
    }

    /// Marks a job version stable or not (Nomad: `Job.Stable`).
    pub async fn job_stability(
        &self,
        namespace: &str,
        job_id: &JobId,
        version: u64,
        stable: bool,
    ) -> Result<u64, ServerError> {
        let response = self
            .write_checked(Command::JobStability {
                namespace: namespace.to_owned(),
                job_id: job_id.clone(),
                version,
                stable,
            })
            .await?;
        Ok(response.index)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_rollback_target_is_the_latest_stable_other_version() {
        let version = |version: u64, stable: bool| {
            Arc::new(Job {
                version,
                stable,
                ..Job::default()
            })
        };
        let versions = [
            version(3, true),
            version(2, false),
            version(1, true),
            version(0, true),
        ];
        assert_eq!(latest_stable(&versions, 3).map(|job| job.version), Some(1));
        assert_eq!(latest_stable(&versions, 4).map(|job| job.version), Some(3));
        assert!(latest_stable(&versions[1..2], 4).is_none());
    }
}
