//! The cluster reconciler: service and batch jobs, `count` allocations per group anywhere.
//!
//! Per group, each allocation falls in one bucket:
//!
//! ```text
//! desired stop/evict ───────────────────────────────► ignored (already going)
//! client complete ─── batch ────────────────────────► done (counts, never replaced)
//!                 └── service ──────────────────────► ignored (replaced as missing)
//! client failed ──── already replaced ──────────────► ignored
//!               ├─── reschedule now ────────────────► replaced now (same name)
//!               ├─── reschedule later ──────────────► kept, follow-up evaluation
//!               └─── no attempts left ──────────────► kept (counts, stays failed)
//! running/pending ── node lost ─────────────────────► stopped as lost, replaced
//!  /unknown       ├─ node disconnected, in window ──► marked unknown, replaced unless
//!                 │                                   `replace = false` (then kept)
//!                 ├─ back, with a live replacement ─► one of the two stopped (the replacement,
//!                 │                                   unless `keep_replacement`)
//!                 ├─ marked to migrate (drain) ─────► stopped, replaced
//!                 └─ otherwise ─────────────────────► kept (maybe updated)
//! ```
//! Kept allocations beyond the count are stopped, older versions sharing a name with a current one
//! first, then highest name index first; the rest of the count is filled by replacements, then
//! new allocations with the lowest free name indexes. Kept allocations of an older job version
//! are replaced (destructive) or updated in place; in a group with an `update` block the
//! destructive ones go through the deployment (`deployment.rs`): `max_parallel` at a time, after
//! canaries are promoted. Unpromoted canaries are not counted in the group's count.
//!
//! Nomad: `scheduler/reconciler/reconcile_cluster.go` `computeGroup`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::deployment::{DeploymentView, group_state};
use super::descriptions::{ALLOC_LOST, ALLOC_MIGRATING, ALLOC_NOT_NEEDED, ALLOC_RECONNECTED};
use super::names::NameIndex;
use super::reschedule::{RescheduleDecision, decide};
use super::update::tasks_updated;
use super::{
    AllocPlacement, AllocStop, DelayedReschedule, NewPlacements, NodeTaint, ReconcileResults,
    destructive_placement, runs_older_version, within,
};
use crate::structs::{
    AllocClientStatus, AllocDesiredStatus, AllocId, Allocation, Deployment, EvalId, Job, NodeId,
    TaskGroup, strategy_of,
};

pub struct ClusterInput<'a> {
    /// The job, `None` if it is gone; a stopped job stops everything.
    pub job: Option<&'a Arc<Job>>,
    /// The job's allocations, terminal ones included.
    pub allocs: &'a [Arc<Allocation>],
    /// The nodes of those allocations that are lost or draining.
    pub tainted: &'a HashMap<NodeId, NodeTaint>,
    pub eval_id: &'a EvalId,
    /// Unix nanoseconds.
    pub now: i64,
    /// The job's latest deployment.
    pub deployment: Option<&'a Arc<Deployment>>,
}

/// What one group asks of the deployment.
#[derive(Default)]
struct GroupDeployment {
    /// The group starts or changes a rollout: a new deployment is needed if none is current.
    needed: bool,
    /// Canaries are part of it.
    canaries: bool,
}

pub fn reconcile_cluster(input: &ClusterInput<'_>) -> ReconcileResults {
    let mut results = ReconcileResults::default();
    let mut by_group: BTreeMap<&str, Vec<&Arc<Allocation>>> = BTreeMap::new();
    for alloc in input.allocs {
        by_group.entry(&alloc.task_group).or_default().push(alloc);
    }
    let live_job = input.job.filter(|job| !job.stop);
    let view = DeploymentView::new(input.deployment, live_job.map(|job| &**job));
    results.deployment_updates.extend(view.cancel.clone());
    let Some(job) = live_job else {
        for alloc in input.allocs {
            stop_if_live(&mut results, alloc, input.tainted, ALLOC_NOT_NEEDED);
        }
        return results;
    };
    let replaced: HashSet<&AllocId> = input
        .allocs
        .iter()
        .filter_map(|alloc| alloc.previous_allocation.as_ref())
        .collect();
    for (group_name, allocs) in &by_group {
        if job.task_group(group_name).is_none() {
            for alloc in allocs {
                stop_if_live(&mut results, alloc, input.tainted, ALLOC_NOT_NEEDED);
            }
        }
    }
    let mut new_deployment = Deployment::new_for(job);
    let mut deployment_needed = false;
    for group in &job.task_groups {
        let allocs = by_group.remove(group.name.as_str()).unwrap_or_default();
        let asks = reconcile_group(input, &view, job, group, &allocs, &replaced, &mut results);
        if let Some(strategy) = strategy_of(job, &group.name) {
            results.deployment_groups.push(group.name.clone());
            deployment_needed |= asks.needed;
            new_deployment.task_groups.insert(
                group.name.clone(),
                group_state(&strategy, group.count, asks.canaries),
            );
        }
    }
    if let Some(current) = view.current {
        results.deployment_id = Some(current.id.clone());
    } else if deployment_needed {
        results.deployment_id = Some(new_deployment.id.clone());
        results.deployment = Some(new_deployment);
    }
    results
}

fn stop_if_live(
    results: &mut ReconcileResults,
    alloc: &Arc<Allocation>,
    tainted: &HashMap<NodeId, NodeTaint>,
    description: &'static str,
) {
    if alloc.is_terminal() {
        return;
    }
    let lost = super::node_loses_allocs(tainted, &alloc.node_id);
    results.stop.push(AllocStop {
        alloc: alloc.clone(),
        description: if lost { ALLOC_LOST } else { description },
        client_status: lost.then_some(AllocClientStatus::Lost),
    });
}

/// The allocations that give way now that a disconnected client is back: of an original
/// allocation running again on a node that is no longer tainted and the live replacement placed
/// while it was `unknown`, the replacement (or the original, with `reconcile =
/// "keep_replacement"`). Nomad: `reconcileReconnecting`.
fn reconnect_losers<'a>(
    input: &ClusterInput<'_>,
    group: &TaskGroup,
    allocs: &[&'a Arc<Allocation>],
) -> HashSet<&'a AllocId> {
    let live = |alloc: &Allocation| {
        alloc.desired_status == AllocDesiredStatus::Run && !alloc.is_client_terminal()
    };
    let by_id: HashMap<&AllocId, &Arc<Allocation>> =
        allocs.iter().map(|alloc| (&alloc.id, *alloc)).collect();
    let mut losers = HashSet::new();
    for original in allocs {
        if !live(original) || input.tainted.contains_key(&original.node_id) {
            continue;
        }
        let Some(replacement) = original
            .next_allocation
            .as_ref()
            .and_then(|next| by_id.get(next))
            .filter(|replacement| live(replacement))
        else {
            continue;
        };
        if group.keeps_replacement_on_reconnect() {
            losers.insert(&original.id);
        } else {
            losers.insert(&replacement.id);
        }
    }
    losers
}

fn reconcile_group(
    input: &ClusterInput<'_>,
    view: &DeploymentView<'_>,
    job: &Arc<Job>,
    group: &TaskGroup,
    allocs: &[&Arc<Allocation>],
    replaced: &HashSet<&AllocId>,
    results: &mut ReconcileResults,
) -> GroupDeployment {
    // Whether a job version's allocations of this group need replacing, per version.
    let mut updated_cache: HashMap<(u64, u64), bool> = HashMap::new();
    let batch = job.is_batch_like();
    let count = usize::try_from(group.count.max(0)).unwrap_or(0);
    let mut kept: Vec<&Arc<Allocation>> = Vec::new();
    let mut reschedule_now: Vec<&Arc<Allocation>> = Vec::new();
    let mut lost: Vec<&Arc<Allocation>> = Vec::new();
    let mut migrate: Vec<&Arc<Allocation>> = Vec::new();
    let mut canaries: Vec<&Arc<Allocation>> = Vec::new();
    // Unknown allocations of a disconnected node replaced meanwhile.
    let mut disconnected: Vec<&Arc<Allocation>> = Vec::new();
    let had_running = allocs.iter().any(|alloc| !alloc.is_terminal());
    let reconnected = reconnect_losers(input, group, allocs);
    for alloc in allocs {
        if alloc.desired_status != AllocDesiredStatus::Run {
            continue;
        }
        if reconnected.contains(&alloc.id) {
            results.stop.push(AllocStop {
                alloc: (*alloc).clone(),
                description: ALLOC_RECONNECTED,
                client_status: None,
            });
            continue;
        }
        match alloc.client_status {
            AllocClientStatus::Complete => {
                if batch {
                    kept.push(alloc);
                }
            }
            AllocClientStatus::Lost => {}
            AllocClientStatus::Failed => {
                if replaced.contains(&alloc.id) || alloc.next_allocation.is_some() {
                    continue;
                }
                match decide(
                    alloc,
                    group.reschedule_policy.as_ref(),
                    input.now,
                    input.eval_id,
                ) {
                    RescheduleDecision::Now => reschedule_now.push(alloc),
                    RescheduleDecision::Later(at) => {
                        kept.push(alloc);
                        if alloc.followup_eval_id.is_none() {
                            results.reschedule_later.push(DelayedReschedule {
                                alloc: (*alloc).clone(),
                                at,
                            });
                        }
                    }
                    RescheduleDecision::Never => kept.push(alloc),
                }
            }
            AllocClientStatus::Pending
            | AllocClientStatus::Running
            | AllocClientStatus::Unknown => match input.tainted.get(&alloc.node_id) {
                // On a draining node the drainer marks which allocations move, and when.
                Some(NodeTaint::Lost) => lost.push(alloc),
                Some(NodeTaint::Disconnected { since }) => match group.disconnect_window() {
                    Some(window) if within(*since, window, input.now) => {
                        if alloc.client_status != AllocClientStatus::Unknown {
                            results.disconnecting.push((*alloc).clone());
                        }
                        let already_replaced =
                            replaced.contains(&alloc.id) || alloc.next_allocation.is_some();
                        if !group.replaces_disconnected() {
                            kept.push(alloc);
                        } else if !already_replaced {
                            disconnected.push(alloc);
                        }
                    }
                    _ => lost.push(alloc),
                },
                _ if alloc.desired_transition.migrate == Some(true) => migrate.push(alloc),
                _ if view.is_unpromoted_canary(alloc) => canaries.push(alloc),
                _ => kept.push(alloc),
            },
        }
    }
    for alloc in &lost {
        results.stop.push(AllocStop {
            alloc: (*alloc).clone(),
            description: ALLOC_LOST,
            client_status: Some(AllocClientStatus::Lost),
        });
    }
    for alloc in &migrate {
        results.stop.push(AllocStop {
            alloc: (*alloc).clone(),
            description: ALLOC_MIGRATING,
            client_status: None,
        });
    }

    // Scale down: stop running allocations beyond the count, highest name index first.
    if kept.len() > count {
        let mut live: Vec<&Arc<Allocation>> = kept
            .iter()
            .copied()
            .filter(|alloc| !alloc.is_client_terminal())
            .collect();
        // After a promotion, the old allocation a canary took the name of goes first.
        let current_names: HashSet<&str> = kept
            .iter()
            .filter(|alloc| !runs_older_version(alloc, job))
            .map(|alloc| alloc.name.as_str())
            .collect();
        let superseded = |alloc: &Allocation| {
            runs_older_version(alloc, job) && current_names.contains(alloc.name.as_str())
        };
        live.sort_by(|left, right| {
            superseded(right)
                .cmp(&superseded(left))
                .then_with(|| right.index().cmp(&left.index()))
                .then_with(|| right.id.cmp(&left.id))
        });
        let excess = kept.len() - count;
        let stopping: HashSet<&AllocId> = live.iter().take(excess).map(|alloc| &alloc.id).collect();
        for alloc in live.iter().take(excess) {
            results.stop.push(AllocStop {
                alloc: (*alloc).clone(),
                description: ALLOC_NOT_NEEDED,
                client_status: None,
            });
        }
        kept.retain(|alloc| !stopping.contains(&alloc.id));
    }

    // Fill the count: replacements first, by the names they replace, then new names.
    let mut room = count.saturating_sub(kept.len());
    let replacements = reschedule_now.iter().map(|alloc| (alloc, true)).chain(
        lost.iter()
            .chain(migrate.iter())
            .chain(disconnected.iter())
            .map(|alloc| (alloc, false)),
    );
    let mut replacing: Vec<&Arc<Allocation>> = Vec::new();
    let placed_before = results.place.len();
    for (alloc, reschedule) in replacements {
        if room == 0 {
            break;
        }
        room -= 1;
        replacing.push(alloc);
        results.place.push(AllocPlacement {
            task_group: group.name.clone(),
            name: alloc.name.clone(),
            previous: Some((*alloc).clone()),
            reschedule,
            stop_previous: None,
            node_id: None,
            canary: false,
        });
    }
    let mut placed_now = results.place.len() - placed_before + room;
    if room > 0 {
        let names = NameIndex::new(
            job.id.as_str(),
            &group.name,
            u32::try_from(count).unwrap_or(u32::MAX),
            kept.iter().chain(replacing.iter()).map(|alloc| &***alloc),
        );
        results.new_names.push(NewPlacements {
            task_group: group.name.clone(),
            names,
            remaining: room,
        });
    }

    // Updates of kept, running allocations made from an older job version.
    let mut destructive: Vec<&Arc<Allocation>> = Vec::new();
    let mut n_in_place = 0usize;
    for alloc in kept {
        if alloc.is_client_terminal() || !runs_older_version(alloc, job) {
            continue;
        }
        let Some(alloc_job) = &alloc.job else {
            continue;
        };
        let replace = *updated_cache
            .entry((alloc_job.version, alloc_job.job_modify_index))
            .or_insert_with(|| tasks_updated(alloc_job, job, &group.name));
        if replace {
            destructive.push(alloc);
        } else {
            n_in_place += 1;
            results.in_place.push(alloc.clone());
        }
    }
    let Some(strategy) = strategy_of(job, &group.name) else {
        for alloc in destructive {
            results.place.push(destructive_placement(alloc, None));
        }
        return GroupDeployment::default();
    };
    destructive.sort_by(|left, right| {
        left.index()
            .cmp(&right.index())
            .then_with(|| left.id.cmp(&right.id))
    });
    let promoted = view.group(&group.name).is_some_and(|state| state.promoted);
    let canarying =
        strategy.canary > 0 && !promoted && (!destructive.is_empty() || !canaries.is_empty());
    if canarying && !view.halted() {
        // Canaries take the names of the allocations they will replace, lowest index first.
        let wanted = usize::try_from(strategy.canary).unwrap_or(0);
        let taken: HashSet<&str> = canaries.iter().map(|alloc| alloc.name.as_str()).collect();
        let names = destructive
            .iter()
            .map(|alloc| alloc.name.clone())
            .filter(|name| !taken.contains(name.as_str()))
            .take(wanted.saturating_sub(canaries.len()));
        for name in names {
            placed_now += 1;
            results.place.push(AllocPlacement {
                task_group: group.name.clone(),
                name,
                previous: None,
                reschedule: false,
                stop_previous: None,
                node_id: None,
                canary: true,
            });
        }
    }
    // What this evaluation places in the group counts against `max_parallel` too.
    let limit = view
        .update_limit(&strategy, allocs, canarying)
        .saturating_sub(placed_now);
    for alloc in destructive.iter().take(limit) {
        results.place.push(destructive_placement(alloc, None));
    }
    GroupDeployment {
        // Nomad's `updatingSpec`: destructive or in-place updates of running allocations.
        needed: !destructive.is_empty() || n_in_place > 0 || (!had_running && placed_now > 0),
        canaries: canarying,
    }
}
