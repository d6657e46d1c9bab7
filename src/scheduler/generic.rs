//! The generic scheduler: service and batch jobs.
//!
//! ```text
//! snapshot ─► reconcile ─► stops, in-place updates ─► placements (stack) ─► submit plan
//!    ▲                                                                         │
//!    └──────────── partial commit: refreshed snapshot, try again ◄─────────────┘
//! done: evaluation complete (FailedTGAllocs, QueuedAllocations), blocked evaluation if
//!       placements failed for lack of capacity, follow-up evaluations for delayed reschedules
//! ```
//! A plan is partly refused when the result carries a refresh index and less than was asked; the
//! planner then hands over a fresher snapshot to plan the rest against. Attempts that commit
//! nothing count towards `max_plan_attempts`; an attempt that makes progress
//! resets the count, as Nomad's `retryMax` does. After the last attempt the evaluation fails and a
//! blocked evaluation takes over.
//!
//! Nomad: `scheduler/generic_sched.go`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::context::EvalContext;
use super::feasible::{datacenter, node_pool, ready};
use super::placement::{NewAlloc, build_alloc, penalty_nodes, try_in_place};
use super::reconcile::cluster::{ClusterInput, reconcile_cluster};
use super::reconcile::descriptions::{BLOCKED_EVAL_FAILED_PLACEMENTS, BLOCKED_EVAL_MAX_PLAN};
use super::reconcile::followup::followup_evals;
use super::reconcile::{AllocPlacement, NewPlacements, NodeTaint, destructive_placement};
use super::stack::{GroupSelector, Stack};
use super::{Planner, PlannerError, SchedulerConfig, SchedulerError, State};
use crate::structs::{
    AllocDeploymentStatus, AllocMetric, Allocation, DeploymentId, EvalId, EvalStatus, EvalTrigger,
    Evaluation, Job, Node, NodeId, NodeStatus, Plan,
};

/// What one attempt decided.
pub(crate) struct Attempt {
    pub plan: Plan,
    pub followup_evals: Vec<Evaluation>,
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    pub queued: BTreeMap<String, u64>,
    pub class_eligibility: BTreeMap<String, bool>,
    pub escaped_computed_class: bool,
}

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
        let attempt = compute_attempt(state.clone(), config, eval);
        for followup in &attempt.followup_evals {
            planner
                .create_eval(followup.clone())
                .map_err(planner_error)?;
        }
        if attempt.plan.is_no_op() {
            return finish(planner, eval, attempt, state.index(), config.now_unix_nanos)
                .map_err(planner_error);
        }
        let mut attempt = attempt;
        let plan = std::mem::take(&mut attempt.plan);
        let asked = PlanSize::of(&plan);
        let (result, refreshed) = planner.submit_plan(plan).map_err(planner_error)?;
        if result.refresh_index == 0 || PlanSize::of_result(&result) == asked {
            return finish(planner, eval, attempt, state.index(), config.now_unix_nanos)
                .map_err(planner_error);
        }
        let progress = result
            .node_allocation
            .values()
            .any(|allocs| !allocs.is_empty())
            || result.node_update.values().any(|allocs| !allocs.is_empty());
        if progress {
            attempts_without_progress = 0;
        } else {
            attempts_without_progress += 1;
        }
        if attempts_without_progress >= config.max_plan_attempts.max(1) {
            return give_up(planner, eval, config, &attempt).map_err(planner_error);
        }
        // Planning again against the same snapshot would place what was just committed twice.
        state = refreshed.ok_or_else(|| {
            planner_error(PlannerError(
                "partial commit without a refreshed state".to_owned(),
            ))
        })?;
    }
}

/// How many stops and placements a plan (or what was committed of it) holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlanSize {
    stops: usize,
    placements: usize,
}

impl PlanSize {
    pub fn of(plan: &Plan) -> Self {
        Self {
            stops: plan.node_update.values().map(Vec::len).sum(),
            placements: plan.node_allocation.values().map(Vec::len).sum(),
        }
    }

    pub fn of_result(result: &crate::structs::PlanResult) -> Self {
        Self {
            stops: result.node_update.values().map(Vec::len).sum(),
            placements: result.node_allocation.values().map(Vec::len).sum(),
        }
    }
}

/// Nodes with allocations of the job that are lost (down, disconnected, gone) or draining.
pub(crate) fn tainted_nodes(
    ctx: &EvalContext,
    allocs: &[Arc<Allocation>],
) -> HashMap<NodeId, NodeTaint> {
    let mut tainted = HashMap::new();
    for alloc in allocs.iter().filter(|alloc| !alloc.is_terminal()) {
        if tainted.contains_key(&alloc.node_id) {
            continue;
        }
        let taint = match ctx.node_by_id(&alloc.node_id) {
            None => Some(NodeTaint::Lost),
            Some(node) if node.status == NodeStatus::Down => Some(NodeTaint::Lost),
            Some(node) if node.status == NodeStatus::Disconnected => {
                Some(NodeTaint::Disconnected {
                    since: node.status_updated_at.saturating_mul(1_000_000_000),
                })
            }
            Some(node) if node.drain_strategy.is_some() || node.drain => Some(NodeTaint::Draining),
            Some(_) => None,
        };
        if let Some(taint) = taint {
            tainted.insert(alloc.node_id.clone(), taint);
        }
    }
    tainted
}

/// In one pass over the nodes: the candidates for new allocations of `job` (ready, in its
/// datacenters and pool; positions in the context's nodes) and the metric every placement starts
/// from (the pool's size, candidates per datacenter).
pub(crate) fn candidates_and_base_metric(
    ctx: &EvalContext,
    job: &Job,
) -> (Vec<usize>, AllocMetric) {
    let mut metric = AllocMetric::default();
    let mut candidates = Vec::new();
    for (node_idx, node) in ctx.all_nodes.iter().enumerate() {
        if !node_pool::node_in_pool(node, &job.node_pool) {
            continue;
        }
        metric.nodes_in_pool += 1;
        if !ready::node_is_ready(node) || !datacenter::node_in_datacenters(node, &job.datacenters) {
            continue;
        }
        candidates.push(node_idx);
        match metric.nodes_available.get_mut(&node.datacenter) {
            Some(count) => *count += 1,
            None => {
                metric.nodes_available.insert(node.datacenter.clone(), 1);
            }
        }
    }
    (candidates, metric)
}

/// The metric every placement starts from: the pool's size and available nodes per datacenter.
pub(crate) fn base_metric<'a>(
    ctx: &EvalContext,
    job: &Job,
    candidates: impl Iterator<Item = &'a Node>,
) -> AllocMetric {
    let mut metric = AllocMetric {
        nodes_in_pool: ctx
            .all_nodes
            .iter()
            .filter(|node| node_pool::node_in_pool(node, &job.node_pool))
            .count() as u64,
        ..AllocMetric::default()
    };
    for node in candidates {
        match metric.nodes_available.get_mut(&node.datacenter) {
            Some(count) => *count += 1,
            None => {
                metric.nodes_available.insert(node.datacenter.clone(), 1);
            }
        }
    }
    metric
}

fn compute_attempt(state: Arc<dyn State>, config: &SchedulerConfig, eval: &Evaluation) -> Attempt {
    let job = state.job_by_id(&eval.namespace, &eval.job_id);
    let allocs = state.allocs_by_job(&eval.namespace, &eval.job_id);
    let deployment = state.latest_deployment_by_job(&eval.namespace, &eval.job_id);
    let mut ctx = EvalContext::new(state, eval, config.now_unix_nanos, job.as_ref(), &allocs);
    let tainted = tainted_nodes(&ctx, &allocs);
    let results = reconcile_cluster(&ClusterInput {
        job: job.as_ref(),
        allocs: &allocs,
        tainted: &tainted,
        eval_id: &eval.id,
        now: config.now_unix_nanos,
        deployment: deployment.as_ref(),
    });
    ctx.plan.deployment = results.deployment;
    ctx.plan.deployment_updates = results.deployment_updates;
    let tag = DeploymentTag {
        id: results.deployment_id,
        groups: results.deployment_groups,
    };
    let (followups, annotated) =
        followup_evals(eval, results.reschedule_later, config.now_unix_nanos);
    for (alloc, followup_id) in annotated {
        let mut waiting = (*alloc).clone();
        waiting.followup_eval_id = Some(followup_id);
        ctx.plan.append_alloc(waiting);
    }
    for stop in &results.stop {
        ctx.stop(&stop.alloc, stop.description, stop.client_status);
    }
    for alloc in &results.disconnecting {
        ctx.plan.append_unknown_alloc(alloc);
    }
    let mut attempt = Attempt {
        plan: Plan::default(),
        followup_evals: followups,
        failed_tg_allocs: BTreeMap::new(),
        queued: BTreeMap::new(),
        class_eligibility: BTreeMap::new(),
        escaped_computed_class: false,
    };
    if let Some(job) = job.as_ref().filter(|job| !job.stop) {
        let mut placements = results.place;
        let mut feasibility = HashMap::new();
        for alloc in &results.in_place {
            let deployment = tag.id_for(&alloc.task_group);
            if !try_in_place(&mut ctx, job, alloc, deployment, &mut feasibility) {
                placements.push(destructive_placement(alloc, None));
            }
        }
        for group in &job.task_groups {
            attempt.queued.insert(group.name.clone(), 0);
        }
        place_all(
            &mut ctx,
            config,
            job,
            &placements,
            results.new_names,
            &tag,
            &mut attempt,
        );
    }
    attempt.plan = ctx.plan;
    attempt
}

/// Places the reconciler's placements, then the new allocations it asked for, one at a time: a
/// group's first failure ends its placement, and what is left of it is counted as coalesced
/// failures without being generated (Nomad: `computePlacements`).
fn place_all(
    ctx: &mut EvalContext,
    config: &SchedulerConfig,
    job: &Arc<Job>,
    placements: &[AllocPlacement],
    new_names: Vec<NewPlacements>,
    tag: &DeploymentTag,
    attempt: &mut Attempt,
) {
    if placements.is_empty() && new_names.iter().all(|new| new.remaining == 0) {
        return;
    }
    let (candidates, base) = candidates_and_base_metric(ctx, job);
    let mut placer = Placer {
        stack: Stack::new(ctx, candidates, job.is_batch_like(), config.algorithm),
        selectors: HashMap::new(),
        base,
        tag,
    };
    for placement in placements {
        placer.place(ctx, job, placement, attempt);
    }
    for mut new in new_names {
        while new.remaining > 0 {
            if let Some(failed) = attempt.failed_tg_allocs.get_mut(&new.task_group) {
                let left = u64::try_from(new.remaining).unwrap_or(u64::MAX);
                failed.coalesced_failures = failed.coalesced_failures.saturating_add(left);
                let queued = attempt.queued.entry(new.task_group.clone()).or_default();
                *queued = queued.saturating_add(left);
                break;
            }
            let Some(placement) = new.next() else {
                break;
            };
            placer.place(ctx, job, &placement, attempt);
        }
    }
    record_class_eligibility(&placer.selectors, attempt);
}

/// The deployment new allocations of some groups join.
pub(crate) struct DeploymentTag {
    id: Option<DeploymentId>,
    groups: Vec<String>,
}

impl DeploymentTag {
    /// The deployment allocations of `group` join, if any.
    fn id_for(&self, group: &str) -> Option<&DeploymentId> {
        self.id
            .as_ref()
            .filter(|_| self.groups.iter().any(|name| name == group))
    }

    fn apply(&self, alloc: &mut Allocation, canary: bool) {
        let Some(id) = &self.id else {
            return;
        };
        if !self.groups.contains(&alloc.task_group) {
            return;
        }
        alloc.deployment_id = Some(id.clone());
        if canary {
            alloc.deployment_status = Some(AllocDeploymentStatus {
                canary: true,
                ..AllocDeploymentStatus::default()
            });
        }
    }
}

/// The state placements share within one attempt: the stack and one selector per group.
struct Placer<'a> {
    stack: Stack,
    selectors: HashMap<String, GroupSelector>,
    base: AllocMetric,
    tag: &'a DeploymentTag,
}

impl Placer<'_> {
    fn place(
        &mut self,
        ctx: &mut EvalContext,
        job: &Arc<Job>,
        placement: &AllocPlacement,
        attempt: &mut Attempt,
    ) {
        let Some(group) = job.task_group(&placement.task_group) else {
            return;
        };
        if let Some(failed) = attempt.failed_tg_allocs.get_mut(&group.name) {
            failed.coalesced_failures += 1;
            *attempt.queued.entry(group.name.clone()).or_default() += 1;
            return;
        }
        let Self {
            stack,
            selectors,
            base,
            tag,
        } = self;
        let selector = selectors
            .entry(group.name.clone())
            .or_insert_with(|| GroupSelector::new(ctx, job, group));
        let previous = placement.previous.as_deref();
        let previous_node = previous.and_then(|alloc| ctx.node_by_id(&alloc.node_id));
        if let (Some(description), Some(previous)) = (placement.stop_previous, previous) {
            ctx.stop(previous, description, None);
            if let Some(node) = &previous_node {
                selector.record_stop(node);
            }
        }
        let penalty = penalty_nodes(previous, placement.reschedule);
        let mut metric = base.clone();
        selector.placing(&placement.name);
        match stack.select(ctx, selector, &penalty, &mut metric) {
            Some(ranked) => {
                let node = ranked.node.clone();
                let node_idx = ranked.node_idx;
                let mut alloc = build_alloc(
                    ctx,
                    NewAlloc {
                        job,
                        group,
                        ask: &selector.ask,
                        port_ask: &selector.port_ask,
                        name: placement.name.clone(),
                        ranked,
                        metric,
                        previous,
                        reschedule: placement.reschedule,
                    },
                );
                tag.apply(&mut alloc, placement.canary);
                selector.record_placement(&node);
                ctx.place(node_idx, alloc);
            }
            None => {
                if let (Some(_), Some(previous)) = (placement.stop_previous, previous) {
                    ctx.undo_stop(previous);
                    if let Some(node) = &previous_node {
                        selector.record_placement(node);
                    }
                }
                attempt.failed_tg_allocs.insert(group.name.clone(), metric);
                *attempt.queued.entry(group.name.clone()).or_default() += 1;
            }
        }
    }
}

fn record_class_eligibility(selectors: &HashMap<String, GroupSelector>, attempt: &mut Attempt) {
    for selector in selectors.values() {
        attempt.escaped_computed_class |= selector.feasibility.escapes_computed_class();
        for (class, eligible) in selector.feasibility.class_verdicts() {
            let entry = attempt
                .class_eligibility
                .entry(class.to_owned())
                .or_insert(true);
            *entry &= eligible;
        }
    }
}

/// A blocked evaluation that waits for capacity to place what this one could not.
pub(crate) fn blocked_eval(
    eval: &Evaluation,
    attempt: &Attempt,
    now: i64,
    max_plans: bool,
) -> Evaluation {
    Evaluation {
        id: EvalId::generate(),
        namespace: eval.namespace.clone(),
        priority: eval.priority,
        eval_type: eval.eval_type,
        triggered_by: if max_plans {
            EvalTrigger::MAX_PLANS
        } else {
            EvalTrigger::QUEUED_ALLOCS
        }
        .to_owned(),
        job_id: eval.job_id.clone(),
        job_modify_index: eval.job_modify_index,
        status: EvalStatus::Blocked,
        status_description: if max_plans {
            BLOCKED_EVAL_MAX_PLAN
        } else {
            BLOCKED_EVAL_FAILED_PLACEMENTS
        }
        .to_owned(),
        previous_eval: Some(eval.id.clone()),
        class_eligibility: attempt.class_eligibility.clone(),
        escaped_computed_class: attempt.escaped_computed_class,
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    }
}

fn finish(
    planner: &mut dyn Planner,
    eval: &Evaluation,
    attempt: Attempt,
    snapshot_index: u64,
    now: i64,
) -> Result<(), super::PlannerError> {
    let mut updated = eval.clone();
    updated.failed_tg_allocs = attempt.failed_tg_allocs.clone();
    updated.queued_allocations = attempt.queued.clone();
    updated.snapshot_index = snapshot_index;
    if !attempt.failed_tg_allocs.is_empty() {
        if eval.status == EvalStatus::Blocked {
            updated.class_eligibility = attempt.class_eligibility.clone();
            updated.escaped_computed_class = attempt.escaped_computed_class;
            return planner.reblock_eval(updated);
        }
        let blocked = blocked_eval(eval, &attempt, now, false);
        updated.blocked_eval = Some(blocked.id.clone());
        planner.create_eval(blocked)?;
    }
    updated.status = EvalStatus::Complete;
    updated.status_description.clear();
    planner.update_eval(updated)
}

fn give_up(
    planner: &mut dyn Planner,
    eval: &Evaluation,
    config: &SchedulerConfig,
    attempt: &Attempt,
) -> Result<(), super::PlannerError> {
    let mut updated = eval.clone();
    if eval.status != EvalStatus::Blocked {
        let blocked = blocked_eval(eval, attempt, config.now_unix_nanos, true);
        updated.blocked_eval = Some(blocked.id.clone());
        planner.create_eval(blocked)?;
    }
    updated.status = EvalStatus::Failed;
    updated.status_description = format!(
        "maximum attempts reached ({})",
        config.max_plan_attempts.max(1)
    );
    updated.failed_tg_allocs = attempt.failed_tg_allocs.clone();
    updated.queued_allocations = attempt.queued.clone();
    planner.update_eval(updated)
}
