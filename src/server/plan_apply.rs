//! The leader's plan queue and plan applier: optimistic concurrency for the schedulers.
//!
//! Workers plan against snapshots that may be stale. The applier takes plans one at a time,
//! re-checks every node's part against the latest state — node still ready and eligible, CPU,
//! memory and disk still free, ports still free — and commits what fits as one `PlanApply` through
//! Raft. What did not fit is left out of the [`PlanResult`], whose `refresh_index` tells the
//! scheduler to refresh its state and plan the rest again.
//!
//! Invariant: a node's allocations never exceed its resources nor share a port, whatever the
//! workers planned, because every placement passes here against the state of the commit before.
//!
//! Nomad: `nomad/plan_apply.go` (`evaluatePlan`, `evaluateNodePlan`), `nomad/plan_queue.go`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Server;
use super::raft::{Command, PlanApplyRequest};
use super::state::StateSnapshot;
use crate::structs::{Allocation, NodeId, Plan, PlanResult};

/// Why a plan was not applied at all.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("plan for evaluation {0}: the evaluation token is not outstanding")]
    StaleToken(String),
    #[error("plan applier is not running")]
    Closed,
    #[error("committing the plan: {0}")]
    Commit(String),
}

struct PendingPlan {
    plan: Plan,
    reply: oneshot::Sender<Result<PlanResult, PlanError>>,
}

/// The queue workers submit plans to.
#[derive(Clone, Debug)]
pub struct PlanQueue {
    sender: mpsc::UnboundedSender<PendingPlanBox>,
}

/// `PendingPlan` behind a box, so the queue's type can be `Debug` without the plan.
struct PendingPlanBox(Box<PendingPlan>);

impl std::fmt::Debug for PendingPlanBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPlan")
            .field("eval_id", &self.0.plan.eval_id)
            .finish_non_exhaustive()
    }
}

pub struct PlanReceiver(mpsc::UnboundedReceiver<PendingPlanBox>);

impl PlanQueue {
    pub fn new() -> (Self, PlanReceiver) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { sender }, PlanReceiver(receiver))
    }

    /// Submits a plan and waits for what was committed of it.
    pub async fn submit(&self, plan: Plan) -> Result<PlanResult, PlanError> {
        let (reply, result) = oneshot::channel();
        self.sender
            .send(PendingPlanBox(Box::new(PendingPlan { plan, reply })))
            .map_err(|_| PlanError::Closed)?;
        result.await.map_err(|_| PlanError::Closed)?
    }
}

/// The applier loop: one plan at a time, for the life of the server.
pub(super) async fn run(server: Arc<Server>, mut receiver: PlanReceiver) {
    while let Some(PendingPlanBox(pending)) = receiver.0.recv().await {
        let PendingPlan { plan, reply } = *pending;
        let result = apply_one(&server, plan).await;
        // The worker may have given up waiting; nothing to do then.
        let _ = reply.send(result);
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(eval_id = %plan.eval_id))]
async fn apply_one(server: &Server, plan: Plan) -> Result<PlanResult, PlanError> {
    if !server.broker.outstanding(&plan.eval_id, &plan.eval_token) {
        return Err(PlanError::StaleToken(plan.eval_id.0.clone()));
    }
    let snapshot = server.store.snapshot();
    let mut result = evaluate_plan(&snapshot, &plan);
    let request = plan_request(&plan, &result);
    if request.placed.is_empty()
        && request.stopped.is_empty()
        && request.deployment.is_none()
        && request.deployment_updates.is_empty()
    {
        return Ok(result);
    }
    let response = server
        .write(Command::PlanApply(Arc::new(request)))
        .await
        .map_err(|error| PlanError::Commit(error.to_string()))?;
    result.alloc_index = response.index;
    Ok(result)
}

/// What the plan's committed part writes to the log: allocations without their job when it is
/// the plan's job (apply attaches the one shared copy).
fn plan_request(plan: &Plan, result: &PlanResult) -> PlanApplyRequest {
    let same_job = |alloc: &Allocation| match (&alloc.job, &plan.job) {
        (Some(alloc_job), Some(plan_job)) => {
            Arc::ptr_eq(alloc_job, plan_job)
                || (alloc_job.id == plan_job.id
                    && alloc_job.namespace == plan_job.namespace
                    && alloc_job.version == plan_job.version
                    && alloc_job.job_modify_index == plan_job.job_modify_index)
        }
        _ => false,
    };
    let placed = result
        .node_allocation
        .values()
        .flatten()
        .map(|alloc| {
            let mut alloc = alloc.clone();
            if same_job(&alloc) {
                alloc.job = None;
            }
            alloc
        })
        .collect();
    let stopped = result
        .node_update
        .values()
        .flatten()
        .map(|alloc| {
            let mut alloc = alloc.clone();
            alloc.job = None;
            alloc
        })
        .collect();
    PlanApplyRequest {
        job: plan.job.clone(),
        eval_id: plan.eval_id.clone(),
        stopped,
        placed,
        deployment: result.deployment.clone(),
        deployment_updates: result.deployment_updates.clone(),
        now: super::now_unix_nanos(),
    }
}

/// Checks each node's part of the plan against `snapshot` and returns the part that fits.
pub fn evaluate_plan(snapshot: &StateSnapshot, plan: &Plan) -> PlanResult {
    let mut result = PlanResult {
        deployment: plan.deployment.clone(),
        deployment_updates: plan.deployment_updates.clone(),
        ..PlanResult::default()
    };
    let nodes: std::collections::BTreeSet<&NodeId> = plan
        .node_update
        .keys()
        .chain(plan.node_allocation.keys())
        .collect();
    let mut refused = false;
    for node_id in nodes {
        match evaluate_node_plan(snapshot, plan, node_id) {
            Ok(()) => {
                if let Some(updates) = plan.node_update.get(node_id)
                    && !updates.is_empty()
                {
                    result.node_update.insert(node_id.clone(), updates.clone());
                }
                if let Some(placements) = plan.node_allocation.get(node_id)
                    && !placements.is_empty()
                {
                    result
                        .node_allocation
                        .insert(node_id.clone(), placements.clone());
                }
            }
            Err(reason) => {
                tracing::debug!(node_id = %node_id, reason, "plan for node refused");
                refused = true;
                if plan.all_at_once {
                    break;
                }
            }
        }
    }
    if refused {
        result.refresh_index = snapshot.tables().indexes.latest.max(1);
        if plan.all_at_once {
            result.node_update = BTreeMap::new();
            result.node_allocation = BTreeMap::new();
            result.deployment = None;
            result.deployment_updates = Vec::new();
        }
    }
    result
}

/// The host ports an allocation holds.
fn alloc_ports(alloc: &Allocation) -> impl Iterator<Item = i32> + '_ {
    let resources = &alloc.allocated_resources;
    let shared_networks = resources.shared.networks.iter();
    let task_networks = resources
        .tasks
        .values()
        .flat_map(|task| task.networks.iter());
    resources
        .shared
        .ports
        .iter()
        .map(|port| port.value)
        .chain(shared_networks.chain(task_networks).flat_map(|network| {
            network
                .reserved_ports
                .iter()
                .chain(network.dynamic_ports.iter())
                .map(|port| port.value)
        }))
        .filter(|port| *port > 0)
}

/// Parses a Nomad port spec ("22,80,8000-8100").
fn reserved_ports(spec: &str) -> HashSet<i32> {
    let mut ports = HashSet::new();
    for part in spec
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        match part.split_once('-') {
            Some((low, high)) => {
                if let (Ok(low), Ok(high)) = (low.trim().parse::<i32>(), high.trim().parse::<i32>())
                {
                    ports.extend(low..=high);
                }
            }
            None => {
                if let Ok(port) = part.parse() {
                    ports.insert(port);
                }
            }
        }
    }
    ports
}

/// Nomad: `plan_apply.go` `evaluateNodePlan`.
fn evaluate_node_plan(
    snapshot: &StateSnapshot,
    plan: &Plan,
    node_id: &NodeId,
) -> Result<(), &'static str> {
    let placements = plan
        .node_allocation
        .get(node_id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // Stopping allocations always fits.
    if placements.is_empty() {
        return Ok(());
    }
    let tables = snapshot.tables();
    let Some(node) = tables.nodes.get(node_id) else {
        return Err("node does not exist");
    };
    if !node.is_schedulable() {
        return Err("node is not ready for placements");
    }
    let removed: HashSet<&str> = plan
        .node_update
        .get(node_id)
        .into_iter()
        .flatten()
        .chain(placements)
        .map(|alloc| alloc.id.as_str())
        .collect();
    let existing = tables
        .allocs_by_node
        .get(node_id)
        .into_iter()
        .flat_map(|allocs| allocs.values())
        .filter(|alloc| !alloc.is_terminal() && !removed.contains(alloc.id.as_str()))
        .map(|alloc| &**alloc);
    let mut cpu = 0_i64;
    let mut memory_mb = 0_i64;
    let mut disk_mb = 0_i64;
    let mut ports = reserved_ports(&node.reserved_resources.reserved_host_ports);
    for alloc in existing.chain(placements.iter().filter(|alloc| !alloc.is_terminal())) {
        cpu += alloc.allocated_resources.total_cpu();
        memory_mb += alloc.allocated_resources.total_memory_mb();
        disk_mb += alloc.allocated_resources.shared.disk_mb;
        // An allocation lists a port both in `shared.ports` and in its network's dynamic or
        // reserved ports (as Nomad's AllocatedSharedResources does): count it once.
        let alloc_ports: HashSet<i32> = alloc_ports(alloc).collect();
        for port in alloc_ports {
            if !ports.insert(port) {
                return Err("port collision");
            }
        }
    }
    let resources = &node.node_resources;
    let reserved = &node.reserved_resources;
    if cpu > resources.cpu.cpu_shares - reserved.cpu.cpu_shares {
        return Err("cpu exhausted");
    }
    if memory_mb > resources.memory.memory_mb - reserved.memory.memory_mb {
        return Err("memory exhausted");
    }
    if resources.disk.disk_mb > 0 && disk_mb > resources.disk.disk_mb - reserved.disk.disk_mb {
        return Err("disk exhausted");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
