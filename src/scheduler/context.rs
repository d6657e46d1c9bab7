//! The evaluation context: one evaluation's view of the snapshot plus the plan being built.
//!
//! Everything a placement needs to know about the plan so far is kept here incrementally: each
//! touched node's capacity and usage (loaded once from the state, then adjusted as the plan stops
//! and places allocations) and the job's proposed allocations per node. A placement therefore
//! costs O(nodes visited), never O(allocations).
//!
//! Nomad: `scheduler/context.go` `EvalContext`.

use std::sync::Arc;

use super::State;
use super::fast_hash::FastMap;
use super::proposed::ProposedAllocs;
use super::seed::SeededRng;
use super::usage::{NodeCapacity, NodeUsage};
use crate::structs::{AllocClientStatus, Allocation, Evaluation, Job, Node, NodeId, Plan};

/// A node's capacity and its usage as the plan would leave it.
#[derive(Clone, Debug)]
pub struct NodeEntry {
    pub capacity: NodeCapacity,
    pub usage: NodeUsage,
}

/// Per-node capacity and usage, loaded lazily, by position in [`EvalContext::all_nodes`].
/// A map rather than a vector: an evaluation placing a few allocations touches a few nodes.
#[derive(Debug, Default)]
pub struct NodeTable {
    entries: FastMap<usize, NodeEntry>,
}

impl NodeTable {
    pub fn entry<'a>(
        &'a mut self,
        state: &dyn State,
        nodes: &[Arc<Node>],
        node_idx: usize,
    ) -> &'a mut NodeEntry {
        self.entries.entry(node_idx).or_insert_with(|| {
            let node = &nodes[node_idx];
            NodeEntry {
                capacity: NodeCapacity::of(node),
                usage: state.node_usage(&node.id),
            }
        })
    }
}

pub struct EvalContext {
    pub state: Arc<dyn State>,
    pub eval: Evaluation,
    pub now: i64,
    pub plan: Plan,
    pub rng: SeededRng,
    pub nodes: NodeTable,
    pub proposed: ProposedAllocs,
    /// Every node of the snapshot, in ID order.
    pub all_nodes: Vec<Arc<Node>>,
}

impl EvalContext {
    pub fn new(
        state: Arc<dyn State>,
        eval: &Evaluation,
        now: i64,
        job: Option<&Arc<Job>>,
        job_allocs: &[Arc<Allocation>],
    ) -> Self {
        // `State::nodes` returns nodes in ID order, so lookups binary-search; see `node_idx`.
        let all_nodes = state.nodes();
        let plan = Plan {
            eval_id: eval.id.clone(),
            priority: job.map_or(eval.priority, |job| job.priority),
            all_at_once: job.is_some_and(|job| job.all_at_once),
            job: job.cloned(),
            snapshot_index: state.index(),
            ..Plan::default()
        };
        Self {
            proposed: ProposedAllocs::from_allocs(job_allocs.iter().map(|alloc| &**alloc)),
            rng: SeededRng::from_eval_id(&eval.id),
            eval: eval.clone(),
            now,
            plan,
            nodes: NodeTable::default(),
            all_nodes,
            state,
        }
    }

    pub fn node_by_id(&self, node_id: &NodeId) -> Option<Arc<Node>> {
        self.node_idx(node_id)
            .map(|node_idx| self.all_nodes[node_idx].clone())
    }

    /// The node's position in [`Self::all_nodes`]. A binary search, with a scan as fallback so
    /// that a `State` breaking the ID-order promise costs speed, never correctness.
    pub fn node_idx(&self, node_id: &NodeId) -> Option<usize> {
        self.all_nodes
            .binary_search_by(|node| node.id.cmp(node_id))
            .ok()
            .or_else(|| self.all_nodes.iter().position(|node| &node.id == node_id))
    }

    /// The capacity and usage of the node at `node_idx` in [`Self::all_nodes`].
    pub fn entry_at(&mut self, node_idx: usize) -> &mut NodeEntry {
        self.nodes.entry(&*self.state, &self.all_nodes, node_idx)
    }

    /// Adds a stop to the plan and frees what the allocation held.
    pub fn stop(
        &mut self,
        alloc: &Allocation,
        description: &str,
        client_status: Option<AllocClientStatus>,
    ) {
        if !alloc.is_terminal() {
            if let Some(node_idx) = self.node_idx(&alloc.node_id) {
                self.entry_at(node_idx).usage.remove(alloc);
            }
            self.proposed.remove(&alloc.node_id, &alloc.task_group);
        }
        self.plan
            .append_stopped_alloc(alloc, description, client_status);
    }

    /// Takes back the last stop of `alloc` (its replacement could not be placed).
    pub fn undo_stop(&mut self, alloc: &Allocation) {
        let Some(stops) = self.plan.node_update.get_mut(&alloc.node_id) else {
            return;
        };
        let Some(at) = stops.iter().rposition(|stopped| stopped.id == alloc.id) else {
            return;
        };
        stops.remove(at);
        if stops.is_empty() {
            self.plan.node_update.remove(&alloc.node_id);
        }
        if !alloc.is_terminal() {
            if let Some(node_idx) = self.node_idx(&alloc.node_id) {
                self.entry_at(node_idx).usage.add(alloc);
            }
            self.proposed.add(&alloc.node_id, &alloc.task_group);
        }
    }

    /// Adds a new allocation on the node at `node_idx` to the plan.
    pub fn place(&mut self, node_idx: usize, alloc: Allocation) {
        self.entry_at(node_idx).usage.add(&alloc);
        self.proposed.add(&alloc.node_id, &alloc.task_group);
        self.plan.append_alloc(alloc);
    }

    /// Replaces an allocation by its updated self on the same node.
    pub fn update_in_place(&mut self, old: &Allocation, new: Allocation) {
        if let Some(node_idx) = self.node_idx(&old.node_id) {
            let usage = &mut self.entry_at(node_idx).usage;
            if !old.is_terminal() {
                usage.remove(old);
            }
            usage.add(&new);
        }
        self.plan.append_alloc(new);
    }
}
