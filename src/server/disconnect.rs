//! Disconnected clients (Nomad's `disconnect { lost_after }`, formerly `max_client_disconnect`):
//! what a node that missed its heartbeat becomes.
//!
//! A node whose allocations include one that may outlive a disconnect (a live allocation of a
//! group with a disconnect window that has not passed) becomes `disconnected` rather than `down`:
//! the schedulers then mark those allocations `unknown` (and replace them where the group says
//! so) instead of lost, and when the client heartbeats again its allocations carry on where they
//! were, never restarted. The window counts from when the node became disconnected (its
//! `StatusUpdatedAt`); the leader keeps timing the node's heartbeat, and once every window has
//! passed the node goes `down` and its allocations are lost.
//!
//! Nomad: `nomad/heartbeat.go` `invalidateHeartbeat`, `disconnectState`.

use crate::server::state::StateSnapshot;
use crate::structs::{AllocDesiredStatus, NodeId, NodeStatus};

/// The status a node that missed its heartbeat takes at `now` (Unix nanoseconds): `Disconnected`
/// while one of its live allocations is within its group's disconnect window, else `Down`.
pub fn status_after_missed_heartbeat(
    snapshot: &StateSnapshot,
    node_id: &NodeId,
    now: i64,
) -> NodeStatus {
    let tables = snapshot.tables();
    let Some(node) = tables.nodes.get(node_id) else {
        return NodeStatus::Down;
    };
    let since = match node.status {
        NodeStatus::Down | NodeStatus::Initializing => return NodeStatus::Down,
        NodeStatus::Disconnected => node.status_updated_at.saturating_mul(1_000_000_000),
        NodeStatus::Ready => now,
    };
    let Some(allocs) = tables.allocs_by_node.get(node_id) else {
        return NodeStatus::Down;
    };
    let within_window = allocs.values().any(|alloc| {
        if alloc.desired_status != AllocDesiredStatus::Run || alloc.is_client_terminal() {
            return false;
        }
        let job = alloc
            .job
            .clone()
            .or_else(|| snapshot.job(&alloc.namespace, &alloc.job_id));
        let window = job
            .as_deref()
            .and_then(|job| job.task_group(&alloc.task_group))
            .and_then(|group| group.disconnect_window());
        window.is_some_and(|window| {
            let window = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
            since.saturating_add(window) > now
        })
    });
    if within_window {
        NodeStatus::Disconnected
    } else {
        NodeStatus::Down
    }
}
