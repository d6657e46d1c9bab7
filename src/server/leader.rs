//! Leadership: what a server starts when it becomes the Raft leader and stops when it loses it.
//!
//! ```text
//!   follower ──(elected)──► establish: wait for the log to apply, enable broker, blocked evals and
//!      ▲                    heartbeats, restore pending/blocked evaluations and node TTLs, start
//!      │                    the deployment watcher, the node drainer, the periodic dispatcher,
//!      │                    the garbage collector (`core_gc.rs`) and the leader loop
//!      │                    (broker timers, failed and duplicate evaluations, missed heartbeats);
//!      └──(deposed)──────── revoke: disable all of it
//! ```
//!
//! Nomad: `nomad/leader.go` `establishLeadership`, `revokeLeadership`, `reapFailedEvaluations`,
//! `reapDupBlockedEvaluations`.

use std::sync::Arc;
use std::time::Duration;

use super::Server;
use super::raft::Command;
use super::state::leader_restore_view;
use crate::structs::{EvalStatus, Evaluation, NodeStatus};

/// Follows Raft leadership for the life of the server.
pub(super) async fn monitor_leadership(server: Arc<Server>) {
    let mut metrics = server.raft.raft.metrics();
    let mut leading: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let is_leader = metrics.borrow().current_leader == Some(server.raft.id);
        match (is_leader, leading.is_some()) {
            (true, false) => {
                tracing::info!(server_id = server.raft.id, "gained leadership");
                leading = Some(tokio::spawn(lead(server.clone())));
            }
            (false, true) => {
                tracing::info!(server_id = server.raft.id, "lost leadership");
                if let Some(task) = leading.take() {
                    task.abort();
                }
                revoke(&server);
            }
            _ => {}
        }
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = server.shutdown_requested() => break,
        }
    }
    if let Some(task) = leading.take() {
        task.abort();
    }
    revoke(&server);
}

fn revoke(server: &Server) {
    server.broker.set_enabled(false);
    server.blocked.set_enabled(false);
    server.heartbeats.set_enabled(false, &[]);
}

/// Establishes leadership, then runs the leader's periodic duties.
async fn lead(server: Arc<Server>) {
    // Everything committed before this term must be applied before the broker is filled from it.
    let target = server
        .raft
        .raft
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0);
    server
        .store
        .wait_for_index(target, Duration::from_secs(30))
        .await;
    server.ensure_scheduler_config().await;
    let snapshot = server.store.snapshot();
    let (evals, nodes) = leader_restore_view(&snapshot);
    server.broker.set_enabled(true);
    server
        .broker
        .set_paused(server.scheduler_config_in(&snapshot).pause_eval_broker);
    server.blocked.set_enabled(true);
    let now = super::now_unix_nanos();
    for eval in evals {
        let ready = match eval.status {
            EvalStatus::Blocked => server.blocked.block(eval),
            _ => Some(eval),
        };
        if let Some(eval) = ready {
            server.broker.enqueue(eval, now);
        }
    }
    server.heartbeats.set_enabled(true, &nodes);
    // Aborted with this task when leadership is lost.
    let _deployments = super::deployment_watcher::start(server.clone());
    let _drainer = super::drainer::start(server.clone());
    let _periodic = super::periodic::start(server.clone());
    let _garbage = super::core_gc::start(server.clone());
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        server.broker.tick();
        reap_failed_evals(&server).await;
        cancel_duplicate_blocked(&server).await;
        for node_id in server.heartbeats.take_expired() {
            let snapshot = server.store.snapshot();
            let status = super::disconnect::status_after_missed_heartbeat(
                &snapshot,
                &node_id,
                super::now_unix_nanos(),
            );
            let was = snapshot
                .tables()
                .nodes
                .get(&node_id)
                .map(|node| node.status);
            tracing::warn!(node_id = %node_id, %status, "node missed its heartbeat");
            if status == NodeStatus::Disconnected && was == Some(NodeStatus::Disconnected) {
                // Still within a disconnect window: keep timing it, to mark it down after.
                server.heartbeats.reset(&node_id);
                continue;
            }
            if let Err(error) = server.node_update_status(&node_id, status).await {
                tracing::error!(node_id = %node_id, error = %error, "updating the node's status failed");
            }
        }
    }
}

async fn reap_failed_evals(server: &Server) {
    let failed = server.broker.take_failed();
    if failed.is_empty() {
        return;
    }
    let evals: Vec<Evaluation> = failed
        .iter()
        .map(|eval| {
            let mut eval = (**eval).clone();
            eval.status = EvalStatus::Failed;
            eval.status_description = "evaluation reached delivery limit (3)".to_owned();
            eval.modify_time = super::now_unix_nanos();
            eval
        })
        .collect();
    if let Err(error) = server.write(Command::EvalUpdate { evals }).await {
        tracing::error!(error = %error, "marking evaluations failed");
    }
}

async fn cancel_duplicate_blocked(server: &Server) {
    let duplicates = server.blocked.take_duplicates();
    if duplicates.is_empty() {
        return;
    }
    let evals: Vec<Evaluation> = duplicates
        .iter()
        .map(|eval| {
            let mut eval = (**eval).clone();
            eval.status = EvalStatus::Canceled;
            eval.status_description =
                "evaluation superseded by a newer blocked evaluation".to_owned();
            eval.modify_time = super::now_unix_nanos();
            eval
        })
        .collect();
    if let Err(error) = server.write(Command::EvalUpdate { evals }).await {
        tracing::error!(error = %error, "cancelling duplicate blocked evaluations");
    }
}
