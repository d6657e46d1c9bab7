//! The system scheduler and plan retries through the harness.

use super::mock;
use super::{config, harness_with};
use crate::structs::{
    AllocClientStatus, Constraint, EvalStatus, Job, JobType, NodeId, NodeStatus,
    SchedulingEligibility,
};

/// A system job of one group: one allocation per feasible node.
pub(super) fn system_job() -> Job {
    let mut job = mock::job(1);
    job.id = "agent".into();
    job.job_type = JobType::System;
    job.canonicalize();
    job
}

#[test]
fn one_allocation_per_feasible_node() {
    let mut nodes: Vec<_> = (0..5).map(mock::node).collect();
    nodes[3]
        .attributes
        .insert("kernel.name".to_owned(), "windows".to_owned());
    nodes[4].scheduling_eligibility = SchedulingEligibility::Ineligible;
    let mut job = system_job();
    job.constraints.push(Constraint {
        l_target: "${attr.kernel.name}".to_owned(),
        operand: "=".to_owned(),
        r_target: "linux".to_owned(),
    });
    let (mut harness, job) = harness_with(nodes, job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let placed = harness.placed();
    assert_eq!(placed.len(), 3);
    let mut node_ids: Vec<&NodeId> = placed.iter().map(|alloc| &alloc.node_id).collect();
    node_ids.dedup();
    assert_eq!(node_ids.len(), 3);
    assert!(placed.iter().all(|alloc| alloc.name == "agent.web[0]"));
    let eval = harness.last_eval().expect("eval updated");
    assert_eq!(eval.status, EvalStatus::Complete);
    assert!(
        eval.failed_tg_allocs.is_empty(),
        "constraints are not failures"
    );
    // Running it again changes nothing.
    harness.plans.clear();
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert!(harness.plans.is_empty());
}

#[test]
fn full_node_is_a_failure_and_new_node_gets_one() {
    let mut nodes: Vec<_> = (0..2).map(mock::node).collect();
    nodes[1].node_resources.cpu.cpu_shares = 100;
    let (mut harness, job) = harness_with(nodes, system_job());
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    assert_eq!(harness.placed().len(), 1);
    let eval = harness.last_eval().expect("eval updated");
    assert_eq!(
        eval.failed_tg_allocs["web"].dimension_exhausted.get("cpu"),
        Some(&1)
    );
    assert_eq!(eval.queued_allocations.get("web"), Some(&1));
    assert!(
        harness.created_evals.is_empty(),
        "system evals are not blocked"
    );
    harness.plans.clear();
    harness.state.upsert_node(mock::node(7));
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    let placed = harness.placed();
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].node_id, mock::node(7).id);
}

#[test]
fn down_node_allocation_is_lost_not_moved() {
    let (mut harness, job) = harness_with((0..3).map(mock::node).collect(), system_job());
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let mut down = mock::node(0);
    down.status = NodeStatus::Down;
    harness.state.upsert_node(down);
    harness.plans.clear();
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    let stopped = harness.stopped();
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0].client_status, AllocClientStatus::Lost);
    assert!(harness.placed().is_empty());
}

#[test]
fn sysbatch_does_not_rerun_finished_allocations() {
    let mut job = system_job();
    job.job_type = JobType::Sysbatch;
    job.canonicalize();
    let (mut harness, job) = harness_with((0..2).map(mock::node).collect(), job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    for alloc in harness.state.allocs() {
        let mut done = (*alloc).clone();
        done.client_status = AllocClientStatus::Complete;
        harness.state.upsert_allocs([done]);
    }
    harness.plans.clear();
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert!(harness.plans.is_empty());
}

#[test]
fn partial_commit_is_retried_against_the_refreshed_state() {
    let (mut harness, job) = harness_with((0..4).map(mock::node).collect(), mock::job(8));
    // Find where the first plan puts allocations, then refuse one of those nodes once.
    let mut probe = harness_with((0..4).map(mock::node).collect(), mock::job(8)).0;
    probe
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("probe succeeds");
    let refused = probe.placed()[0].node_id.clone();
    harness.refuse_node = Some((refused.clone(), 1));
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    assert_eq!(harness.plans.len(), 2, "one refused in part, one retry");
    let live = harness
        .state
        .allocs()
        .into_iter()
        .filter(|alloc| !alloc.is_terminal())
        .count();
    assert_eq!(live, 8);
    assert_eq!(
        harness.last_eval().map(|eval| eval.status),
        Some(EvalStatus::Complete)
    );
}

#[test]
fn rejected_plans_fail_the_eval_after_max_attempts() {
    let (mut harness, job) = harness_with((0..2).map(mock::node).collect(), mock::job(2));
    harness.reject_plans = 100;
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling gives up cleanly");
    assert_eq!(harness.plans.len(), 5);
    let eval = harness.last_eval().expect("eval updated");
    assert_eq!(eval.status, EvalStatus::Failed);
    assert_eq!(harness.created_evals.len(), 1);
    assert_eq!(harness.created_evals[0].triggered_by, "max-plan-attempts");
    assert_eq!(harness.created_evals[0].status, EvalStatus::Blocked);
}
