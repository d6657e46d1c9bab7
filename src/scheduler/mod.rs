//! The schedulers: pure functions from a state snapshot and an evaluation to a plan.
//!
//! A scheduler reads the cluster through [`State`] (an immutable snapshot) and acts only through
//! [`Planner`]: it submits plans, updates its evaluation and creates follow-up evaluations. The
//! server's workers implement `Planner` over Raft; tests implement it with a recording harness.
//!
//! Invariant: this module knows nothing of I/O, clocks or threads. Time comes in through
//! [`SchedulerConfig::now_unix_nanos`], randomness is seeded from the evaluation ID, so a scheduler
//! given the same snapshot and evaluation makes the same plan — but for the IDs of what it creates
//! (allocations, follow-up and blocked evaluations): random UUIDs made here, before Raft, so that
//! apply stays deterministic (see `placement.rs`).
//! Boundary: depends on `crate::structs` only.
//!
//! Entry point: [`process_eval`]. Code map:
//!
//! - `reconcile/`: desired against actual allocations — what to stop, place, update;
//! - `feasible/`: one checker per file — which nodes can run a group at all;
//! - `stack.rs`, `rank.rs`, `spread.rs`: which feasible node is best for one more allocation;
//! - `generic.rs` (service, batch) and `system.rs` (system, sysbatch): the two schedulers;
//! - `context.rs`, `usage.rs`, `proposed.rs`: the plan so far, kept incrementally;
//! - `harness.rs`: an in-memory `State` and a recording `Planner` for tests and benchmarks.
//!
//! Deployments: a service group with an `update` block rolls a destructive change out as a
//! deployment (`reconcile/deployment.rs`): `max_parallel` at a time beyond what is healthy,
//! canaries first until promoted; the leader's deployment watcher moves it along.
//!
//! Not yet (TODO(#4)): preemption, task-level networks, and
//! `max_client_disconnect` (allocations on disconnected nodes are treated as lost).
//!
//! Nomad: `scheduler/scheduler.go` (the `Scheduler`, `State` and `Planner` interfaces).

pub mod context;
pub mod fast_hash;
pub mod feasible;
pub mod generic;
pub mod harness;
mod metrics;
pub mod placement;
pub mod proposed;
pub mod rank;
pub mod reconcile;
pub mod seed;
pub mod spread;
pub mod stack;
pub mod system;
pub mod usage;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use self::rank::SchedulerAlgorithm;
pub use self::usage::NodeUsage;
use crate::structs::{
    Allocation, Deployment, EvalId, Evaluation, Job, JobId, JobType, Node, NodeId, Plan, PlanResult,
};

/// Runs the scheduler for the evaluation's type: builds a plan from the snapshot, submits it,
/// retries after partial commits, and records the outcome on the evaluation through `planner`.
pub fn process_eval(
    state: Arc<dyn State>,
    planner: &mut dyn Planner,
    config: &SchedulerConfig,
    eval: &Evaluation,
) -> Result<(), SchedulerError> {
    match eval.eval_type {
        JobType::Service | JobType::Batch => generic::process(state, planner, config, eval),
        JobType::System | JobType::Sysbatch => system::process(state, planner, config, eval),
    }
}

/// An immutable view of the cluster state at one Raft index.
pub trait State: Send + Sync {
    /// The Raft index this view reflects.
    fn index(&self) -> u64;
    /// Every node, in ID order (the scheduler binary-searches it; another order only costs speed).
    fn nodes(&self) -> Vec<Arc<Node>>;
    fn node_by_id(&self, node_id: &NodeId) -> Option<Arc<Node>>;
    fn job_by_id(&self, namespace: &str, job_id: &JobId) -> Option<Arc<Job>>;
    /// The job's allocations of every version, terminal ones included.
    fn allocs_by_job(&self, namespace: &str, job_id: &JobId) -> Vec<Arc<Allocation>>;
    /// The node's allocations of every job, terminal ones included.
    fn allocs_by_node(&self, node_id: &NodeId) -> Vec<Arc<Allocation>>;
    /// The job's latest deployment, if any.
    fn latest_deployment_by_job(&self, namespace: &str, job_id: &JobId) -> Option<Arc<Deployment>>;
    /// What the node's non-terminal allocations use. The default sums [`State::allocs_by_node`];
    /// a store that keeps this as an index (updated on every alloc write) saves the scheduler a
    /// scan of the node's allocations per evaluation.
    fn node_usage(&self, node_id: &NodeId) -> NodeUsage {
        NodeUsage::from_allocs(self.allocs_by_node(node_id).iter().map(|alloc| &**alloc))
    }
}

/// Where a scheduler's decisions go.
pub trait Planner {
    /// Submits a plan. Returns what was committed and, if part was refused, a fresher state to
    /// plan the remainder against (required then: without it the scheduler fails the attempt
    /// rather than plan twice against the same snapshot).
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), PlannerError>;
    /// Records the evaluation's outcome (status, failed placements, queued allocations).
    fn update_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError>;
    /// Creates a follow-up evaluation (delayed reschedules, blocked evaluations).
    fn create_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError>;
    /// Re-blocks an evaluation that was unblocked but still cannot place everything.
    fn reblock_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError>;
}

/// The planner could not take the request (the server lost leadership, Raft failed...).
#[derive(Debug, thiserror::Error)]
#[error("planner: {0}")]
pub struct PlannerError(pub String);

/// Everything outside the snapshot a scheduler may depend on.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// "Now", fixed by the worker before the scheduler runs.
    pub now_unix_nanos: i64,
    /// How many times in a row a scheduler re-plans after a plan that committed nothing before
    /// giving up (an attempt that commits something resets the count).
    pub max_plan_attempts: u32,
    /// Bin packing (Nomad's default) or spread, cluster-wide.
    pub algorithm: SchedulerAlgorithm,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            now_unix_nanos: 0,
            max_plan_attempts: 5,
            algorithm: SchedulerAlgorithm::BinPack,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("evaluation {eval_id}: {source}")]
    Planner {
        eval_id: EvalId,
        source: PlannerError,
    },
    #[error("evaluation {eval_id}: gave up after {attempts} plan attempts")]
    MaxPlanAttempts { eval_id: EvalId, attempts: u32 },
    #[error("evaluation {eval_id}: scheduler type {eval_type:?} is not supported")]
    UnsupportedType { eval_id: EvalId, eval_type: String },
}
