//! The node reconciler: system and sysbatch jobs, one allocation per group on every eligible node.
//!
//! ```text
//! job stopped or group removed ───────────────► stop
//! node lost ──────────────────────────────────► stop as lost (not replaced elsewhere)
//! node disconnected, in the group's window ───► running ones marked unknown, all kept (they
//!                                               resume when the client is back; past the
//!                                               window they are lost)
//! node draining, marked to migrate ───────────► stop (unmarked: kept)
//! node no longer in the job's datacenters/pool► stop
//! node ineligible (but ready) ─────────────────► keep, place nothing new
//! two live allocations of a group on a node ──► stop the extra
//! older job version ──────────────────────────► destructive update or in-place candidate
//! eligible node without a live allocation ────► place (system: a failed one is replaced;
//!                                               sysbatch: a finished one is left done)
//! ```
//! Whether a node's constraints and resources admit a placement is the scheduler's business:
//! the reconciler proposes one per eligible node.
//!
//! Nomad: `scheduler/reconciler/reconcile_node.go` `Node`, `computeUpdates`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::descriptions::{ALLOC_LOST, ALLOC_NODE_TAINTED, ALLOC_NOT_NEEDED};
use super::update::tasks_updated;
use super::{
    AllocPlacement, AllocStop, NodeTaint, ReconcileResults, destructive_placement,
    runs_older_version, within,
};
use crate::structs::{AllocClientStatus, AllocDesiredStatus, AllocId, Allocation, Job, NodeId};

pub struct NodeInput<'a> {
    pub job: Option<&'a Arc<Job>>,
    pub allocs: &'a [Arc<Allocation>],
    /// Nodes new allocations may go to (ready, eligible, in the job's datacenters and pool), in
    /// the order placements should be made.
    pub eligible: &'a [NodeId],
    /// Ready nodes in the job's datacenters and pool that are merely ineligible: keep what runs.
    pub ineligible: &'a HashSet<NodeId>,
    pub tainted: &'a HashMap<NodeId, NodeTaint>,
    /// The scheduler's now (Unix nanoseconds), for disconnect windows.
    pub now: i64,
}

pub fn reconcile_nodes(input: &NodeInput<'_>) -> ReconcileResults {
    let mut results = ReconcileResults::default();
    let live_job = input.job.filter(|job| !job.stop);
    let stop = |results: &mut ReconcileResults, alloc: &Arc<Allocation>, description| {
        let lost = super::node_loses_allocs(input.tainted, &alloc.node_id);
        results.stop.push(AllocStop {
            alloc: alloc.clone(),
            description: if lost { ALLOC_LOST } else { description },
            client_status: lost.then_some(AllocClientStatus::Lost),
        });
    };
    let Some(job) = live_job else {
        for alloc in input.allocs.iter().filter(|alloc| !alloc.is_terminal()) {
            stop(&mut results, alloc, ALLOC_NOT_NEEDED);
        }
        return results;
    };
    let eligible: HashSet<&NodeId> = input.eligible.iter().collect();
    let replaced: HashSet<&AllocId> = input
        .allocs
        .iter()
        .filter_map(|alloc| alloc.previous_allocation.as_ref())
        .collect();
    // (group, node) → the allocations there.
    let mut by_slot: BTreeMap<(&str, &NodeId), Vec<&Arc<Allocation>>> = BTreeMap::new();
    for alloc in input.allocs {
        by_slot
            .entry((alloc.task_group.as_str(), &alloc.node_id))
            .or_default()
            .push(alloc);
    }
    let mut updated_cache: HashMap<(String, u64, u64), bool> = HashMap::new();
    for ((group_name, node_id), allocs) in &by_slot {
        let group = job.task_group(group_name).filter(|group| group.count > 0);
        let mut live = allocs.iter().filter(|alloc| !alloc.is_terminal());
        let Some(first) = live.next() else {
            continue;
        };
        let Some(group) = group else {
            stop(&mut results, first, ALLOC_NOT_NEEDED);
            live.for_each(|alloc| stop(&mut results, alloc, ALLOC_NOT_NEEDED));
            continue;
        };
        match input.tainted.get(*node_id) {
            Some(NodeTaint::Disconnected { since })
                if group
                    .disconnect_window()
                    .is_some_and(|window| within(*since, window, input.now)) =>
            {
                // Nomad's `Disconnecting`: running allocations become `unknown`; unknown ones
                // are left alone until the client is back or the window has passed.
                std::iter::once(first)
                    .chain(live)
                    .filter(|alloc| alloc.client_status == AllocClientStatus::Running)
                    .for_each(|alloc| results.disconnecting.push((*alloc).clone()));
                continue;
            }
            Some(NodeTaint::Lost | NodeTaint::Disconnected { .. }) => {
                stop(&mut results, first, ALLOC_LOST);
                live.for_each(|alloc| stop(&mut results, alloc, ALLOC_LOST));
                continue;
            }
            Some(NodeTaint::Draining) => {
                // The drainer marks system allocations last, once the rest have left.
                std::iter::once(first)
                    .chain(live)
                    .filter(|alloc| alloc.desired_transition.migrate == Some(true))
                    .for_each(|alloc| stop(&mut results, alloc, ALLOC_NODE_TAINTED));
                continue;
            }
            None => {}
        }
        if !eligible.contains(node_id) && !input.ineligible.contains(*node_id) {
            stop(&mut results, first, ALLOC_NOT_NEEDED);
            live.for_each(|alloc| stop(&mut results, alloc, ALLOC_NOT_NEEDED));
            continue;
        }
        live.for_each(|alloc| stop(&mut results, alloc, ALLOC_NOT_NEEDED));
        if first.is_client_terminal() || !runs_older_version(first, job) {
            continue;
        }
        let Some(alloc_job) = &first.job else {
            continue;
        };
        let destructive = *updated_cache
            .entry((
                group.name.clone(),
                alloc_job.version,
                alloc_job.job_modify_index,
            ))
            .or_insert_with(|| tasks_updated(alloc_job, job, &group.name));
        if destructive {
            results
                .place
                .push(destructive_placement(first, Some((*node_id).clone())));
        } else {
            results.in_place.push((*first).clone());
        }
    }
    for group in job.task_groups.iter().filter(|group| group.count > 0) {
        for node_id in input.eligible {
            let allocs = by_slot
                .get(&(group.name.as_str(), node_id))
                .map(Vec::as_slice)
                .unwrap_or_default();
            if allocs.iter().any(|alloc| !alloc.is_terminal()) {
                continue;
            }
            let current = |alloc: &&&Arc<Allocation>| {
                alloc.desired_status == AllocDesiredStatus::Run && !runs_older_version(alloc, job)
            };
            let finished = allocs.iter().filter(current).any(|alloc| {
                job.is_batch_like()
                    && matches!(
                        alloc.client_status,
                        AllocClientStatus::Complete | AllocClientStatus::Failed
                    )
            });
            if finished {
                continue;
            }
            let failed = allocs.iter().find(|alloc| {
                alloc.desired_status == AllocDesiredStatus::Run
                    && alloc.client_status == AllocClientStatus::Failed
                    && !replaced.contains(&alloc.id)
                    && alloc.next_allocation.is_none()
            });
            results.place.push(AllocPlacement {
                task_group: group.name.clone(),
                name: Allocation::make_name(job.id.as_str(), &group.name, 0),
                previous: failed.map(|alloc| (*alloc).clone()),
                reschedule: false,
                stop_previous: None,
                node_id: Some(node_id.clone()),
                canary: false,
            });
        }
    }
    results
}
