//! The plan: what a scheduler wants to change, and what the leader committed of it.
//!
//! Schedulers never write state. They submit a [`Plan`]; the leader's plan applier re-checks it
//! against the latest state (a node may have filled up since the scheduler's snapshot) and commits
//! what still fits through Raft, reporting the rest back in a [`PlanResult`] (Nomad:
//! `nomad/structs/structs.go` `Plan`, `PlanResult`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    Allocation, Deployment, DeploymentId, DeploymentStatus, EvalId, Job, NodeId, nullable,
};

/// A change of a deployment's status requested by a scheduler.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeploymentStatusUpdate {
    #[serde(rename = "DeploymentID")]
    pub deployment_id: DeploymentId,
    pub status: DeploymentStatus,
    pub status_description: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Plan {
    #[serde(rename = "EvalID")]
    pub eval_id: EvalId,
    /// The broker's token for the evaluation; a plan with a stale token is rejected.
    pub eval_token: String,
    pub priority: i32,
    /// Commit all of it or nothing.
    pub all_at_once: bool,
    /// The job version the placements run; `None` for plans that only stop allocations.
    pub job: Option<std::sync::Arc<Job>>,
    /// Allocations to stop or evict, by node; carry the new desired status and description.
    #[serde(deserialize_with = "nullable::default")]
    pub node_update: BTreeMap<NodeId, Vec<Allocation>>,
    /// Allocations to place or update in place, by node.
    #[serde(deserialize_with = "nullable::default")]
    pub node_allocation: BTreeMap<NodeId, Vec<Allocation>>,
    /// A deployment to create or replace.
    pub deployment: Option<Deployment>,
    #[serde(deserialize_with = "nullable::default")]
    pub deployment_updates: Vec<DeploymentStatusUpdate>,
    /// The state index the scheduler planned against.
    pub snapshot_index: u64,
}

impl Plan {
    /// True if the plan changes nothing.
    pub fn is_no_op(&self) -> bool {
        self.node_update.values().all(Vec::is_empty)
            && self.node_allocation.values().all(Vec::is_empty)
            && self.deployment.is_none()
            && self.deployment_updates.is_empty()
    }

    pub fn append_stopped_alloc(
        &mut self,
        alloc: &Allocation,
        description: &str,
        client_status: Option<super::AllocClientStatus>,
    ) {
        let mut stopped = alloc.clone();
        stopped.desired_status = super::AllocDesiredStatus::Stop;
        stopped.desired_description = description.to_owned();
        if let Some(client_status) = client_status {
            stopped.client_status = client_status;
        }
        // The job is known to the state already: don't ship it again.
        stopped.job = None;
        self.node_update
            .entry(alloc.node_id.clone())
            .or_default()
            .push(stopped);
    }

    /// Marks `alloc` `unknown` (its node is disconnected), leaving it to run: an entry of
    /// `node_update` whose desired status stays `run`. Nomad: `Plan.AppendUnknownAlloc`.
    pub fn append_unknown_alloc(&mut self, alloc: &Allocation) {
        let mut unknown = alloc.clone();
        unknown.client_status = super::AllocClientStatus::Unknown;
        unknown.job = None;
        self.node_update
            .entry(alloc.node_id.clone())
            .or_default()
            .push(unknown);
    }

    pub fn append_alloc(&mut self, alloc: Allocation) {
        self.node_allocation
            .entry(alloc.node_id.clone())
            .or_default()
            .push(alloc);
    }
}

/// What the leader committed of a plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PlanResult {
    /// Shared with the committed Raft entry: a result costs no copy of its allocations.
    #[serde(deserialize_with = "nullable::default")]
    pub node_update: BTreeMap<NodeId, Vec<Arc<Allocation>>>,
    #[serde(deserialize_with = "nullable::default")]
    pub node_allocation: BTreeMap<NodeId, Vec<Arc<Allocation>>>,
    pub deployment: Option<Deployment>,
    #[serde(deserialize_with = "nullable::default")]
    pub deployment_updates: Vec<DeploymentStatusUpdate>,
    /// Non-zero when part of the plan was refused: the scheduler must refresh its state to at
    /// least this index and plan again.
    pub refresh_index: u64,
    /// The Raft index at which the committed part was applied.
    pub alloc_index: u64,
}

/// A copy of a plan's per-node allocations in the shape of a [`PlanResult`]'s.
pub fn shared_allocs(
    map: &BTreeMap<NodeId, Vec<Allocation>>,
) -> BTreeMap<NodeId, Vec<Arc<Allocation>>> {
    map.iter()
        .map(|(node_id, allocs)| {
            (
                node_id.clone(),
                allocs.iter().cloned().map(Arc::new).collect(),
            )
        })
        .collect()
}

impl PlanResult {
    /// True if everything the plan asked for was committed.
    pub fn is_full_commit(&self, plan: &Plan) -> bool {
        fn count<T>(map: &BTreeMap<NodeId, Vec<T>>) -> usize {
            map.values().map(Vec::len).sum()
        }
        count(&self.node_update) == count(&plan.node_update)
            && count(&self.node_allocation) == count(&plan.node_allocation)
    }
}
