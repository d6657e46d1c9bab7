//! Reconciliation: desired state (the job) against actual state (its allocations).
//!
//! The reconcilers decide *what* must happen — which allocations to stop, which to place (new,
//! replacements, destructive updates), which to update in place, which failed ones to reschedule
//! later — and leave *where* to the stack. They are pure functions over the job, its allocations and
//! the health of the nodes they run on.
//!
//! - [`cluster`]: service and batch jobs, a count of allocations anywhere (Nomad's
//!   `reconcile_cluster.go`);
//! - [`node`]: system and sysbatch jobs, one allocation per feasible node (Nomad's
//!   `reconcile_node.go`).

pub mod cluster;
pub mod deployment;
pub mod followup;
pub mod names;
pub mod node;
pub mod reschedule;
pub mod update;

use std::sync::Arc;

use crate::structs::{
    AllocClientStatus, Allocation, Deployment, DeploymentId, DeploymentStatusUpdate, Job, NodeId,
};

/// Nomad's descriptions of why an allocation is stopped (`scheduler/generic_sched.go`).
pub mod descriptions {
    pub const ALLOC_NOT_NEEDED: &str = "alloc not needed due to job update";
    pub const ALLOC_MIGRATING: &str = "alloc is being migrated";
    pub const ALLOC_UPDATING: &str = "alloc is being updated due to job update";
    pub const ALLOC_LOST: &str = "alloc is lost since its node is down";
    pub const ALLOC_RECONNECTED: &str = "alloc not needed due to disconnected client reconnect";
    pub const ALLOC_IN_PLACE: &str = "alloc updating in-place";
    pub const ALLOC_NODE_TAINTED: &str = "alloc not needed as node is tainted";
    pub const ALLOC_RESCHEDULED: &str = "alloc was rescheduled because it failed";
    pub const BLOCKED_EVAL_MAX_PLAN: &str = "created due to placement conflicts";
    pub const BLOCKED_EVAL_FAILED_PLACEMENTS: &str = "created to place remaining allocations";
    pub const RESCHEDULING_FOLLOWUP_EVAL: &str = "created for delayed rescheduling";
}

/// Why a node's allocations need attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeTaint {
    /// Down or gone: its allocations are lost.
    Lost,
    /// Disconnected since `since` (Unix nanoseconds): allocations of groups with a disconnect
    /// window become `unknown` until it passes; the others are lost.
    Disconnected { since: i64 },
    /// Draining: its allocations migrate once the drainer marks them.
    Draining,
}

impl NodeTaint {
    /// True when the node's allocations are lost unless their group says otherwise.
    pub fn loses_allocs(self) -> bool {
        matches!(self, NodeTaint::Lost | NodeTaint::Disconnected { .. })
    }
}

/// True while a node disconnected since `since` is within a disconnect `window` at `now`
/// (Unix nanoseconds).
fn within(since: i64, window: std::time::Duration, now: i64) -> bool {
    since.saturating_add(i64::try_from(window.as_nanos()).unwrap_or(i64::MAX)) > now
}

/// True when `tainted` says `node_id`'s allocations are lost (down, gone or disconnected).
pub fn node_loses_allocs(
    tainted: &std::collections::HashMap<NodeId, NodeTaint>,
    node_id: &NodeId,
) -> bool {
    tainted
        .get(node_id)
        .is_some_and(|taint| taint.loses_allocs())
}

#[derive(Clone, Debug)]
pub struct AllocStop {
    pub alloc: Arc<Allocation>,
    pub description: &'static str,
    pub client_status: Option<AllocClientStatus>,
}

#[derive(Clone, Debug)]
pub struct AllocPlacement {
    pub task_group: String,
    pub name: String,
    /// The allocation this one replaces (reschedule, lost, migration, destructive update).
    pub previous: Option<Arc<Allocation>>,
    /// True when replacing a failed allocation: extends its reschedule tracker and avoids its node.
    pub reschedule: bool,
    /// Stop `previous` with this description just before placing, and keep it if no node is found
    /// (destructive updates).
    pub stop_previous: Option<&'static str>,
    /// The node to place on (system jobs); `None` lets the stack choose.
    pub node_id: Option<NodeId>,
    /// A canary of the deployment: placed beside the allocation it will replace, stopping none.
    pub canary: bool,
}

/// `remaining` new allocations of one group, each named when it is taken.
#[derive(Clone, Debug)]
pub struct NewPlacements {
    pub task_group: String,
    pub names: names::NameIndex,
    pub remaining: usize,
}

impl Iterator for NewPlacements {
    type Item = AllocPlacement;

    fn next(&mut self) -> Option<AllocPlacement> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let name = self.names.next_name()?;
        Some(AllocPlacement {
            task_group: self.task_group.clone(),
            name,
            previous: None,
            reschedule: false,
            stop_previous: None,
            node_id: None,
            canary: false,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// A failed allocation to replace later, from a follow-up evaluation.
#[derive(Clone, Debug)]
pub struct DelayedReschedule {
    pub alloc: Arc<Allocation>,
    /// Unix nanoseconds.
    pub at: i64,
}

#[derive(Clone, Debug, Default)]
pub struct ReconcileResults {
    pub stop: Vec<AllocStop>,
    /// Allocations on a disconnected node, within their group's window, to mark `unknown`.
    pub disconnecting: Vec<Arc<Allocation>>,
    pub place: Vec<AllocPlacement>,
    /// New allocations under fresh names, generated lazily as they are placed: a group's count
    /// costs nothing until a node is found for each (Nomad generates placements one at a time
    /// and stops a group at its first failure).
    pub new_names: Vec<NewPlacements>,
    /// Allocations of an older job version that may be updated in place, if their node still
    /// takes them; otherwise they become destructive updates.
    pub in_place: Vec<Arc<Allocation>>,
    pub reschedule_later: Vec<DelayedReschedule>,
    /// A deployment to create for the job's current version.
    pub deployment: Option<Deployment>,
    /// Deployments to cancel (an older version's, a stopped job's).
    pub deployment_updates: Vec<DeploymentStatusUpdate>,
    /// The deployment new allocations of the groups in `deployment_groups` join.
    pub deployment_id: Option<DeploymentId>,
    pub deployment_groups: Vec<String>,
}

/// True if `alloc` runs another version of `job` than the current one.
pub fn runs_older_version(alloc: &Allocation, job: &Arc<Job>) -> bool {
    match &alloc.job {
        Some(alloc_job) => {
            !Arc::ptr_eq(alloc_job, job)
                && (alloc_job.version != job.version
                    || alloc_job.job_modify_index != job.job_modify_index)
        }
        None => false,
    }
}

/// The placement that replaces `alloc` destructively, by the same name.
pub fn destructive_placement(alloc: &Arc<Allocation>, node_id: Option<NodeId>) -> AllocPlacement {
    AllocPlacement {
        task_group: alloc.task_group.clone(),
        name: alloc.name.clone(),
        previous: Some(alloc.clone()),
        reschedule: false,
        stop_previous: Some(descriptions::ALLOC_UPDATING),
        node_id,
        canary: false,
    }
}
