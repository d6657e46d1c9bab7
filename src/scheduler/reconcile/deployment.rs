//! Deployments in the reconciler: which deployment is current, what an update may place now.
//!
//! A service group with an `update` block (a positive `max_parallel`) rolls a new version out
//! as a deployment: its destructive updates are placed at most `max_parallel` at a time beyond
//! what the deployment already has healthy, none while an allocation of it is unhealthy, none
//! while it is paused or failed; with `canary = N`, N new allocations are placed alongside the
//! old ones first and nothing else is replaced until the canaries are promoted.
//!
//! Nomad: `scheduler/reconciler/reconcile_cluster.go` (`cancelUnneededDeployments`,
//! `computeUnderProvisionedBy`, `computeCanaries`, deployment creation in `computeGroup`).

use std::sync::Arc;

use crate::structs::{
    AllocDeploymentStatus, AllocDesiredStatus, Allocation, Deployment, DeploymentState,
    DeploymentStatus, DeploymentStatusUpdate, Job, UpdateStrategy, deployment_descriptions,
};

/// The job's latest deployment as the reconciler sees it.
#[derive(Clone, Debug, Default)]
pub struct DeploymentView<'a> {
    /// The deployment of the job's current version, unless it completed successfully (then a
    /// later destructive change needs a new one).
    pub current: Option<&'a Arc<Deployment>>,
    /// An active deployment to cancel: it rolls an older version, or the job is stopped.
    pub cancel: Option<DeploymentStatusUpdate>,
}

impl<'a> DeploymentView<'a> {
    pub fn new(latest: Option<&'a Arc<Deployment>>, live_job: Option<&Job>) -> Self {
        let Some(latest) = latest else {
            return Self::default();
        };
        let cancel = |description: &str| DeploymentStatusUpdate {
            deployment_id: latest.id.clone(),
            status: DeploymentStatus::Cancelled,
            status_description: description.to_owned(),
        };
        match live_job {
            None => Self {
                current: None,
                cancel: latest
                    .status
                    .is_active()
                    .then(|| cancel(deployment_descriptions::STOPPED_JOB)),
            },
            Some(job) if !latest.is_for(job) => Self {
                current: None,
                cancel: latest
                    .status
                    .is_active()
                    .then(|| cancel(deployment_descriptions::NEWER_JOB)),
            },
            Some(_) => Self {
                current: (latest.status != DeploymentStatus::Successful).then_some(latest),
                cancel: None,
            },
        }
    }

    /// True if the current deployment places nothing new (paused, failed, cancelled).
    pub fn halted(&self) -> bool {
        self.current.is_some_and(|deployment| {
            matches!(
                deployment.status,
                DeploymentStatus::Paused | DeploymentStatus::Failed | DeploymentStatus::Cancelled
            )
        })
    }

    pub fn group(&self, name: &str) -> Option<&'a DeploymentState> {
        self.current
            .and_then(|deployment| deployment.task_groups.get(name))
    }

    /// True if `alloc` is a canary of the current deployment waiting for promotion.
    pub fn is_unpromoted_canary(&self, alloc: &Allocation) -> bool {
        let Some(current) = self.current else {
            return false;
        };
        alloc.deployment_id.as_ref() == Some(&current.id)
            && AllocDeploymentStatus::is_canary(alloc.deployment_status.as_ref())
            && !self
                .group(&alloc.task_group)
                .is_some_and(|state| state.promoted)
    }

    /// How many destructive updates the group may place now (Nomad's `computeLimit`):
    /// `max_parallel` less the current deployment's allocations that are not yet healthy, zero if
    /// one of them is unhealthy, the deployment halted or canaries await promotion.
    pub fn update_limit(
        &self,
        strategy: &UpdateStrategy,
        group_allocs: &[&Arc<Allocation>],
        canarying: bool,
    ) -> usize {
        if self.halted() || canarying {
            return 0;
        }
        let mut limit = i64::from(strategy.max_parallel);
        if let Some(current) = self.current {
            for alloc in group_allocs {
                if alloc.deployment_id.as_ref() != Some(&current.id)
                    || alloc.desired_status != AllocDesiredStatus::Run
                {
                    continue;
                }
                let status = alloc.deployment_status.as_ref();
                // A failed allocation still counts here: its failure holds the rollout.
                if AllocDeploymentStatus::is_unhealthy(status) {
                    return 0;
                }
                if !alloc.is_client_terminal() && !AllocDeploymentStatus::is_healthy(status) {
                    limit -= 1;
                }
            }
        }
        usize::try_from(limit.max(0)).unwrap_or(0)
    }
}

/// A group's entry in a new deployment.
pub fn group_state(strategy: &UpdateStrategy, count: i32, canaries: bool) -> DeploymentState {
    DeploymentState {
        auto_revert: strategy.auto_revert,
        auto_promote: strategy.auto_promote,
        progress_deadline: i64::try_from(strategy.progress_deadline.as_nanos()).unwrap_or(i64::MAX),
        desired_canaries: if canaries { strategy.canary } else { 0 },
        desired_total: count,
        ..DeploymentState::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{DeploymentId, JobId};

    fn job(version: u64) -> Job {
        Job {
            id: JobId::from("web"),
            version,
            create_index: 7,
            ..Job::default()
        }
    }

    fn deployment(version: u64, status: DeploymentStatus) -> Arc<Deployment> {
        Arc::new(Deployment {
            id: DeploymentId::from("d1"),
            job_id: JobId::from("web"),
            job_version: version,
            job_create_index: 7,
            status,
            ..Deployment::default()
        })
    }

    #[test]
    fn an_older_versions_active_deployment_is_cancelled() {
        let old = deployment(1, DeploymentStatus::Running);
        let view = DeploymentView::new(Some(&old), Some(&job(2)));
        assert!(view.current.is_none());
        let cancel = view.cancel.expect("cancelled");
        assert_eq!(cancel.status, DeploymentStatus::Cancelled);
        assert_eq!(
            cancel.status_description,
            deployment_descriptions::NEWER_JOB
        );
        let stopped = DeploymentView::new(Some(&old), None);
        assert_eq!(
            stopped.cancel.expect("cancelled").status_description,
            deployment_descriptions::STOPPED_JOB
        );
        let done = deployment(1, DeploymentStatus::Successful);
        let view = DeploymentView::new(Some(&done), Some(&job(1)));
        assert!(view.current.is_none() && view.cancel.is_none());
        let failed = deployment(1, DeploymentStatus::Failed);
        let view = DeploymentView::new(Some(&failed), Some(&job(1)));
        assert!(view.halted());
    }

    #[test]
    fn the_limit_counts_unhealthy_and_pending_allocations() {
        let current = deployment(1, DeploymentStatus::Running);
        let view = DeploymentView::new(Some(&current), Some(&job(1)));
        let strategy = UpdateStrategy {
            max_parallel: 2,
            ..UpdateStrategy::default()
        };
        let alloc = |healthy: Option<bool>| {
            Arc::new(Allocation {
                deployment_id: Some(current.id.clone()),
                deployment_status: healthy.map(|healthy| AllocDeploymentStatus {
                    healthy: Some(healthy),
                    ..AllocDeploymentStatus::default()
                }),
                ..Allocation::default()
            })
        };
        let healthy = alloc(Some(true));
        let pending = alloc(None);
        let unhealthy = alloc(Some(false));
        let failed_unhealthy = Arc::new(Allocation {
            client_status: crate::structs::AllocClientStatus::Failed,
            ..(*alloc(Some(false))).clone()
        });
        assert_eq!(view.update_limit(&strategy, &[&failed_unhealthy], false), 0);
        assert_eq!(view.update_limit(&strategy, &[&healthy], false), 2);
        assert_eq!(
            view.update_limit(&strategy, &[&healthy, &pending], false),
            1
        );
        assert_eq!(
            view.update_limit(&strategy, &[&pending, &pending], false),
            0
        );
        assert_eq!(view.update_limit(&strategy, &[&unhealthy], false), 0);
        assert_eq!(view.update_limit(&strategy, &[&healthy], true), 0);
    }
}
