//! The leader's plan queue and plan applier: optimistic concurrency for the schedulers.
//!
//! Workers plan against snapshots that may be stale. The applier takes plans one at a time,
//! re-checks every node's part against the latest state — node still ready and eligible, CPU,
//! memory and disk still free, ports and device instances still free — and commits what fits as
//! one `PlanApply` through Raft. What did not fit is left out of the [`PlanResult`], whose
//! `refresh_index` tells the scheduler to refresh its state and plan the rest again.
//!
//! Invariant: a node's allocations never exceed its resources nor share a port or a device
//! instance, and a new allocation gets no unhealthy instance, whatever the workers planned,
//! because every placement passes here against the state of the commit before.
//!
//! Nomad: `nomad/plan_apply.go` (`evaluatePlan`, `evaluateNodePlan`), `nomad/plan_queue.go`.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Server;
use super::raft::{Command, PlanApplyRequest};
use super::state::StateSnapshot;
use crate::scheduler::usage::{
    NodeCapacity, NodeUsage, alloc_cores, alloc_devices, alloc_ports, parse_port_spec,
};
use crate::structs::{Allocation, Job, Node, NodeId, Plan, PlanResult};

/// Why a plan was not applied at all.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("plan for evaluation {0}: the evaluation token is not outstanding")]
    StaleToken(String),
    #[error("plan applier is not running")]
    Closed,
    #[error("committing the plan: {0}")]
    Commit(String),
    /// The job was purged or stopped after the worker took its snapshot: nothing may be placed
    /// for it (a deregister cancels the evaluations in flight).
    #[error("plan for evaluation {eval_id}: job {job_id:?} is {state}; its placements are refused")]
    JobGone {
        eval_id: String,
        job_id: String,
        state: &'static str,
    },
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
async fn apply_one(server: &Server, mut plan: Plan) -> Result<PlanResult, PlanError> {
    if !server.broker.outstanding(&plan.eval_id, &plan.eval_token) {
        return Err(PlanError::StaleToken(plan.eval_id.to_string()));
    }
    let snapshot = server.store.snapshot();
    check_job_live(&snapshot, &plan)?;
    let verdict = accepted_nodes(&snapshot, &plan);
    // The accepted part moves out of the plan into the request: no copy of the allocations.
    let plan_job = plan.job.clone();
    let mut placed = Vec::new();
    let mut stopped = Vec::new();
    for node_id in &verdict.accepted {
        if let Some(allocs) = plan.node_allocation.remove(node_id) {
            placed.extend(allocs.into_iter().map(|mut alloc| {
                if same_job(&alloc, plan_job.as_ref()) {
                    alloc.job = None;
                }
                Arc::new(alloc)
            }));
        }
        if let Some(allocs) = plan.node_update.remove(node_id) {
            stopped.extend(allocs.into_iter().map(|mut alloc| {
                alloc.job = None;
                Arc::new(alloc)
            }));
        }
    }
    let keep_deployment = verdict.refused.is_empty() || !plan.all_at_once;
    let request = PlanApplyRequest {
        job: plan_job,
        eval_id: plan.eval_id.clone(),
        stopped,
        placed,
        deployment: plan.deployment.take().filter(|_| keep_deployment),
        deployment_updates: if keep_deployment {
            std::mem::take(&mut plan.deployment_updates)
        } else {
            Vec::new()
        },
        now: super::now_unix_nanos(),
    };
    let mut result = PlanResult {
        refresh_index: if verdict.refused.is_empty() {
            0
        } else {
            snapshot.tables().indexes.latest.max(1)
        },
        ..PlanResult::default()
    };
    if request.placed.is_empty()
        && request.stopped.is_empty()
        && request.deployment.is_none()
        && request.deployment_updates.is_empty()
    {
        return Ok(result);
    }
    let request = Arc::new(request);
    let response = server
        .write(Command::PlanApply(request.clone()))
        .await
        .map_err(|error| PlanError::Commit(error.to_string()))?;
    result.alloc_index = response.index;
    for alloc in &request.placed {
        result
            .node_allocation
            .entry(alloc.node_id.clone())
            .or_default()
            .push(alloc.clone());
    }
    for alloc in &request.stopped {
        result
            .node_update
            .entry(alloc.node_id.clone())
            .or_default()
            .push(alloc.clone());
    }
    result.deployment = request.deployment.clone();
    result.deployment_updates = request.deployment_updates.clone();
    Ok(result)
}

/// Refuses a plan that places allocations for a job that is gone (purged) or stopped in the
/// latest state: its evaluation was planned before the deregister and is cancelled by it.
pub fn check_job_live(snapshot: &StateSnapshot, plan: &Plan) -> Result<(), PlanError> {
    let Some(job) = &plan.job else {
        return Ok(());
    };
    if plan.node_allocation.values().all(Vec::is_empty) {
        return Ok(());
    }
    let state = match snapshot.job(&job.namespace, &job.id) {
        None => "purged",
        Some(current) if current.stop => "stopped",
        Some(_) => return Ok(()),
    };
    Err(PlanError::JobGone {
        eval_id: plan.eval_id.to_string(),
        job_id: job.id.to_string(),
        state,
    })
}

/// True if the allocation's job is the plan's job (apply attaches the one shared copy).
fn same_job(alloc: &Allocation, plan_job: Option<&Arc<Job>>) -> bool {
    match (&alloc.job, plan_job) {
        (Some(alloc_job), Some(plan_job)) => {
            Arc::ptr_eq(alloc_job, plan_job)
                || (alloc_job.id == plan_job.id
                    && alloc_job.namespace == plan_job.namespace
                    && alloc_job.version == plan_job.version
                    && alloc_job.job_modify_index == plan_job.job_modify_index)
        }
        _ => false,
    }
}

/// Which nodes' parts of a plan fit the state, and which do not.
#[derive(Debug, Default)]
pub struct Verdict {
    pub accepted: Vec<NodeId>,
    pub refused: Vec<(NodeId, &'static str)>,
}

/// Checks each node's part of the plan against `snapshot`. With `all_at_once`, one refusal
/// refuses everything.
pub fn accepted_nodes(snapshot: &StateSnapshot, plan: &Plan) -> Verdict {
    let nodes: std::collections::BTreeSet<&NodeId> = plan
        .node_update
        .keys()
        .chain(plan.node_allocation.keys())
        .collect();
    let mut verdict = Verdict::default();
    for node_id in nodes {
        match evaluate_node_plan(snapshot, plan, node_id) {
            Ok(()) => verdict.accepted.push(node_id.clone()),
            Err(reason) => {
                tracing::debug!(node_id = %node_id, reason, "plan for node refused");
                verdict.refused.push((node_id.clone(), reason));
            }
        }
    }
    if plan.all_at_once && !verdict.refused.is_empty() {
        verdict.accepted.clear();
    }
    verdict
}

/// What the leader would commit of `plan` against `snapshot` (without committing it).
pub fn evaluate_plan(snapshot: &StateSnapshot, plan: &Plan) -> PlanResult {
    let verdict = accepted_nodes(snapshot, plan);
    let mut result = PlanResult::default();
    for node_id in &verdict.accepted {
        if let Some(updates) = plan
            .node_update
            .get(node_id)
            .filter(|allocs| !allocs.is_empty())
        {
            result.node_update.insert(
                node_id.clone(),
                updates.iter().cloned().map(Arc::new).collect(),
            );
        }
        if let Some(placements) = plan
            .node_allocation
            .get(node_id)
            .filter(|allocs| !allocs.is_empty())
        {
            result.node_allocation.insert(
                node_id.clone(),
                placements.iter().cloned().map(Arc::new).collect(),
            );
        }
    }
    if verdict.refused.is_empty() || !plan.all_at_once {
        result.deployment = plan.deployment.clone();
        result.deployment_updates = plan.deployment_updates.clone();
    }
    if !verdict.refused.is_empty() {
        result.refresh_index = snapshot.tables().indexes.latest.max(1);
    }
    result
}

/// Nomad: `plan_apply.go` `evaluateNodePlan`. Starts from the node's usage index and adjusts it
/// by the plan's stops and placements, so the cost is the size of the plan, not of the node.
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
    let mut usage = tables
        .node_usage
        .get(node_id)
        .map(|usage| (**usage).clone())
        .unwrap_or_default();
    // What the plan stops or replaces in place no longer counts.
    if let Some(existing) = tables.allocs_by_node.get(node_id) {
        let mut removed: BTreeSet<&str> = BTreeSet::new();
        let updates = plan.node_update.get(node_id).into_iter().flatten();
        for alloc in updates.chain(placements) {
            if let Some(current) = existing.get(&alloc.id)
                && !current.is_terminal()
                && removed.insert(alloc.id.as_str())
            {
                usage.remove(current);
            }
        }
    }
    let reserved = parse_port_spec(&node.reserved_resources.reserved_host_ports);
    for alloc in placements.iter().filter(|alloc| !alloc.is_terminal()) {
        for port in alloc_ports(alloc) {
            if usage.port_in_use(port) || reserved.contains(&port) {
                return Err("port collision");
            }
        }
        let is_new = tables
            .allocs_by_node
            .get(node_id)
            .is_none_or(|existing| existing.get(&alloc.id).is_none());
        check_devices(node, &usage, alloc, is_new)?;
        check_cores(node, &usage, alloc, is_new)?;
        usage.add(alloc);
    }
    let resources = &node.node_resources;
    let reserved = &node.reserved_resources;
    if usage.cpu > resources.cpu.cpu_shares - reserved.cpu.cpu_shares {
        return Err("cpu exhausted");
    }
    if usage.memory_mb > resources.memory.memory_mb - reserved.memory.memory_mb {
        return Err("memory exhausted");
    }
    if resources.disk.disk_mb > 0 && usage.disk_mb > resources.disk.disk_mb - reserved.disk.disk_mb
    {
        return Err("disk exhausted");
    }
    Ok(())
}

/// Every core the allocation reserves is reserved by no other allocation on the node (Nomad:
/// `AllocsFit`, dimension "cores"); a new allocation's cores are ones the node offers for
/// reservation.
fn check_cores(
    node: &Node,
    usage: &NodeUsage,
    alloc: &Allocation,
    is_new: bool,
) -> Result<(), &'static str> {
    let held = alloc_cores(alloc);
    if held.is_empty() {
        return Ok(());
    }
    let reservable = is_new.then(|| NodeCapacity::of(node).reservable_cores);
    for (at, core) in held.iter().enumerate() {
        if usage.core_in_use(*core) || held[..at].contains(core) {
            return Err("cores oversubscribed");
        }
        if reservable
            .as_ref()
            .is_some_and(|reservable| reservable.binary_search(core).is_err())
        {
            return Err("core not reservable");
        }
    }
    Ok(())
}

/// Every device instance the allocation holds is held by no other allocation on the node (Nomad:
/// `AllocsFit` with `checkDevices`, "device oversubscribed"); a new allocation's instances exist
/// and are healthy (one updated in place keeps its instances whatever their health since).
fn check_devices(
    node: &Node,
    usage: &NodeUsage,
    alloc: &Allocation,
    is_new: bool,
) -> Result<(), &'static str> {
    let held = alloc_devices(alloc);
    for (at, (group, id)) in held.iter().enumerate() {
        if usage.device_in_use(group, id) || held[..at].contains(&(group.clone(), id.clone())) {
            return Err("device oversubscribed");
        }
        if !is_new {
            continue;
        }
        let healthy = node
            .node_resources
            .devices
            .iter()
            .filter(|device| device.id() == *group)
            .flat_map(|device| device.instances.iter())
            .any(|instance| instance.id == *id && instance.healthy);
        if !healthy {
            return Err("device not available");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
