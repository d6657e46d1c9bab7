//! The deployments table and its index by job.
//!
//! Nomad: `nomad/state/state_store.go` `upsertDeploymentImpl`, `UpdateDeploymentStatus`.

use std::sync::Arc;

use super::apply::ApplyEffects;
use super::error::{ApplyError, ObjectKind};
use super::events::{Event, EventPayload, Topic};
use super::tables::{Tables, job_key};
use crate::structs::{
    AllocDeploymentStatus, Allocation, Deployment, DeploymentId, DeploymentStatusUpdate,
};

impl Tables {
    /// Removes a finished deployment (garbage collection); an active one stays.
    pub(super) fn delete_deployment(
        &mut self,
        index: u64,
        deployment_id: &DeploymentId,
        effects: &mut ApplyEffects,
    ) {
        let Some(deployment) = self.deployments.get(deployment_id).cloned() else {
            return;
        };
        if deployment.status.is_active() {
            return;
        }
        self.deployments.remove(deployment_id);
        let key = job_key(&deployment.namespace, &deployment.job_id);
        if let Some(by_job) = self.deployments_by_job.get_mut(&key) {
            by_job.remove(deployment_id);
            if by_job.is_empty() {
                self.deployments_by_job.remove(&key);
            }
        }
        self.indexes.deployments = index;
        effects.event(|| Event {
            topic: Topic::Deployment,
            event_type: "DeploymentDeleted".into(),
            key: deployment.id.to_string(),
            namespace: deployment.namespace.clone(),
            index,
            payload: EventPayload::Deployment(deployment.clone()),
        });
    }

    pub(super) fn upsert_deployment(
        &mut self,
        index: u64,
        mut deployment: Deployment,
        effects: &mut ApplyEffects,
    ) {
        match self.deployments.get(&deployment.id) {
            Some(existing) => deployment.create_index = existing.create_index,
            None => deployment.create_index = index,
        }
        deployment.modify_index = index;
        let key = job_key(&deployment.namespace, &deployment.job_id);
        let deployment = Arc::new(deployment);
        self.deployments
            .insert(deployment.id.clone(), deployment.clone());
        if let Some(by_job) = self.deployments_by_job.get_mut(&key) {
            by_job.insert(deployment.id.clone(), deployment.clone());
        } else {
            self.deployments_by_job.insert(
                key,
                imbl::OrdMap::unit(deployment.id.clone(), deployment.clone()),
            );
        }
        self.indexes.deployments = index;
        effects.event(|| Event {
            topic: Topic::Deployment,
            event_type: "DeploymentStatusUpdate".into(),
            key: deployment.id.to_string(),
            namespace: deployment.namespace.clone(),
            index,
            payload: EventPayload::Deployment(deployment.clone()),
        });
    }

    pub(super) fn apply_deployment_update(
        &mut self,
        index: u64,
        update: &DeploymentStatusUpdate,
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        let Some(existing) = self.deployments.get(&update.deployment_id) else {
            return Err(ApplyError::not_found(
                ObjectKind::Deployment,
                &update.deployment_id.0,
            ));
        };
        let mut deployment = (**existing).clone();
        deployment.status = update.status;
        deployment.status_description = update.status_description.clone();
        self.upsert_deployment(index, deployment, effects);
        Ok(())
    }
}

/// RFC 3339 of a Unix-nanosecond time (apply is deterministic: the time comes in the command).
pub(crate) fn rfc3339_of(unix_nanos: i64) -> String {
    let nanos = u64::try_from(unix_nanos).unwrap_or(0);
    humantime::format_rfc3339_nanos(
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(nanos),
    )
    .to_string()
}

impl Tables {
    /// Applies `change` to a stored deployment; a deployment gone meanwhile is skipped.
    pub(super) fn change_deployment(
        &mut self,
        index: u64,
        deployment_id: &DeploymentId,
        effects: &mut ApplyEffects,
        change: impl FnOnce(&mut Deployment),
    ) -> Result<(), ApplyError> {
        let Some(existing) = self.deployments.get(deployment_id) else {
            return Err(ApplyError::not_found(
                ObjectKind::Deployment,
                &deployment_id.0,
            ));
        };
        let mut deployment = (**existing).clone();
        change(&mut deployment);
        self.upsert_deployment(index, deployment, effects);
        Ok(())
    }

    /// A new deployment from a plan: each group must make progress by `now` plus its deadline.
    pub(super) fn create_deployment(
        &mut self,
        index: u64,
        mut deployment: Deployment,
        now: i64,
        effects: &mut ApplyEffects,
    ) {
        for state in deployment.task_groups.values_mut() {
            if state.progress_deadline > 0 && state.require_progress_by.is_none() {
                state.require_progress_by =
                    Some(rfc3339_of(now.saturating_add(state.progress_deadline)));
            }
        }
        self.upsert_deployment(index, deployment, effects);
    }

    /// A new allocation joins its deployment (Nomad: `updateDeploymentWithAlloc`, placed).
    pub(super) fn count_placed(
        &mut self,
        index: u64,
        alloc: &Allocation,
        effects: &mut ApplyEffects,
    ) {
        let Some(deployment_id) = &alloc.deployment_id else {
            return;
        };
        let canary = AllocDeploymentStatus::is_canary(alloc.deployment_status.as_ref());
        let _ = self.change_deployment(index, deployment_id, effects, |deployment| {
            if let Some(state) = deployment.task_groups.get_mut(&alloc.task_group) {
                state.placed_allocs += 1;
                if canary {
                    state.placed_canaries.push(alloc.id.to_string());
                }
            }
        });
    }

    /// An allocation's health is decided (Nomad: `updateDeploymentWithAlloc`, health): the
    /// group's counters move and a healthy one pushes the progress deadline on.
    pub(super) fn count_health(
        &mut self,
        index: u64,
        alloc: &Allocation,
        healthy: bool,
        now: i64,
        effects: &mut ApplyEffects,
    ) {
        let Some(deployment_id) = &alloc.deployment_id else {
            return;
        };
        let _ = self.change_deployment(index, deployment_id, effects, |deployment| {
            if let Some(state) = deployment.task_groups.get_mut(&alloc.task_group) {
                if healthy {
                    state.healthy_allocs += 1;
                    if state.progress_deadline > 0 {
                        state.require_progress_by =
                            Some(rfc3339_of(now.saturating_add(state.progress_deadline)));
                    }
                } else {
                    state.unhealthy_allocs += 1;
                }
            }
        });
    }

    /// Sets one allocation's health as the operator asks (manual health); an allocation not in
    /// `deployment_id`, gone, or already judged is left as it is.
    pub(super) fn set_alloc_health(
        &mut self,
        index: u64,
        deployment_id: &DeploymentId,
        alloc_id: &crate::structs::AllocId,
        healthy: bool,
        now: i64,
        effects: &mut ApplyEffects,
    ) {
        let Some(existing) = self.allocs.get(alloc_id) else {
            return;
        };
        let decided = existing
            .deployment_status
            .as_ref()
            .is_some_and(|status| status.healthy.is_some());
        if existing.deployment_id.as_ref() != Some(deployment_id) || decided {
            return;
        }
        let mut alloc = (**existing).clone();
        let mut status = alloc.deployment_status.clone().unwrap_or_default();
        status.healthy = Some(healthy);
        status.timestamp = Some(rfc3339_of(now));
        status.modify_index = index;
        alloc.deployment_status = Some(status);
        alloc.modify_index = index;
        self.count_health(index, &alloc, healthy, now, effects);
        self.upsert_alloc(index, Arc::new(alloc), "AllocationUpdated", effects);
    }

    /// Promotes the canaries of `groups` (every group when empty).
    pub(super) fn apply_deployment_promote(
        &mut self,
        index: u64,
        deployment_id: &DeploymentId,
        groups: &[String],
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        self.change_deployment(index, deployment_id, effects, |deployment| {
            for (name, state) in &mut deployment.task_groups {
                if groups.is_empty() || groups.contains(name) {
                    state.promoted = true;
                }
            }
            if deployment.status == crate::structs::DeploymentStatus::Running {
                deployment.status_description =
                    crate::structs::deployment_descriptions::RUNNING.to_owned();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::StateStore;
    use crate::server::raft::{AllocClientUpdate, Command, PlanApplyRequest};
    use crate::structs::{
        AllocDeploymentStatus, AllocId, Allocation, Deployment, DeploymentId, DeploymentState, Job,
        JobId, TaskGroup,
    };

    const SECOND: i64 = 1_000_000_000;

    fn alloc(id: &str, canary: bool) -> Arc<Allocation> {
        Arc::new(Allocation {
            id: AllocId::from(id),
            namespace: "default".to_owned(),
            job_id: JobId::from("web"),
            task_group: "web".to_owned(),
            deployment_id: Some(DeploymentId::from("d1")),
            deployment_status: canary.then(|| AllocDeploymentStatus {
                canary: true,
                ..AllocDeploymentStatus::default()
            }),
            ..Allocation::default()
        })
    }

    fn health(id: &str, healthy: bool, at: i64) -> Command {
        Command::AllocClientUpdate {
            updates: vec![AllocClientUpdate {
                id: AllocId::from(id),
                deployment_healthy: Some(healthy),
                modify_time: at,
                ..AllocClientUpdate::default()
            }],
            evals: Vec::new(),
        }
    }

    #[test]
    fn placements_and_reported_health_move_the_groups_counters() {
        let store = StateStore::new();
        let job = Arc::new(Job {
            id: JobId::from("web"),
            namespace: "default".to_owned(),
            task_groups: vec![TaskGroup {
                name: "web".to_owned(),
                count: 2,
                ..TaskGroup::default()
            }],
            ..Job::default()
        });
        let deployment = Deployment {
            id: DeploymentId::from("d1"),
            namespace: "default".to_owned(),
            job_id: JobId::from("web"),
            task_groups: [(
                "web".to_owned(),
                DeploymentState {
                    desired_total: 2,
                    progress_deadline: 60 * SECOND,
                    ..DeploymentState::default()
                },
            )]
            .into_iter()
            .collect(),
            ..Deployment::default()
        };
        let commands = [
            Command::JobRegister {
                job: job.clone(),
                enforce_index: None,
                eval: None,
            },
            Command::PlanApply(Arc::new(PlanApplyRequest {
                job: Some(job),
                placed: vec![alloc("a1", true), alloc("a2", false)],
                deployment: Some(deployment),
                now: 10 * SECOND,
                ..PlanApplyRequest::default()
            })),
            health("a1", true, 20 * SECOND),
            // Decided once: a second report changes nothing.
            health("a1", false, 21 * SECOND),
            health("a2", false, 22 * SECOND),
        ];
        for (idx, command) in commands.iter().enumerate() {
            let (response, _) = store.apply(idx as u64 + 1, command);
            assert!(response.error.is_none(), "{response:?}");
        }
        let snapshot = store.snapshot();
        let stored = snapshot
            .deployment(&DeploymentId::from("d1"))
            .expect("deployment");
        let state = &stored.task_groups["web"];
        assert_eq!(state.placed_allocs, 2);
        assert_eq!(state.placed_canaries, ["a1"]);
        assert_eq!(state.healthy_allocs, 1);
        assert_eq!(state.unhealthy_allocs, 1);
        assert_eq!(
            state.require_progress_by.as_deref(),
            Some(super::rfc3339_of(80 * SECOND).as_str()),
            "a healthy allocation pushes the deadline to its time plus progress_deadline"
        );
        let a1 = snapshot.alloc(&AllocId::from("a1")).expect("a1");
        let status = a1.deployment_status.as_ref().expect("status");
        assert_eq!(status.healthy, Some(true));
        assert!(status.canary);
        assert_eq!(
            status.timestamp.as_deref(),
            Some(super::rfc3339_of(20 * SECOND).as_str())
        );
    }

    #[test]
    fn an_in_place_update_into_a_new_deployment_counts_as_placed_there_once() {
        let store = StateStore::new();
        let job = Arc::new(Job {
            id: JobId::from("web"),
            namespace: "default".to_owned(),
            task_groups: vec![TaskGroup {
                name: "web".to_owned(),
                count: 1,
                ..TaskGroup::default()
            }],
            ..Job::default()
        });
        let deployment = |id: &str| Deployment {
            id: DeploymentId::from(id),
            namespace: "default".to_owned(),
            job_id: JobId::from("web"),
            task_groups: [("web".to_owned(), DeploymentState::default())]
                .into_iter()
                .collect(),
            ..Deployment::default()
        };
        let mut moved = (*alloc("a1", false)).clone();
        moved.deployment_id = Some(DeploymentId::from("d2"));
        let commands = [
            Command::JobRegister {
                job: job.clone(),
                enforce_index: None,
                eval: None,
            },
            Command::PlanApply(Arc::new(PlanApplyRequest {
                job: Some(job.clone()),
                placed: vec![alloc("a1", false)],
                deployment: Some(deployment("d1")),
                ..PlanApplyRequest::default()
            })),
            // Updated in place within its deployment: not placed again.
            Command::PlanApply(Arc::new(PlanApplyRequest {
                job: Some(job.clone()),
                placed: vec![alloc("a1", false)],
                ..PlanApplyRequest::default()
            })),
            Command::PlanApply(Arc::new(PlanApplyRequest {
                job: Some(job),
                placed: vec![Arc::new(moved)],
                deployment: Some(deployment("d2")),
                ..PlanApplyRequest::default()
            })),
        ];
        for (idx, command) in commands.iter().enumerate() {
            let (response, _) = store.apply(idx as u64 + 1, command);
            assert!(response.error.is_none(), "{response:?}");
        }
        let snapshot = store.snapshot();
        let placed = |id: &str| {
            snapshot
                .deployment(&DeploymentId::from(id))
                .expect("deployment")
                .task_groups["web"]
                .placed_allocs
        };
        assert_eq!(placed("d1"), 1);
        assert_eq!(placed("d2"), 1);
    }
}
