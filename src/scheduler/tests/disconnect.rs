//! Disconnected clients through the generic scheduler: allocations of a group with a disconnect
//! window become `unknown` (replaced, or kept with `replace = false`), are lost once the window
//! has passed, and when the client is back one of original and replacement is stopped. Through
//! the system scheduler they become `unknown` and are kept (nothing replaces them elsewhere).

use std::sync::Arc;
use std::time::Duration;

use super::system::system_job;
use super::{config, harness_with, mock};
use crate::scheduler::harness::Harness;
use crate::structs::{
    AllocClientStatus, AllocDesiredStatus, Allocation, DisconnectStrategy, Job, NodeStatus,
};

/// A job of one allocation with `disconnect` on two nodes, placed; the allocation.
fn placed(disconnect: DisconnectStrategy) -> (Harness, Arc<Job>, Arc<Allocation>) {
    placed_as(mock::job(1), disconnect)
}

/// `job` with `disconnect` on its group on two nodes, placed; its first allocation.
fn placed_as(mut job: Job, disconnect: DisconnectStrategy) -> (Harness, Arc<Job>, Arc<Allocation>) {
    job.task_groups[0].disconnect = Some(disconnect);
    let (mut harness, job) = harness_with((0..2).map(mock::node).collect(), job);
    harness
        .process(&config(), &mock::eval(&job, "eval-initial"))
        .expect("initial placement");
    harness.plans.clear();
    let alloc = harness.state.allocs()[0].clone();
    (harness, job, alloc)
}

/// Marks every allocation of the harness `running`, as their clients would.
fn all_running(harness: &mut Harness) {
    let running: Vec<Allocation> = harness
        .state
        .allocs()
        .iter()
        .map(|alloc| Allocation {
            client_status: AllocClientStatus::Running,
            ..(**alloc).clone()
        })
        .collect();
    harness.state.upsert_allocs(running);
}

fn window(seconds: u64) -> DisconnectStrategy {
    DisconnectStrategy {
        lost_after: Some(Duration::from_secs(seconds)),
        ..DisconnectStrategy::default()
    }
}

/// Sets the node of `alloc` to `status`, changed `ago_s` seconds before the scheduler's now.
fn set_node(harness: &mut Harness, alloc: &Allocation, status: NodeStatus, ago_s: i64) {
    let mut node = (*harness
        .snapshot()
        .node_by_id(&alloc.node_id)
        .expect("node exists"))
    .clone();
    node.status = status;
    node.status_updated_at = config().now_unix_nanos / 1_000_000_000 - ago_s;
    harness.state.upsert_node(node);
}

fn current(harness: &Harness, alloc: &Allocation) -> Arc<Allocation> {
    harness
        .state
        .allocs()
        .into_iter()
        .find(|found| found.id == alloc.id)
        .expect("allocation kept")
}

#[test]
fn within_the_window_an_allocation_becomes_unknown_and_is_replaced() {
    let (mut harness, job, original) = placed(window(60));
    set_node(&mut harness, &original, NodeStatus::Disconnected, 10);
    harness
        .process(&config(), &mock::eval(&job, "eval-disconnect"))
        .expect("scheduling succeeds");
    let now = current(&harness, &original);
    assert_eq!(now.client_status, AllocClientStatus::Unknown);
    assert_eq!(now.desired_status, AllocDesiredStatus::Run, "left to run");
    let placed = harness.placed();
    assert_eq!(placed.len(), 1);
    assert_ne!(placed[0].node_id, original.node_id);
    assert_eq!(placed[0].previous_allocation.as_ref(), Some(&original.id));
    assert_eq!(placed[0].name, original.name);

    // Evaluated again while still disconnected: nothing more happens.
    harness.plans.clear();
    harness
        .process(&config(), &mock::eval(&job, "eval-again"))
        .expect("scheduling succeeds");
    assert!(harness.placed().is_empty());
    assert!(harness.stopped().is_empty());

    // Back: the replacement gives way, the original runs on untouched.
    set_node(&mut harness, &original, NodeStatus::Ready, 0);
    harness
        .process(&config(), &mock::eval(&job, "eval-reconnect"))
        .expect("scheduling succeeds");
    let stopped = harness.stopped();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_ne!(stopped[0].id, original.id);
    assert_eq!(
        stopped[0].desired_description,
        "alloc not needed due to disconnected client reconnect"
    );
    assert_eq!(
        current(&harness, &original).desired_status,
        AllocDesiredStatus::Run
    );
}

#[test]
fn keep_replacement_stops_the_original_when_it_is_back() {
    let (mut harness, job, original) = placed(DisconnectStrategy {
        reconcile: Some(String::from("keep_replacement")),
        ..window(60)
    });
    set_node(&mut harness, &original, NodeStatus::Disconnected, 10);
    harness
        .process(&config(), &mock::eval(&job, "eval-disconnect"))
        .expect("scheduling succeeds");
    set_node(&mut harness, &original, NodeStatus::Ready, 0);
    harness.plans.clear();
    harness
        .process(&config(), &mock::eval(&job, "eval-reconnect"))
        .expect("scheduling succeeds");
    let stopped = harness.stopped();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0].id, original.id);
}

#[test]
fn without_replace_the_unknown_allocation_is_kept_alone() {
    let (mut harness, job, original) = placed(DisconnectStrategy {
        replace: Some(false),
        ..window(60)
    });
    set_node(&mut harness, &original, NodeStatus::Disconnected, 10);
    harness
        .process(&config(), &mock::eval(&job, "eval-disconnect"))
        .expect("scheduling succeeds");
    assert_eq!(
        current(&harness, &original).client_status,
        AllocClientStatus::Unknown
    );
    assert!(harness.placed().is_empty());
}

#[test]
fn past_the_window_or_without_one_allocations_are_lost() {
    for (strategy, ago_s) in [(window(60), 61), (DisconnectStrategy::default(), 1)] {
        let (mut harness, job, original) = placed(strategy);
        set_node(&mut harness, &original, NodeStatus::Disconnected, ago_s);
        harness
            .process(&config(), &mock::eval(&job, "eval-disconnect"))
            .expect("scheduling succeeds");
        let now = current(&harness, &original);
        assert_eq!(now.client_status, AllocClientStatus::Lost);
        assert_eq!(now.desired_status, AllocDesiredStatus::Stop);
        assert_eq!(harness.placed().len(), 1);
    }
}

#[test]
fn a_system_allocation_on_a_disconnected_node_is_unknown_and_kept_until_the_window_passes() {
    let (mut harness, job, original) = placed_as(system_job(), window(60));
    assert_eq!(harness.state.allocs().len(), 2, "one per node");
    all_running(&mut harness);
    set_node(&mut harness, &original, NodeStatus::Disconnected, 10);
    harness
        .process(&config(), &mock::eval(&job, "eval-disconnect"))
        .expect("scheduling succeeds");
    let now = current(&harness, &original);
    assert_eq!(now.client_status, AllocClientStatus::Unknown);
    assert_eq!(now.desired_status, AllocDesiredStatus::Run, "left to run");
    assert!(harness.placed().is_empty(), "{:?}", harness.placed());

    // Evaluated again while still disconnected: nothing more happens.
    harness.plans.clear();
    harness
        .process(&config(), &mock::eval(&job, "eval-again"))
        .expect("scheduling succeeds");
    assert!(
        harness.plans.iter().all(|plan| plan.is_no_op()),
        "{:?}",
        harness.plans
    );

    // Back: the unknown allocation is left for its client to report running again.
    set_node(&mut harness, &original, NodeStatus::Ready, 0);
    harness
        .process(&config(), &mock::eval(&job, "eval-reconnect"))
        .expect("scheduling succeeds");
    assert!(
        harness.plans.iter().all(|plan| plan.is_no_op()),
        "{:?}",
        harness.plans
    );
    assert_eq!(
        current(&harness, &original).desired_status,
        AllocDesiredStatus::Run
    );

    // Disconnected again, past the window: lost.
    set_node(&mut harness, &original, NodeStatus::Disconnected, 61);
    harness
        .process(&config(), &mock::eval(&job, "eval-expired"))
        .expect("scheduling succeeds");
    let now = current(&harness, &original);
    assert_eq!(now.client_status, AllocClientStatus::Lost);
    assert_eq!(now.desired_status, AllocDesiredStatus::Stop);
}

#[test]
fn a_system_allocation_without_a_window_is_lost_when_its_node_disconnects() {
    let (mut harness, job, original) = placed_as(system_job(), DisconnectStrategy::default());
    all_running(&mut harness);
    set_node(&mut harness, &original, NodeStatus::Disconnected, 1);
    harness
        .process(&config(), &mock::eval(&job, "eval-disconnect"))
        .expect("scheduling succeeds");
    assert_eq!(
        current(&harness, &original).client_status,
        AllocClientStatus::Lost
    );
}
