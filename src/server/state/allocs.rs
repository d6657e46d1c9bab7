//! The allocations table and its indexes by job and by node; plan commits and client updates.
//!
//! Nomad: `nomad/state/state_store.go` `UpsertPlanResults`, `upsertAllocsImpl`,
//! `UpdateAllocsFromClient`, `updateSummaryWithAlloc`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::apply::ApplyEffects;
use super::events::{Event, EventPayload, Topic};
use super::tables::{Tables, job_key};
use crate::server::raft::{AllocClientUpdate, PlanApplyRequest};
use crate::structs::{
    AllocClientStatus, AllocId, Allocation, DesiredTransition, NodeId, TaskGroupSummary,
};

/// The summary bucket an allocation's client status counts in.
fn summary_bucket(summary: &mut TaskGroupSummary, status: AllocClientStatus) -> &mut u64 {
    match status {
        AllocClientStatus::Pending => &mut summary.starting,
        AllocClientStatus::Running => &mut summary.running,
        AllocClientStatus::Complete => &mut summary.complete,
        AllocClientStatus::Failed => &mut summary.failed,
        AllocClientStatus::Lost => &mut summary.lost,
        AllocClientStatus::Unknown => &mut summary.unknown,
    }
}

impl Tables {
    /// Writes one allocation into the table and both indexes, keeping the job summary's counts.
    pub(super) fn upsert_alloc(
        &mut self,
        index: u64,
        alloc: Arc<Allocation>,
        event_type: &'static str,
        effects: &mut ApplyEffects,
    ) {
        let key = job_key(&alloc.namespace, &alloc.job_id);
        let previous = self.allocs.insert(alloc.id.clone(), alloc.clone());
        // The node's watch moves on a server-side change only: new, moved, or a new
        // AllocModifyIndex. A client's own status update would only echo back to it.
        match &previous {
            Some(previous) if previous.node_id != alloc.node_id => {
                self.bump_node_allocs(index, &previous.node_id, effects);
                self.bump_node_allocs(index, &alloc.node_id, effects);
            }
            Some(previous) if previous.alloc_modify_index == alloc.alloc_modify_index => {}
            _ => self.bump_node_allocs(index, &alloc.node_id, effects),
        }
        let previous_status = previous.as_ref().map(|previous| previous.client_status);
        if previous_status != Some(alloc.client_status) {
            let new_status = alloc.client_status;
            self.change_summary(index, &key, &alloc.task_group, |summary| {
                match previous_status {
                    Some(old_status) => {
                        let bucket = summary_bucket(summary, old_status);
                        *bucket = bucket.saturating_sub(1);
                    }
                    None => summary.queued = summary.queued.saturating_sub(1),
                }
                *summary_bucket(summary, new_status) += 1;
            });
        }
        self.update_node_usage(previous.as_deref(), Some(&alloc));
        let was_live = previous
            .as_ref()
            .is_some_and(|previous| !previous.is_terminal());
        if was_live && alloc.is_terminal() {
            effects.capacity_changed = true;
        }
        if alloc.is_client_terminal() {
            self.delete_alloc_services(index, &alloc.id);
        }
        if let Some(by_job) = self.allocs_by_job.get_mut(&key) {
            by_job.insert(alloc.id.clone(), alloc.clone());
        } else {
            self.allocs_by_job.insert(
                key.clone(),
                imbl::OrdMap::unit(alloc.id.clone(), alloc.clone()),
            );
        }
        if let Some(previous) = &previous
            && previous.node_id != alloc.node_id
            && let Some(by_node) = self.allocs_by_node.get_mut(&previous.node_id)
        {
            by_node.remove(&alloc.id);
        }
        if let Some(by_node) = self.allocs_by_node.get_mut(&alloc.node_id) {
            by_node.insert(alloc.id.clone(), alloc.clone());
        } else {
            self.allocs_by_node.insert(
                alloc.node_id.clone(),
                imbl::OrdMap::unit(alloc.id.clone(), alloc.clone()),
            );
        }
        self.indexes.allocs = index;
        effects.touched_jobs.insert(key);
        effects.event(|| Event {
            topic: Topic::Allocation,
            event_type: event_type.into(),
            key: alloc.id.to_string(),
            namespace: alloc.namespace.clone(),
            index,
            payload: EventPayload::Allocation(alloc.clone()),
        });
    }

    /// Records a server-side change to `node_id`'s allocations: its watch moves to `index`.
    fn bump_node_allocs(&mut self, index: u64, node_id: &NodeId, effects: &mut ApplyEffects) {
        self.node_alloc_index.insert(node_id.clone(), index);
        effects.alloc_nodes.insert(node_id.clone());
    }

    /// Moves a node's usage from `previous` (if it was live) to `current` (if it is live).
    pub(super) fn update_node_usage(
        &mut self,
        previous: Option<&Allocation>,
        current: Option<&Allocation>,
    ) {
        let previous = previous.filter(|alloc| !alloc.is_terminal());
        let current = current.filter(|alloc| !alloc.is_terminal());
        if previous.is_none() && current.is_none() {
            return;
        }
        for (alloc, adding) in [(previous, false), (current, true)] {
            let Some(alloc) = alloc else {
                continue;
            };
            // Copied only if a snapshot still shares it.
            if !self.node_usage.contains_key(&alloc.node_id) {
                self.node_usage
                    .insert(alloc.node_id.clone(), Arc::default());
            }
            let usage = self.node_usage.get_mut(&alloc.node_id);
            let usage = Arc::make_mut(usage.expect("the node's usage is inserted above"));
            if adding {
                usage.add(alloc);
            } else {
                usage.remove(alloc);
            }
        }
    }

    pub(super) fn delete_alloc(
        &mut self,
        index: u64,
        alloc_id: &AllocId,
        effects: &mut ApplyEffects,
    ) {
        let Some(alloc) = self.allocs.remove(alloc_id) else {
            return;
        };
        self.delete_alloc_services(index, alloc_id);
        self.update_node_usage(Some(&alloc), None);
        self.bump_node_allocs(index, &alloc.node_id, effects);
        let key = job_key(&alloc.namespace, &alloc.job_id);
        if let Some(by_job) = self.allocs_by_job.get_mut(&key) {
            by_job.remove(alloc_id);
            if by_job.is_empty() {
                self.allocs_by_job.remove(&key);
            }
        }
        if let Some(by_node) = self.allocs_by_node.get_mut(&alloc.node_id) {
            by_node.remove(alloc_id);
            if by_node.is_empty() {
                self.allocs_by_node.remove(&alloc.node_id);
            }
        }
        self.indexes.allocs = index;
    }

    pub(super) fn apply_plan(
        &mut self,
        index: u64,
        request: &PlanApplyRequest,
        effects: &mut ApplyEffects,
    ) {
        if let Some(deployment) = &request.deployment {
            self.create_deployment(index, deployment.clone(), request.now, effects);
        }
        for update in &request.deployment_updates {
            // A deployment the plan refers to may have been garbage-collected meanwhile.
            let _ = self.apply_deployment_update(index, update, effects);
        }
        for stop in &request.stopped {
            let Some(existing) = self.allocs.get(&stop.id) else {
                continue;
            };
            let mut stopped = (**existing).clone();
            stopped.desired_status = stop.desired_status;
            stopped.desired_description = stop.desired_description.clone();
            if stop.client_status != existing.client_status
                && matches!(
                    stop.client_status,
                    AllocClientStatus::Lost | AllocClientStatus::Unknown
                )
            {
                stopped.client_status = stop.client_status;
            }
            if stop.followup_eval_id.is_some() {
                stopped.followup_eval_id = stop.followup_eval_id.clone();
            }
            stopped.modify_index = index;
            stopped.alloc_modify_index = index;
            stopped.modify_time = request.now;
            self.upsert_alloc(index, Arc::new(stopped), "AllocationUpdated", effects);
        }
        for placed in &request.placed {
            // The entry is shared (log cache, plan result): the table gets its own copy.
            let mut alloc = (**placed).clone();
            if alloc.job.is_none() {
                alloc.job = request.job.clone();
            }
            match self.allocs.get(&alloc.id) {
                Some(existing) => {
                    // An in-place update: the client's view of the allocation stays.
                    alloc.create_index = existing.create_index;
                    alloc.create_time = existing.create_time;
                    alloc.client_status = existing.client_status;
                    alloc.client_description = existing.client_description.clone();
                    alloc.task_states = existing.task_states.clone();
                    // Moved into a new deployment, it counts there as placed (Nomad:
                    // `updateDeploymentWithAlloc`).
                    if alloc.deployment_id.is_some()
                        && alloc.deployment_id != existing.deployment_id
                    {
                        self.count_placed(index, &alloc, effects);
                    }
                }
                None => {
                    alloc.create_index = index;
                    if alloc.create_time == 0 {
                        alloc.create_time = request.now;
                    }
                    self.count_placed(index, &alloc, effects);
                }
            }
            alloc.modify_index = index;
            alloc.alloc_modify_index = index;
            alloc.modify_time = request.now;
            // The previous allocation of a rescheduled or replaced one records its successor.
            if let Some(previous_id) = &alloc.previous_allocation
                && let Some(previous) = self.allocs.get(previous_id)
                && previous.next_allocation.as_ref() != Some(&alloc.id)
            {
                let mut previous = (**previous).clone();
                previous.next_allocation = Some(alloc.id.clone());
                previous.modify_index = index;
                self.upsert_alloc(index, Arc::new(previous), "AllocationUpdated", effects);
            }
            self.upsert_alloc(index, Arc::new(alloc), "PlanResult", effects);
        }
    }

    pub(super) fn apply_alloc_client_update(
        &mut self,
        index: u64,
        updates: &[AllocClientUpdate],
        effects: &mut ApplyEffects,
    ) {
        for update in updates {
            let Some(existing) = self.allocs.get(&update.id) else {
                continue;
            };
            let mut alloc = (**existing).clone();
            let was_client_terminal = alloc.is_client_terminal();
            alloc.client_status = update.client_status;
            alloc.client_description = update.client_description.clone();
            if !update.task_states.is_empty() {
                alloc.task_states = update.task_states.clone();
            }
            // Health is decided once per allocation, and counted in the deployment the servers
            // placed it in, never one the client names; outside a deployment it tells the node
            // drainer the allocation is healthy.
            let decided = alloc
                .deployment_status
                .as_ref()
                .is_some_and(|status| status.healthy.is_some());
            if let Some(healthy) = update.deployment_healthy
                && !decided
            {
                let mut status = alloc.deployment_status.clone().unwrap_or_default();
                status.healthy = Some(healthy);
                status.timestamp = Some(super::deployments::rfc3339_of(update.modify_time));
                status.modify_index = index;
                alloc.deployment_status = Some(status);
                self.count_health(index, &alloc, healthy, update.modify_time, effects);
            }
            alloc.modify_index = index;
            alloc.modify_time = update.modify_time;
            if !was_client_terminal && alloc.is_client_terminal() {
                effects.capacity_changed = true;
            }
            self.upsert_alloc(index, Arc::new(alloc), "AllocationUpdated", effects);
        }
    }

    pub(super) fn apply_alloc_desired_transition(
        &mut self,
        index: u64,
        transitions: &BTreeMap<AllocId, DesiredTransition>,
        effects: &mut ApplyEffects,
    ) {
        for (alloc_id, transition) in transitions {
            let Some(existing) = self.allocs.get(alloc_id) else {
                continue;
            };
            let mut alloc = (**existing).clone();
            let merged = &mut alloc.desired_transition;
            if transition.migrate.is_some() {
                merged.migrate = transition.migrate;
            }
            if transition.reschedule.is_some() {
                merged.reschedule = transition.reschedule;
            }
            if transition.force_reschedule.is_some() {
                merged.force_reschedule = transition.force_reschedule;
            }
            alloc.modify_index = index;
            self.upsert_alloc(
                index,
                Arc::new(alloc),
                "AllocationUpdateDesiredStatus",
                effects,
            );
        }
    }
}
