//! Deployments through the generic scheduler: created once per version, rolling updates paced by
//! `max_parallel` and health, canaries waiting for promotion, older deployments cancelled.

use std::sync::Arc;
use std::time::Duration;

use super::mock;
use super::{config, harness_with};
use crate::scheduler::harness::Harness;
use crate::structs::{
    AllocDeploymentStatus, AllocDesiredStatus, Allocation, Deployment, DeploymentStatus, Job,
    UpdateStrategy, deployment_descriptions,
};

fn strategy(max_parallel: i32, canary: i32) -> UpdateStrategy {
    UpdateStrategy {
        max_parallel,
        canary,
        health_check: "task_states".to_owned(),
        min_healthy_time: Duration::from_secs(1),
        healthy_deadline: Duration::from_secs(60),
        progress_deadline: Duration::from_secs(120),
        ..UpdateStrategy::default()
    }
}

fn job_with(count: i32, update: UpdateStrategy) -> Job {
    let mut job = mock::job(count);
    job.task_groups[0].update = Some(update);
    job
}

fn run(harness: &mut Harness, id: &str) {
    let job = harness
        .snapshot()
        .job_by_id("default", &"web".into())
        .expect("job");
    harness
        .process(&config(), &mock::eval(&job, id))
        .expect("scheduler runs");
}

fn deployment(harness: &Harness) -> Arc<Deployment> {
    harness
        .snapshot()
        .latest_deployment_by_job("default", &"web".into())
        .expect("a deployment")
}

fn live(harness: &Harness) -> Vec<Arc<Allocation>> {
    harness
        .state
        .allocs()
        .into_iter()
        .filter(|alloc| !alloc.is_terminal())
        .collect()
}

/// Marks every live allocation of the current deployment healthy (as the client reports it).
fn mark_healthy(harness: &mut Harness) {
    let current = deployment(harness).id.clone();
    let healthy: Vec<Allocation> = live(harness)
        .into_iter()
        .filter(|alloc| alloc.deployment_id.as_ref() == Some(&current))
        .map(|alloc| {
            let mut alloc = (*alloc).clone();
            let mut status = alloc.deployment_status.clone().unwrap_or_default();
            status.healthy = Some(true);
            alloc.deployment_status = Some(status);
            alloc
        })
        .collect();
    harness.state.upsert_allocs(healthy);
}

fn reregister_destructive(harness: &mut Harness, edit: impl FnOnce(&mut Job)) -> Arc<Job> {
    let mut job = (*harness
        .snapshot()
        .job_by_id("default", &"web".into())
        .expect("job"))
    .clone();
    job.task_groups[0].tasks[0]
        .env
        .insert("VERSION".to_owned(), format!("{}", job.version + 1));
    edit(&mut job);
    harness.state.upsert_job(job)
}

fn clear(harness: &mut Harness) {
    harness.plans.clear();
    harness.updated_evals.clear();
}

fn running_version(harness: &Harness, version: u64) -> usize {
    live(harness)
        .iter()
        .filter(|alloc| alloc.job.as_ref().is_some_and(|job| job.version == version))
        .count()
}

#[test]
fn the_first_version_places_everything_in_one_deployment_created_once() {
    let (mut harness, job) = harness_with(
        (0..2).map(mock::node).collect(),
        job_with(4, strategy(1, 0)),
    );
    run(&mut harness, "e1");
    let created = harness.plans[0]
        .deployment
        .clone()
        .expect("deployment created");
    assert_eq!(created.job_version, job.version);
    assert_eq!(created.status, DeploymentStatus::Running);
    let state = &created.task_groups["web"];
    assert_eq!(state.desired_total, 4);
    assert_eq!(state.progress_deadline, 120_000_000_000);
    let placed = harness.placed();
    assert_eq!(placed.len(), 4, "new allocations are not paced");
    assert!(
        placed
            .iter()
            .all(|alloc| alloc.deployment_id.as_ref() == Some(&created.id))
    );
    clear(&mut harness);
    run(&mut harness, "e2");
    assert!(
        harness.plans.iter().all(|plan| plan.deployment.is_none()),
        "a version gets one deployment"
    );
    assert_eq!(deployment(&harness).id, created.id);
}

#[test]
fn a_job_without_update_block_gets_no_deployment() {
    let mut job = mock::job(3);
    job.task_groups[0].update = None;
    let (mut harness, _) = harness_with((0..2).map(mock::node).collect(), job);
    run(&mut harness, "e1");
    assert!(harness.plans[0].deployment.is_none());
    assert!(harness.placed().iter().all(|a| a.deployment_id.is_none()));
}

#[test]
fn a_destructive_update_rolls_max_parallel_at_a_time_as_allocations_turn_healthy() {
    let (mut harness, _) = harness_with(
        (0..2).map(mock::node).collect(),
        job_with(4, strategy(1, 0)),
    );
    run(&mut harness, "e1");
    mark_healthy(&mut harness);
    let first = deployment(&harness);
    let mut done = (*first).clone();
    done.status = DeploymentStatus::Successful;
    harness.state.upsert_deployment(done);
    clear(&mut harness);

    let v1 = reregister_destructive(&mut harness, |_| {});
    run(&mut harness, "e2");
    let created = harness.plans[0].deployment.clone().expect("new deployment");
    assert_eq!(created.job_version, v1.version);
    assert_ne!(created.id, first.id);
    assert_eq!(harness.placed().len(), 1, "max_parallel = 1");
    assert_eq!(harness.stopped().len(), 1);
    assert_eq!(running_version(&harness, v1.version), 1);
    assert_eq!(live(&harness).len(), 4);

    // Nothing more until the new allocation is healthy.
    clear(&mut harness);
    run(&mut harness, "e3");
    assert!(harness.placed().is_empty());
    assert!(harness.plans.iter().all(|plan| plan.deployment.is_none()));

    for round in 2..=4 {
        mark_healthy(&mut harness);
        clear(&mut harness);
        run(&mut harness, &format!("e{}", round + 2));
        assert_eq!(harness.placed().len(), 1, "round {round}");
        assert_eq!(running_version(&harness, v1.version), round);
        assert_eq!(live(&harness).len(), 4, "never fewer than the count");
    }
    assert_eq!(deployment(&harness).id, created.id, "created once");
}

#[test]
fn max_parallel_two_with_an_unhealthy_allocation_places_nothing() {
    let (mut harness, _) = harness_with(
        (0..2).map(mock::node).collect(),
        job_with(4, strategy(2, 0)),
    );
    run(&mut harness, "e1");
    mark_healthy(&mut harness);
    let mut done = (*deployment(&harness)).clone();
    done.status = DeploymentStatus::Successful;
    harness.state.upsert_deployment(done);
    reregister_destructive(&mut harness, |_| {});
    clear(&mut harness);
    run(&mut harness, "e2");
    assert_eq!(harness.placed().len(), 2);
    // One of the two turns unhealthy: the rollout stops there.
    let current = deployment(&harness).id.clone();
    let mut new_allocs: Vec<Allocation> = live(&harness)
        .iter()
        .filter(|alloc| alloc.deployment_id.as_ref() == Some(&current))
        .map(|alloc| (**alloc).clone())
        .collect();
    new_allocs[0].deployment_status = Some(AllocDeploymentStatus {
        healthy: Some(true),
        ..AllocDeploymentStatus::default()
    });
    new_allocs[1].deployment_status = Some(AllocDeploymentStatus {
        healthy: Some(false),
        ..AllocDeploymentStatus::default()
    });
    harness.state.upsert_allocs(new_allocs);
    clear(&mut harness);
    run(&mut harness, "e3");
    assert!(harness.placed().is_empty());
}

#[test]
fn canaries_are_placed_beside_the_old_version_and_wait_for_promotion() {
    let (mut harness, _) = harness_with(
        (0..2).map(mock::node).collect(),
        job_with(3, strategy(1, 1)),
    );
    run(&mut harness, "e1");
    assert_eq!(
        harness.plans[0]
            .deployment
            .as_ref()
            .expect("deployment")
            .task_groups["web"]
            .desired_canaries,
        0,
        "the first version has nothing to canary"
    );
    mark_healthy(&mut harness);
    let mut done = (*deployment(&harness)).clone();
    done.status = DeploymentStatus::Successful;
    harness.state.upsert_deployment(done);
    let v1 = reregister_destructive(&mut harness, |_| {});
    clear(&mut harness);
    run(&mut harness, "e2");
    let created = harness.plans[0].deployment.clone().expect("deployment");
    assert_eq!(created.task_groups["web"].desired_canaries, 1);
    let placed = harness.placed();
    assert_eq!(placed.len(), 1);
    assert!(AllocDeploymentStatus::is_canary(
        placed[0].deployment_status.as_ref()
    ));
    assert_eq!(
        placed[0].name, "web.web[0]",
        "the canary takes the first name"
    );
    assert!(harness.stopped().is_empty(), "a canary stops nothing");
    assert_eq!(live(&harness).len(), 4);

    // A healthy canary still waits for promotion.
    mark_healthy(&mut harness);
    clear(&mut harness);
    run(&mut harness, "e3");
    assert!(harness.placed().is_empty() && harness.stopped().is_empty());

    // Promoted: the old allocation of the canary's name goes, the rest roll.
    let mut promoted = (*deployment(&harness)).clone();
    if let Some(state) = promoted.task_groups.get_mut("web") {
        state.promoted = true;
    }
    harness.state.upsert_deployment(promoted);
    clear(&mut harness);
    run(&mut harness, "e4");
    let stopped = harness.stopped();
    assert_eq!(stopped.len(), 2, "superseded web[0] and the first update");
    assert!(stopped.iter().any(
        |alloc| alloc.name == "web.web[0]" && alloc.desired_status == AllocDesiredStatus::Stop
    ));
    assert_eq!(harness.placed().len(), 1);
    assert_eq!(running_version(&harness, v1.version), 2);
    assert_eq!(live(&harness).len(), 3);
}

#[test]
fn a_newer_version_cancels_the_running_deployment() {
    let (mut harness, _) = harness_with(
        (0..2).map(mock::node).collect(),
        job_with(2, strategy(1, 0)),
    );
    run(&mut harness, "e1");
    let first = deployment(&harness);
    reregister_destructive(&mut harness, |_| {});
    clear(&mut harness);
    run(&mut harness, "e2");
    let updates = &harness.plans[0].deployment_updates;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].deployment_id, first.id);
    assert_eq!(updates[0].status, DeploymentStatus::Cancelled);
    assert_eq!(
        updates[0].status_description,
        deployment_descriptions::NEWER_JOB
    );
    assert!(harness.plans[0].deployment.is_some());
}

#[test]
fn a_failed_deployment_replaces_nothing_more() {
    let (mut harness, _) = harness_with(
        (0..2).map(mock::node).collect(),
        job_with(3, strategy(1, 0)),
    );
    run(&mut harness, "e1");
    mark_healthy(&mut harness);
    let mut done = (*deployment(&harness)).clone();
    done.status = DeploymentStatus::Successful;
    harness.state.upsert_deployment(done);
    reregister_destructive(&mut harness, |_| {});
    clear(&mut harness);
    run(&mut harness, "e2");
    mark_healthy(&mut harness);
    let mut failed = (*deployment(&harness)).clone();
    failed.status = DeploymentStatus::Failed;
    harness.state.upsert_deployment(failed);
    clear(&mut harness);
    run(&mut harness, "e3");
    assert!(harness.placed().is_empty());
}

#[test]
fn an_in_place_update_joins_the_new_deployment_with_its_health_undecided() {
    let (mut harness, _) = harness_with(
        (0..2).map(mock::node).collect(),
        job_with(2, strategy(1, 0)),
    );
    run(&mut harness, "e1");
    mark_healthy(&mut harness);
    let first = deployment(&harness);
    let mut done = (*first).clone();
    done.status = DeploymentStatus::Successful;
    harness.state.upsert_deployment(done);
    clear(&mut harness);

    // A service change updates the allocations in place.
    let mut job = (*harness
        .snapshot()
        .job_by_id("default", &"web".into())
        .expect("job"))
    .clone();
    job.task_groups[0].services.push(crate::structs::Service {
        name: "api".to_owned(),
        ..crate::structs::Service::default()
    });
    let v1 = harness.state.upsert_job(job);
    run(&mut harness, "e2");
    let created = harness.plans[0].deployment.clone().expect("new deployment");
    assert_eq!(created.job_version, v1.version);
    assert!(harness.stopped().is_empty(), "nothing is replaced");
    let updated = harness.placed();
    assert_eq!(updated.len(), 2, "both allocations updated in place");
    for alloc in updated {
        assert_eq!(alloc.deployment_id.as_ref(), Some(&created.id));
        assert_eq!(
            alloc.deployment_status, None,
            "health is judged again in the new deployment"
        );
        assert_eq!(alloc.job.as_ref().map(|job| job.version), Some(v1.version));
    }
}
