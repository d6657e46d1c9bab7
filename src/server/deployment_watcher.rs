//! The deployment watcher: the leader's loop that moves running deployments along.
//!
//! The counters of each deployment's groups (placed, healthy, unhealthy, the progress deadline)
//! are kept by the state itself as allocations are placed and report health. Every tick the
//! watcher looks at the active deployments and, for each running one:
//!
//! ```text
//! an unhealthy allocation ──────────────► failed "Failed due to unhealthy allocations"
//! a group past RequireProgressBy ───────► failed "Failed due to progress deadline"
//!   (failed + auto_revert: the latest stable version is registered again)
//! canaries healthy + auto_promote ──────► promoted
//! canaries waiting ─────────────────────► "Deployment is running but requires manual promotion"
//! every group healthy, none waiting ────► successful, the job version marked stable
//! more allocations healthy than seen ───► an evaluation, to place the next batch
//! ```
//!
//! Started with leadership and stopped with it (`leader.rs`): dropping the [`WatcherGuard`]
//! aborts the loop.
//!
//! Nomad: `nomad/deploymentwatcher/deployment_watcher.go` (`watch`, `shouldFail`,
//! `getDeploymentProgressCutoff`, `autoPromoteDeployment`, `createBatchedUpdate`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::Server;
use super::deployments::deployment_eval;
use super::raft::Command;
use crate::structs::{
    AllocDeploymentStatus, Deployment, DeploymentId, DeploymentStatus, DeploymentStatusUpdate,
    deployment_descriptions,
};

/// How often running deployments are looked at.
const TICK: Duration = Duration::from_millis(200);

/// Stops the watcher when dropped.
pub(super) struct WatcherGuard(tokio::task::JoinHandle<()>);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the watcher for as long as the guard lives.
pub(super) fn start(server: Arc<Server>) -> WatcherGuard {
    WatcherGuard(tokio::spawn(run(server)))
}

async fn run(server: Arc<Server>) {
    // Healthy allocations per deployment when it was last moved on.
    let mut seen: HashMap<DeploymentId, i32> = HashMap::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let snapshot = server.store.snapshot();
        let active: Vec<Arc<Deployment>> = snapshot
            .deployments_with_prefix("")
            .filter(|deployment| deployment.status.is_active())
            .cloned()
            .collect();
        seen.retain(|id, _| active.iter().any(|deployment| &deployment.id == id));
        let now = super::now_unix_nanos();
        for deployment in active {
            if deployment.status != DeploymentStatus::Running {
                continue;
            }
            let healthy_canaries = |group: &str| {
                deployment.task_groups.get(group).map_or(0, |state| {
                    state
                        .placed_canaries
                        .iter()
                        .filter_map(|id| snapshot.alloc(&id.as_str().into()))
                        .filter(|alloc| {
                            AllocDeploymentStatus::is_healthy(alloc.deployment_status.as_ref())
                        })
                        .count()
                })
            };
            let action = decide(&deployment, now, &healthy_canaries);
            if let Err(error) = act(&server, &deployment, action, &mut seen).await {
                tracing::warn!(deployment_id = %deployment.id, error = %error, "deployment watcher");
            }
        }
    }
}

/// What a running deployment needs now.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Fail(&'static str),
    Promote,
    Describe(&'static str),
    Succeed,
    /// Nothing to decide; maybe new healthy allocations to schedule after.
    Progress,
}

/// Nomad's `shouldFail`, the progress cut-off, auto-promotion and completion, over one deployment.
fn decide(deployment: &Deployment, now: i64, healthy_canaries: &dyn Fn(&str) -> usize) -> Action {
    if deployment
        .task_groups
        .values()
        .any(|state| state.unhealthy_allocs > 0)
    {
        return Action::Fail(deployment_descriptions::FAILED_ALLOCATIONS);
    }
    let past_deadline = deployment.task_groups.values().any(|state| {
        let done = state.healthy_allocs >= state.desired_total
            && (state.desired_canaries == 0 || state.promoted);
        !done
            && state
                .require_progress_by
                .as_deref()
                .and_then(|by| humantime::parse_rfc3339(by).ok())
                .and_then(|by| by.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|by| i64::try_from(by.as_nanos()).ok())
                .is_some_and(|by| now > by)
    });
    if past_deadline {
        return Action::Fail(deployment_descriptions::PROGRESS_DEADLINE);
    }
    if deployment.requires_promotion() {
        let waiting: Vec<(&String, _)> = deployment
            .task_groups
            .iter()
            .filter(|(_, state)| state.desired_canaries > 0 && !state.promoted)
            .collect();
        let auto = waiting.iter().all(|(_, state)| state.auto_promote);
        let ready = waiting.iter().all(|(name, state)| {
            healthy_canaries(name) >= usize::try_from(state.desired_canaries).unwrap_or(0)
        });
        if auto && ready {
            return Action::Promote;
        }
        let description = if auto {
            deployment_descriptions::RUNNING_AUTO_PROMOTION
        } else {
            deployment_descriptions::RUNNING_NEEDS_PROMOTION
        };
        if deployment.status_description != description {
            return Action::Describe(description);
        }
        return Action::Progress;
    }
    if deployment
        .task_groups
        .values()
        .all(|state| state.healthy_allocs >= state.desired_total)
    {
        return Action::Succeed;
    }
    Action::Progress
}

async fn act(
    server: &Arc<Server>,
    deployment: &Deployment,
    action: Action,
    seen: &mut HashMap<DeploymentId, i32>,
) -> Result<(), super::endpoints::ServerError> {
    match action {
        Action::Fail(description) => {
            tracing::info!(deployment_id = %deployment.id, description, "deployment failed");
            server.fail_deployment(deployment, description).await?;
        }
        Action::Promote => {
            tracing::info!(deployment_id = %deployment.id, "auto-promoting deployment");
            server
                .deployment_promote(&deployment.id, Vec::new())
                .await?;
        }
        Action::Describe(description) => {
            server
                .write(Command::DeploymentUpdate {
                    update: DeploymentStatusUpdate {
                        deployment_id: deployment.id.clone(),
                        status: DeploymentStatus::Running,
                        status_description: description.to_owned(),
                    },
                    eval: None,
                })
                .await?;
        }
        Action::Succeed => {
            tracing::info!(deployment_id = %deployment.id, "deployment successful");
            server
                .write(Command::DeploymentUpdate {
                    update: DeploymentStatusUpdate {
                        deployment_id: deployment.id.clone(),
                        status: DeploymentStatus::Successful,
                        status_description: deployment_descriptions::SUCCESSFUL.to_owned(),
                    },
                    eval: None,
                })
                .await?;
            server
                .job_stability(
                    &deployment.namespace,
                    &deployment.job_id,
                    deployment.job_version,
                    true,
                )
                .await?;
        }
        Action::Progress => {
            let healthy: i32 = deployment
                .task_groups
                .values()
                .map(|state| state.healthy_allocs)
                .sum();
            let last = seen.insert(deployment.id.clone(), healthy);
            if healthy > 0 && last != Some(healthy) {
                let snapshot = server.store.snapshot();
                let Some(job) = snapshot.job(&deployment.namespace, &deployment.job_id) else {
                    return Ok(());
                };
                let eval = deployment_eval(&job, &deployment.id, super::now_unix_nanos());
                server
                    .write(Command::EvalUpdate { evals: vec![eval] })
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::DeploymentState;

    fn deployment(states: &[DeploymentState]) -> Deployment {
        Deployment {
            task_groups: states
                .iter()
                .enumerate()
                .map(|(idx, state)| (format!("g{idx}"), state.clone()))
                .collect(),
            ..Deployment::default()
        }
    }

    const NOW: i64 = 1_800_000_000_000_000_000;

    #[test]
    fn unhealthy_allocations_and_deadlines_fail_it() {
        let none = |_: &str| 0;
        let unhealthy = deployment(&[DeploymentState {
            desired_total: 2,
            unhealthy_allocs: 1,
            ..DeploymentState::default()
        }]);
        assert_eq!(
            decide(&unhealthy, NOW, &none),
            Action::Fail(deployment_descriptions::FAILED_ALLOCATIONS)
        );
        let by = super::super::state::rfc3339_of(NOW - 1);
        let late = deployment(&[DeploymentState {
            desired_total: 2,
            healthy_allocs: 1,
            require_progress_by: Some(by.clone()),
            ..DeploymentState::default()
        }]);
        assert_eq!(
            decide(&late, NOW, &none),
            Action::Fail(deployment_descriptions::PROGRESS_DEADLINE)
        );
        assert_eq!(decide(&late, NOW - 2, &none), Action::Progress);
        let done_late = deployment(&[DeploymentState {
            desired_total: 2,
            healthy_allocs: 2,
            require_progress_by: Some(by),
            ..DeploymentState::default()
        }]);
        assert_eq!(decide(&done_late, NOW, &none), Action::Succeed);
    }

    #[test]
    fn canaries_wait_for_promotion_or_promote_themselves() {
        let canary = DeploymentState {
            desired_total: 3,
            desired_canaries: 1,
            healthy_allocs: 1,
            ..DeploymentState::default()
        };
        let manual = deployment(std::slice::from_ref(&canary));
        assert_eq!(
            decide(&manual, NOW, &|_| 1),
            Action::Describe(deployment_descriptions::RUNNING_NEEDS_PROMOTION)
        );
        let auto = deployment(&[DeploymentState {
            auto_promote: true,
            ..canary.clone()
        }]);
        assert_eq!(
            decide(&auto, NOW, &|_| 0),
            Action::Describe(deployment_descriptions::RUNNING_AUTO_PROMOTION)
        );
        assert_eq!(decide(&auto, NOW, &|_| 1), Action::Promote);
        let promoted = deployment(&[DeploymentState {
            promoted: true,
            healthy_allocs: 3,
            ..canary
        }]);
        assert_eq!(decide(&promoted, NOW, &|_| 1), Action::Succeed);
    }
}
