//! Reconciliation cases through the generic scheduler: scale, update, stop, lost, reschedule.

use std::sync::Arc;

use super::mock;
use super::{config, harness_with};
use crate::scheduler::harness::Harness;
use crate::structs::{
    AllocClientStatus, AllocDesiredStatus, Allocation, DrainStrategy, EvalStatus, Job, NodeStatus,
    ReschedulePolicy,
};

const SECOND: i64 = 1_000_000_000;

/// A harness with `count` allocations of the mock job placed and committed on 4 nodes.
fn placed(count: i32) -> (Harness, Arc<Job>) {
    let (mut harness, job) = harness_with((0..4).map(mock::node).collect(), mock::job(count));
    harness
        .process(&config(), &mock::eval(&job, "eval-initial"))
        .expect("initial placement");
    assert_eq!(harness.placed().len(), usize::try_from(count).unwrap_or(0));
    harness.plans.clear();
    harness.updated_evals.clear();
    (harness, job)
}

fn reregister(harness: &mut Harness, edit: impl FnOnce(&mut Job)) -> Arc<Job> {
    let mut job = (*harness
        .snapshot()
        .job_by_id("default", &"web".into())
        .expect("job registered"))
    .clone();
    edit(&mut job);
    harness.state.upsert_job(job)
}

fn names(allocs: &[&Allocation]) -> Vec<String> {
    let mut names: Vec<String> = allocs.iter().map(|alloc| alloc.name.clone()).collect();
    names.sort();
    names
}

/// Names of the placements that are new allocations, not updates of those in `before`.
fn new_names(harness: &Harness, before: &[Arc<Allocation>]) -> Vec<String> {
    let placed = harness.placed();
    let fresh: Vec<&Allocation> = placed
        .into_iter()
        .filter(|alloc| before.iter().all(|old| old.id != alloc.id))
        .collect();
    names(&fresh)
}

fn live_allocs(harness: &Harness) -> Vec<Arc<Allocation>> {
    harness
        .state
        .allocs()
        .into_iter()
        .filter(|alloc| !alloc.is_terminal())
        .collect()
}

/// Sets the client status (and modify time) of the allocation named `name`.
fn set_client_status(harness: &mut Harness, name: &str, status: AllocClientStatus, at: i64) {
    let alloc = live_allocs(harness)
        .into_iter()
        .find(|alloc| alloc.name == name)
        .expect("alloc exists");
    let mut alloc = (*alloc).clone();
    alloc.client_status = status;
    alloc.modify_time = at;
    harness.state.upsert_allocs([alloc]);
}

#[test]
fn scale_up_adds_the_missing_names() {
    let (mut harness, _) = placed(3);
    let before = harness.state.allocs();
    let job = reregister(&mut harness, |job| job.task_groups[0].count = 5);
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    // A count change is a new job version: the others are updated in place, as in Nomad.
    assert_eq!(new_names(&harness, &before), ["web.web[3]", "web.web[4]"]);
    assert_eq!(harness.placed().len(), 5);
    assert!(harness.stopped().is_empty());
}

#[test]
fn scale_down_stops_the_highest_indexes_and_scale_up_reuses_them() {
    let (mut harness, _) = placed(5);
    let job = reregister(&mut harness, |job| job.task_groups[0].count = 2);
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert_eq!(
        names(&harness.stopped()),
        ["web.web[2]", "web.web[3]", "web.web[4]"]
    );
    assert!(
        harness
            .stopped()
            .iter()
            .all(|alloc| alloc.desired_status == AllocDesiredStatus::Stop)
    );
    harness.plans.clear();
    let before = harness.state.allocs();
    let job = reregister(&mut harness, |job| job.task_groups[0].count = 4);
    harness
        .process(&config(), &mock::eval(&job, "eval-3"))
        .expect("scheduling succeeds");
    assert_eq!(new_names(&harness, &before), ["web.web[2]", "web.web[3]"]);
}

#[test]
fn stopped_job_stops_everything() {
    let (mut harness, _) = placed(3);
    let job = reregister(&mut harness, |job| job.stop = true);
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert_eq!(harness.stopped().len(), 3);
    assert!(harness.placed().is_empty());
    assert!(live_allocs(&harness).is_empty());
    assert_eq!(
        harness.last_eval().map(|eval| eval.status),
        Some(EvalStatus::Complete)
    );
}

#[test]
fn destructive_update_replaces_by_name() {
    let (mut harness, _) = placed(2);
    // Without an update block (no deployment), every allocation is replaced at once.
    let job = reregister(&mut harness, |job| {
        job.task_groups[0].update = None;
        job.task_groups[0].tasks[0]
            .env
            .insert("VERSION".to_owned(), "2".to_owned());
    });
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert_eq!(names(&harness.stopped()), ["web.web[0]", "web.web[1]"]);
    assert_eq!(names(&harness.placed()), ["web.web[0]", "web.web[1]"]);
    for alloc in harness.placed() {
        assert!(alloc.previous_allocation.is_some());
        assert_eq!(alloc.job.as_ref().map(|job| job.version), Some(job.version));
    }
    assert_eq!(live_allocs(&harness).len(), 2);
}

#[test]
fn in_place_update_keeps_the_allocation() {
    let (mut harness, _) = placed(2);
    let before: Vec<_> = live_allocs(&harness)
        .iter()
        .map(|alloc| alloc.id.clone())
        .collect();
    let job = reregister(&mut harness, |job| {
        if let Some(policy) = &mut job.task_groups[0].restart_policy {
            policy.attempts = 7;
        }
    });
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert!(harness.stopped().is_empty());
    let updated = harness.placed();
    assert_eq!(updated.len(), 2);
    for alloc in updated {
        assert!(before.contains(&alloc.id));
        assert_eq!(alloc.job.as_ref().map(|job| job.version), Some(job.version));
    }
}

#[test]
fn lost_allocations_are_stopped_and_replaced() {
    let (mut harness, job) = placed(4);
    let victim = live_allocs(&harness)[0].clone();
    let mut down = (*harness
        .snapshot()
        .node_by_id(&victim.node_id)
        .expect("node exists"))
    .clone();
    down.status = NodeStatus::Down;
    harness.state.upsert_node(down);
    let lost_count = live_allocs(&harness)
        .iter()
        .filter(|alloc| alloc.node_id == victim.node_id)
        .count();
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    let stopped = harness.stopped();
    assert_eq!(stopped.len(), lost_count);
    assert!(
        stopped
            .iter()
            .all(|alloc| alloc.client_status == AllocClientStatus::Lost)
    );
    let placed = harness.placed();
    assert_eq!(placed.len(), lost_count);
    assert!(placed.iter().all(|alloc| alloc.node_id != victim.node_id));
    assert_eq!(names(&stopped), names(&placed));
}

#[test]
fn draining_node_migrates_what_the_drainer_marks() {
    let (mut harness, job) = placed(4);
    let victim = live_allocs(&harness)[0].clone();
    let mut draining = (*harness
        .snapshot()
        .node_by_id(&victim.node_id)
        .expect("node exists"))
    .clone();
    draining.drain_strategy = Some(DrainStrategy::default());
    harness.state.upsert_node(draining);
    // Draining alone moves nothing: the drainer decides which allocations go, and when.
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert!(harness.stopped().is_empty());
    assert!(harness.placed().is_empty());

    let mut marked = (*victim).clone();
    marked.desired_transition.migrate = Some(true);
    harness.state.upsert_allocs([marked]);
    harness
        .process(&config(), &mock::eval(&job, "eval-3"))
        .expect("scheduling succeeds");
    let stopped = harness.stopped();
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0].id, victim.id);
    let placed = harness.placed();
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].name, victim.name);
    assert_ne!(placed[0].node_id, victim.node_id);
}

#[test]
fn failed_allocation_is_rescheduled_now_away_from_its_node() {
    let (mut harness, job) = placed(1);
    let now = config().now_unix_nanos;
    set_client_status(
        &mut harness,
        "web.web[0]",
        AllocClientStatus::Failed,
        now - 3600 * SECOND,
    );
    let failed = harness.state.allocs()[0].clone();
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    let placed = harness.placed();
    assert_eq!(placed.len(), 1);
    let replacement = placed[0];
    assert_eq!(replacement.name, "web.web[0]");
    assert_eq!(replacement.previous_allocation.as_ref(), Some(&failed.id));
    let tracker = replacement.reschedule_tracker.as_ref().expect("tracked");
    assert_eq!(tracker.events.len(), 1);
    assert_eq!(tracker.events[0].prev_node_id, failed.node_id);
    assert_eq!(tracker.events[0].delay, 30 * SECOND);
    assert_ne!(
        replacement.node_id, failed.node_id,
        "penalty avoids the failed node"
    );
    // The failed allocation is now replaced: a second evaluation changes nothing.
    harness.plans.clear();
    harness
        .process(&config(), &mock::eval(&job, "eval-3"))
        .expect("scheduling succeeds");
    assert!(harness.plans.is_empty());
}

#[test]
fn failed_allocation_within_its_delay_gets_a_followup_eval() {
    let (mut harness, job) = placed(1);
    let now = config().now_unix_nanos;
    set_client_status(
        &mut harness,
        "web.web[0]",
        AllocClientStatus::Failed,
        now - 10 * SECOND,
    );
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert_eq!(harness.created_evals.len(), 1);
    let followup = &harness.created_evals[0];
    assert_eq!(followup.wait_until, now + 20 * SECOND);
    assert_eq!(followup.triggered_by, "alloc-failure");
    // The failed allocation is annotated, nothing is placed yet.
    let annotated = harness.placed();
    assert_eq!(annotated.len(), 1);
    assert_eq!(annotated[0].followup_eval_id.as_ref(), Some(&followup.id));
    assert_eq!(annotated[0].client_status, AllocClientStatus::Failed);
    // The follow-up evaluation, when it runs, replaces it.
    harness.plans.clear();
    let mut later = config();
    later.now_unix_nanos = followup.wait_until;
    let followup = followup.clone();
    harness
        .process(&later, &followup)
        .expect("scheduling succeeds");
    let placed = harness.placed();
    assert_eq!(placed.len(), 1);
    assert!(placed[0].previous_allocation.is_some());
}

#[test]
fn failed_allocation_without_attempts_left_stays_failed() {
    let (mut harness, _) = placed(1);
    let job = reregister(&mut harness, |job| {
        job.task_groups[0].reschedule_policy = Some(ReschedulePolicy {
            attempts: 0,
            unlimited: false,
            ..ReschedulePolicy::default()
        });
    });
    let now = config().now_unix_nanos;
    set_client_status(
        &mut harness,
        "web.web[0]",
        AllocClientStatus::Failed,
        now - 3600 * SECOND,
    );
    harness.plans.clear();
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert!(harness.placed().is_empty());
    assert_eq!(live_allocs(&harness).len(), 0);
}

#[test]
fn completed_batch_allocations_are_not_replaced() {
    let mut batch = mock::job(2);
    batch.job_type = crate::structs::JobType::Batch;
    batch.canonicalize();
    let (mut harness, job) = harness_with((0..2).map(mock::node).collect(), batch);
    let mut eval = mock::eval(&job, "eval-1");
    harness.process(&config(), &eval).expect("placed");
    set_client_status(&mut harness, "web.web[0]", AllocClientStatus::Complete, 1);
    harness.plans.clear();
    eval.id = "eval-2".into();
    harness
        .process(&config(), &eval)
        .expect("scheduling succeeds");
    assert!(harness.plans.is_empty(), "{:?}", harness.plans);
}

#[test]
fn completed_service_allocations_are_replaced() {
    let (mut harness, job) = placed(2);
    set_client_status(&mut harness, "web.web[1]", AllocClientStatus::Complete, 1);
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert_eq!(names(&harness.placed()), ["web.web[1]"]);
}

#[test]
fn in_place_update_that_no_longer_fits_becomes_destructive() {
    let (mut harness, _) = placed(1);
    let node_id = live_allocs(&harness)[0].node_id.clone();
    // Fill the node, then ask for more CPU in a change that is otherwise in place.
    let mut filler = mock::job(1);
    filler.id = "filler".into();
    filler.task_groups[0].tasks[0].resources = Some(crate::structs::Resources {
        cpu: 3400,
        memory_mb: 256,
        ..Default::default()
    });
    filler.constraints.push(crate::structs::Constraint {
        l_target: "${node.unique.id}".to_owned(),
        operand: "=".to_owned(),
        r_target: node_id.to_string(),
    });
    let filler = harness.state.upsert_job(filler);
    harness
        .process(&config(), &mock::eval(&filler, "eval-filler"))
        .expect("filler placed");
    harness.plans.clear();
    let job = reregister(&mut harness, |job| {
        if let Some(policy) = &mut job.task_groups[0].restart_policy {
            policy.attempts = 9;
        }
        job.task_groups[0]
            .constraints
            .push(crate::structs::Constraint {
                l_target: "${node.unique.id}".to_owned(),
                operand: "!=".to_owned(),
                r_target: node_id.to_string(),
            });
    });
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    let stopped = harness.stopped();
    assert_eq!(stopped.len(), 1);
    assert_eq!(
        stopped[0].desired_description,
        "alloc is being updated due to job update"
    );
    let placed = harness.placed();
    assert_eq!(placed.len(), 1);
    assert_ne!(placed[0].node_id, node_id);
    assert_eq!(placed[0].name, "web.web[0]");
}

#[test]
fn removed_group_is_stopped() {
    let (mut harness, _) = placed(2);
    let job = reregister(&mut harness, |job| {
        job.task_groups[0].name = "api".to_owned();
    });
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert_eq!(names(&harness.stopped()), ["web.web[0]", "web.web[1]"]);
    assert_eq!(names(&harness.placed()), ["web.api[0]", "web.api[1]"]);
}
