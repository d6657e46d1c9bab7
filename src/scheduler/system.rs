//! The system scheduler: system and sysbatch jobs, one allocation per group on every eligible node.
//!
//! The node reconciler proposes a placement per eligible node without a live allocation; each is
//! checked against that node only. A node that fails the group's constraints simply does not run
//! the group (not a failure); a node without room is a failure reported in `FailedTGAllocs`.
//! System evaluations are not blocked: node and job changes re-evaluate them, as in Nomad.
//!
//! Nomad: `scheduler/scheduler_system.go`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::context::EvalContext;
use super::feasible::{datacenter, node_is_candidate, node_pool};
use super::generic::{PlanSize, base_metric, tainted_nodes};
use super::placement::{NewAlloc, build_alloc, try_in_place};
use super::reconcile::destructive_placement;
use super::reconcile::node::{NodeInput, reconcile_nodes};
use super::stack::{GroupSelector, assign_chosen_ports, rank_node};
use super::{Planner, PlannerError, SchedulerConfig, SchedulerError, State};
use crate::structs::{AllocMetric, EvalStatus, Evaluation, Job, Node, NodeId, NodeStatus};

pub fn process(
    state: Arc<dyn State>,
    planner: &mut dyn Planner,
    config: &SchedulerConfig,
    eval: &Evaluation,
) -> Result<(), SchedulerError> {
    let planner_error = |source| SchedulerError::Planner {
        eval_id: eval.id.clone(),
        source,
    };
    let mut state = state;
    let mut attempts_without_progress = 0;
    loop {
        let (plan, failed_tg_allocs, queued) = compute_attempt(state.clone(), config, eval);
        let done = if plan.is_no_op() {
            true
        } else {
            let asked = PlanSize::of(&plan);
            let (result, refreshed) = planner.submit_plan(plan).map_err(planner_error)?;
            if result.refresh_index == 0 || PlanSize::of_result(&result) == asked {
                true
            } else {
                let progress = result
                    .node_allocation
                    .values()
                    .any(|allocs| !allocs.is_empty())
                    || result.node_update.values().any(|allocs| !allocs.is_empty());
                attempts_without_progress = if progress {
                    0
                } else {
                    attempts_without_progress + 1
                };
                if attempts_without_progress >= config.max_plan_attempts.max(1) {
                    let mut updated = eval.clone();
                    updated.status = EvalStatus::Failed;
                    updated.status_description = format!(
                        "maximum attempts reached ({})",
                        config.max_plan_attempts.max(1)
                    );
                    updated.failed_tg_allocs = failed_tg_allocs;
                    updated.queued_allocations = queued;
                    return planner.update_eval(updated).map_err(planner_error);
                }
                // Planning again against the same snapshot would place what was just committed twice.
                state = refreshed.ok_or_else(|| {
                    planner_error(PlannerError(
                        "partial commit without a refreshed state".to_owned(),
                    ))
                })?;
                false
            }
        };
        if done {
            let mut updated = eval.clone();
            updated.status = EvalStatus::Complete;
            updated.status_description.clear();
            updated.failed_tg_allocs = failed_tg_allocs;
            updated.queued_allocations = queued;
            updated.snapshot_index = state.index();
            return planner.update_eval(updated).map_err(planner_error);
        }
    }
}

type AttemptOutcome = (
    crate::structs::Plan,
    BTreeMap<String, AllocMetric>,
    BTreeMap<String, u64>,
);

fn compute_attempt(
    state: Arc<dyn State>,
    config: &SchedulerConfig,
    eval: &Evaluation,
) -> AttemptOutcome {
    let job = state.job_by_id(&eval.namespace, &eval.job_id);
    let allocs = state.allocs_by_job(&eval.namespace, &eval.job_id);
    let mut ctx = EvalContext::new(state, eval, config.now_unix_nanos, job.as_ref(), &allocs);
    let tainted = tainted_nodes(&ctx, &allocs);
    let (eligible, ineligible) = match &job {
        Some(job) => eligible_nodes(&ctx, job),
        None => (Vec::new(), HashSet::new()),
    };
    let eligible_ids: Vec<NodeId> = eligible.iter().map(|node| node.id.clone()).collect();
    let results = reconcile_nodes(&NodeInput {
        job: job.as_ref(),
        allocs: &allocs,
        eligible: &eligible_ids,
        ineligible: &ineligible,
        tainted: &tainted,
        now: config.now_unix_nanos,
    });
    for stop in &results.stop {
        ctx.stop(&stop.alloc, stop.description, stop.client_status);
    }
    for alloc in &results.disconnecting {
        ctx.plan.append_unknown_alloc(alloc);
    }
    let mut failed_tg_allocs: BTreeMap<String, AllocMetric> = BTreeMap::new();
    let mut queued: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(job) = job.as_ref().filter(|job| !job.stop) {
        for group in &job.task_groups {
            queued.insert(group.name.clone(), 0);
        }
        let mut placements = results.place;
        let mut feasibility = HashMap::new();
        for alloc in &results.in_place {
            if !try_in_place(&mut ctx, job, alloc, None, &mut feasibility) {
                placements.push(destructive_placement(alloc, Some(alloc.node_id.clone())));
            }
        }
        let base = base_metric(&ctx, job, eligible.iter().map(|node| &**node));
        let mut selectors: HashMap<String, GroupSelector> = HashMap::new();
        for placement in &placements {
            let (Some(group), Some(node_idx)) = (
                job.task_group(&placement.task_group),
                placement
                    .node_id
                    .as_ref()
                    .and_then(|node_id| ctx.node_idx(node_id)),
            ) else {
                continue;
            };
            let node = ctx.all_nodes[node_idx].clone();
            let selector = selectors
                .entry(group.name.clone())
                .or_insert_with(|| GroupSelector::new(&ctx, job, group));
            let previous = placement.previous.as_deref();
            if let (Some(description), Some(previous)) = (placement.stop_previous, previous) {
                ctx.stop(previous, description, None);
            }
            let mut metric = base.clone();
            selector.placing(&placement.name);
            let ranked = rank_node(
                &mut ctx,
                selector,
                config.algorithm,
                node_idx,
                &[],
                &mut metric,
            );
            match ranked {
                Some(mut ranked) => {
                    assign_chosen_ports(&mut ctx, selector, &mut ranked);
                    metric.score_meta_data = vec![ranked.scores.to_meta(&node.id)];
                    let alloc = build_alloc(
                        &mut ctx,
                        NewAlloc {
                            job,
                            group,
                            ask: &selector.ask,
                            port_ask: &selector.port_ask,
                            name: placement.name.clone(),
                            ranked,
                            metric,
                            previous,
                            reschedule: false,
                        },
                    );
                    selector.record_placement(&node);
                    ctx.place(node_idx, alloc);
                }
                // Constraints rule the node out: the group does not belong there.
                None if metric.nodes_exhausted == 0 => {}
                None => {
                    if let (Some(_), Some(previous)) = (placement.stop_previous, previous) {
                        ctx.undo_stop(previous);
                    }
                    *queued.entry(group.name.clone()).or_default() += 1;
                    match failed_tg_allocs.get_mut(&group.name) {
                        Some(failed) => failed.coalesced_failures += 1,
                        None => {
                            failed_tg_allocs.insert(group.name.clone(), metric);
                        }
                    }
                }
            }
        }
    }
    (ctx.plan, failed_tg_allocs, queued)
}

/// Nodes new allocations may go to, in ID order, and the ready ones in the job's datacenters and
/// pool that are only ineligible (they keep what they run).
fn eligible_nodes(ctx: &EvalContext, job: &Job) -> (Vec<Arc<Node>>, HashSet<NodeId>) {
    let mut eligible = Vec::new();
    let mut ineligible = HashSet::new();
    for node in &ctx.all_nodes {
        if node_is_candidate(node, job) {
            eligible.push(node.clone());
        } else if node.status == NodeStatus::Ready
            && node.drain_strategy.is_none()
            && !node.drain
            && datacenter::node_in_datacenters(node, &job.datacenters)
            && node_pool::node_in_pool(node, &job.node_pool)
        {
            ineligible.insert(node.id.clone());
        }
    }
    (eligible, ineligible)
}
