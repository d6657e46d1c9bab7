//! The stack: from candidate nodes to the chosen node for one placement.
//!
//! ```text
//! shuffled candidates ─► static feasibility (memoised) ─► distinct hosts/property
//!   ─► resources ─► ports ─► device instances ─► score ─► limit (skip poor nodes) ─► max score
//! ```
//! The source walks the shuffled candidates round-robin and resumes where the previous placement
//! stopped, so successive placements look at different nodes. The limit keeps only the first few
//! feasible nodes (log2(n) for services, 2 for batch; with affinities or spreads the group's count,
//! at least 100, as Nomad: scoring every node would make a placement cost grow with the cluster)
//! and sets aside up to three nodes scoring at most 0 in case better ones follow.
//!
//! Nomad: `scheduler/stack.go` `GenericStack`, `scheduler/select.go` `LimitIterator`,
//! `MaxScoreIterator`.

use std::collections::VecDeque;
use std::sync::Arc;

use super::context::EvalContext;
use super::fast_hash::FastMap;
use super::feasible::GroupFeasibility;
use super::feasible::cores::{CoreAsk, CoreOffer};
use super::feasible::device::{DeviceAsk, DeviceOffer};
use super::feasible::distinct::{DISTINCT_HOSTS, DistinctHosts, DistinctProperty};
use super::feasible::ports::{PortAsk, assign_ports, check_ports};
use super::feasible::resources::{ResourceAsk, check_fit};
use super::metrics;
use super::rank::{AffinityScorer, SchedulerAlgorithm, ScoreParts, anti_affinity_score, fit_score};
use super::spread::SpreadScorer;
use super::usage::host_ip;
use crate::structs::{AllocMetric, AllocatedPort, Job, Node, NodeId, TaskGroup};

/// Nomad's `skipScoreThreshold` and `maxSkip`.
const SKIP_SCORE_THRESHOLD: f64 = 0.0;
const MAX_SKIP: usize = 3;
/// How many top-scoring nodes a metric keeps (Nomad's `MaxRetainedNodeScores`).
const RETAINED_NODE_SCORES: usize = 5;
/// The fewest nodes scored for a group with affinities or spreads (Nomad's `GenericStack.Select`:
/// "this value was empirically determined").
const MIN_SCORED_WITH_PREFERENCES: usize = 100;

/// What one task group asks of a node, and the state of its plan-dependent checks.
pub struct GroupSelector {
    pub task_group: String,
    pub feasibility: GroupFeasibility,
    pub distinct_hosts: DistinctHosts,
    pub distinct_properties: Vec<DistinctProperty>,
    pub ask: ResourceAsk,
    pub port_ask: PortAsk,
    pub device_ask: DeviceAsk,
    pub core_ask: CoreAsk,
    pub affinity: AffinityScorer,
    pub spread: SpreadScorer,
    pub desired_count: u32,
    distinct_hosts_key: Arc<str>,
    /// The name of the allocation being placed (`<job>.<group>[<index>]`): `per_alloc` volumes
    /// depend on its index.
    alloc_name: String,
    /// Static feasibility per node (by position in the context's nodes), computed on first visit.
    memo: FastMap<usize, Result<(), Arc<str>>>,
}

impl GroupSelector {
    pub fn new(ctx: &EvalContext, job: &Job, group: &TaskGroup) -> Self {
        let node_by_id = |node_id: &NodeId| ctx.node_by_id(node_id);
        let mut distinct_properties = DistinctProperty::all_of(job, group);
        for property in &mut distinct_properties {
            property.populate(&ctx.proposed, &node_by_id);
        }
        let mut spread = SpreadScorer::new(job, group);
        spread.populate(&ctx.proposed, &node_by_id);
        Self {
            task_group: group.name.clone(),
            feasibility: GroupFeasibility::new(job, group),
            distinct_hosts: DistinctHosts::of(job, group),
            distinct_properties,
            ask: ResourceAsk::of(group),
            port_ask: PortAsk::of(group),
            device_ask: DeviceAsk::of(group),
            core_ask: CoreAsk::of(group),
            affinity: AffinityScorer::new(job, group),
            spread,
            desired_count: u32::try_from(group.count.max(1)).unwrap_or(1),
            distinct_hosts_key: DISTINCT_HOSTS.into(),
            alloc_name: String::new(),
            memo: FastMap::default(),
        }
    }

    /// How many feasible nodes to score when affinities or spreads change the ranking: the
    /// group's count, at least [`MIN_SCORED_WITH_PREFERENCES`] (Nomad: scoring spread across all
    /// nodes is quadratic); `None` without them.
    pub fn preference_limit(&self) -> Option<usize> {
        (!self.affinity.is_empty() || !self.spread.is_empty()).then(|| {
            usize::try_from(self.desired_count)
                .unwrap_or(usize::MAX)
                .max(MIN_SCORED_WITH_PREFERENCES)
        })
    }

    /// Names the allocation the next [`Stack::select`] places.
    pub fn placing(&mut self, alloc_name: &str) {
        alloc_name.clone_into(&mut self.alloc_name);
    }

    /// Notes a placement on `node` in the plan-dependent counts.
    pub fn record_placement(&mut self, node: &Node) {
        for property in &mut self.distinct_properties {
            property.record(node);
        }
        self.spread.record(node);
    }

    /// Notes a stop on `node` of one of the group's allocations.
    pub fn record_stop(&mut self, node: &Node) {
        for property in &mut self.distinct_properties {
            property.forget(node);
        }
        self.spread.forget(node);
    }

    fn static_check(&mut self, idx: usize, node: &Node) -> Result<(), Arc<str>> {
        let verdict = match self.memo.get(&idx) {
            Some(verdict) => verdict.clone(),
            None => {
                let verdict = self.feasibility.check(node);
                self.memo.insert(idx, verdict.clone());
                verdict
            }
        };
        verdict.and_then(|()| self.feasibility.check_allocation(node, &self.alloc_name))
    }
}

/// A feasible node with its scores, its device instances, and its ports once chosen
/// ([`assign_chosen_ports`]).
#[derive(Clone, Debug)]
pub struct RankedNode {
    pub node: Arc<Node>,
    /// The node's position in the context's nodes.
    pub node_idx: usize,
    pub ports: Vec<AllocatedPort>,
    pub devices: DeviceOffer,
    /// The cores its tasks reserve (`resources { cores }`).
    pub cores: CoreOffer,
    pub scores: ScoreParts,
    pub final_score: f64,
}

/// Checks and scores one node for one placement; records why it was rejected in `metric`.
pub fn rank_node(
    ctx: &mut EvalContext,
    selector: &mut GroupSelector,
    algorithm: SchedulerAlgorithm,
    node_idx: usize,
    penalty_nodes: &[NodeId],
    metric: &mut AllocMetric,
) -> Option<RankedNode> {
    metric.nodes_evaluated += 1;
    let node = &ctx.all_nodes[node_idx].clone();
    if let Err(reason) = selector.static_check(node_idx, node) {
        metrics::filter_node(metric, node, &reason);
        return None;
    }
    if !selector
        .distinct_hosts
        .allows(&ctx.proposed, &node.id, &selector.task_group)
    {
        metrics::filter_node(metric, node, &selector.distinct_hosts_key);
        return None;
    }
    if let Some(property) = selector
        .distinct_properties
        .iter()
        .find(|property| !property.allows(node))
    {
        metrics::filter_node(metric, node, &property.key);
        return None;
    }
    let entry = ctx.entry_at(node_idx);
    if let Err(dimension) = check_fit(&entry.capacity, &entry.usage, &selector.ask) {
        metrics::exhaust_node(metric, node, dimension);
        return None;
    }
    if !selector.port_ask.is_empty()
        && let Err(dimension) = check_ports(&selector.port_ask, &entry.capacity, &entry.usage)
    {
        metrics::exhaust_node(metric, node, dimension);
        return None;
    }
    let cores = if selector.core_ask.is_empty() {
        CoreOffer::default()
    } else {
        match selector
            .core_ask
            .assign(&entry.capacity, &entry.usage, &selector.ask)
        {
            Ok(offer) => offer,
            Err(dimension) => {
                metrics::exhaust_node(metric, node, dimension);
                return None;
            }
        }
    };
    let devices = if selector.device_ask.is_empty() {
        DeviceOffer::default()
    } else {
        match selector.device_ask.assign(node, &entry.usage) {
            Ok(offer) => offer,
            Err(dimension) => {
                metrics::exhaust_node(metric, node, dimension);
                return None;
            }
        }
    };
    let scores = ScoreParts {
        fit: fit_score(
            algorithm,
            &entry.capacity,
            entry.usage.cpu + selector.ask.cpu,
            entry.usage.memory_mb + selector.ask.memory_mb,
        ),
        anti_affinity: anti_affinity_score(
            ctx.proposed
                .count_on_node(&node.id, Some(&selector.task_group)),
            selector.desired_count,
        ),
        reschedule_penalty: penalty_nodes.contains(&node.id).then_some(-1.0),
        affinity: selector.affinity.score(node),
        spread: selector.spread.score(node),
        devices: devices.score,
    };
    Some(RankedNode {
        node: node.clone(),
        node_idx,
        ports: Vec::new(),
        devices,
        cores,
        final_score: scores.final_score(),
        scores,
    })
}

/// Chooses the host ports of the node a placement goes to. Ports are only checked while ranking,
/// so only the chosen node draws from the generator.
pub fn assign_chosen_ports(
    ctx: &mut EvalContext,
    selector: &GroupSelector,
    ranked: &mut RankedNode,
) {
    if selector.port_ask.is_empty() {
        return;
    }
    let entry = ctx
        .nodes
        .entry(&*ctx.state, &ctx.all_nodes, ranked.node_idx);
    let host_ip = host_ip(&ranked.node);
    // check_ports admitted this node with this usage, so assignment finds free ports.
    ranked.ports = assign_ports(
        &selector.port_ask,
        &entry.capacity,
        &entry.usage,
        &host_ip,
        &mut ctx.rng,
    )
    .unwrap_or_default();
}

/// The shuffled candidates of one evaluation and where the last placement stopped.
pub struct Stack {
    /// Positions in the context's nodes.
    candidates: Vec<usize>,
    offset: usize,
    base_limit: usize,
    pub algorithm: SchedulerAlgorithm,
}

impl Stack {
    /// `batch` stacks look at 2 feasible nodes, service stacks at log2(n) (at least 2).
    pub fn new(
        ctx: &mut EvalContext,
        mut candidates: Vec<usize>,
        batch: bool,
        algorithm: SchedulerAlgorithm,
    ) -> Self {
        ctx.rng.shuffle(&mut candidates);
        let n_candidates = candidates.len();
        let mut base_limit = 2;
        if !batch && n_candidates > 0 {
            let log_limit = (n_candidates as f64).log2().ceil() as usize;
            base_limit = base_limit.max(log_limit);
        }
        Self {
            candidates,
            offset: 0,
            base_limit,
            algorithm,
        }
    }

    pub fn n_candidates(&self) -> usize {
        self.candidates.len()
    }

    /// Chooses a node for one allocation of the selector's group, or `None` (with `metric`
    /// explaining why) if no candidate can take it.
    pub fn select(
        &mut self,
        ctx: &mut EvalContext,
        selector: &mut GroupSelector,
        penalty_nodes: &[NodeId],
        metric: &mut AllocMetric,
    ) -> Option<RankedNode> {
        let limit = selector
            .preference_limit()
            .map_or(self.base_limit, |limit| limit.max(self.base_limit));
        let n_candidates = self.candidates.len();
        let mut visited = 0;
        let mut next_from_source = |stack: &mut Self, metric: &mut AllocMetric| {
            while visited < n_candidates {
                let idx = stack.offset;
                stack.offset = (stack.offset + 1) % n_candidates;
                visited += 1;
                let node_idx = stack.candidates[idx];
                if let Some(ranked) = rank_node(
                    ctx,
                    selector,
                    stack.algorithm,
                    node_idx,
                    penalty_nodes,
                    metric,
                ) {
                    return Some(ranked);
                }
            }
            None
        };
        let mut skipped: VecDeque<RankedNode> = VecDeque::new();
        let mut seen = 0;
        let mut best: Option<RankedNode> = None;
        let mut top: Vec<(f64, RankedNode)> = Vec::new();
        while seen < limit {
            let mut option = next_from_source(self, metric);
            while let Some(candidate) = option.take() {
                if candidate.final_score <= SKIP_SCORE_THRESHOLD && skipped.len() < MAX_SKIP {
                    skipped.push_back(candidate);
                    option = next_from_source(self, metric);
                } else {
                    option = Some(candidate);
                    break;
                }
            }
            let Some(option) = option.or_else(|| skipped.pop_front()) else {
                break;
            };
            seen += 1;
            retain_top(&mut top, &option);
            if best
                .as_ref()
                .is_none_or(|best| option.final_score > best.final_score)
            {
                best = Some(option);
            }
        }
        metric.score_meta_data = top
            .iter()
            .map(|(_, ranked)| ranked.scores.to_meta(&ranked.node.id))
            .collect();
        if let Some(best) = &mut best {
            assign_chosen_ports(ctx, selector, best);
        }
        best
    }
}

fn retain_top(top: &mut Vec<(f64, RankedNode)>, option: &RankedNode) {
    if top.len() == RETAINED_NODE_SCORES
        && top
            .last()
            .is_some_and(|(score, _)| *score >= option.final_score)
    {
        return;
    }
    let at = top.partition_point(|(score, _)| *score >= option.final_score);
    top.insert(at, (option.final_score, option.clone()));
    top.truncate(RETAINED_NODE_SCORES);
}
