//! The generic scheduler end to end through the harness.

use super::mock;
use super::{config, harness_with};
use crate::structs::{AllocClientStatus, AllocDesiredStatus, EvalStatus};

#[test]
fn places_count() {
    let nodes = (0..10).map(mock::node).collect();
    let (mut harness, job) = harness_with(nodes, mock::job(10));
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let placed = harness.placed();
    assert_eq!(placed.len(), 10);
    for alloc in &placed {
        assert_eq!(alloc.desired_status, AllocDesiredStatus::Run);
        assert_eq!(alloc.client_status, AllocClientStatus::Pending);
        assert_eq!(alloc.eval_id.as_str(), "eval-1");
        assert!(alloc.metrics.is_some());
        assert_eq!(alloc.allocated_resources.total_cpu(), 500);
    }
    let mut names: Vec<&str> = placed.iter().map(|alloc| alloc.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 10);
    assert!(names.contains(&"web.web[0]") && names.contains(&"web.web[9]"));
    let eval = harness.last_eval().expect("eval updated");
    assert_eq!(eval.status, EvalStatus::Complete);
    assert!(eval.failed_tg_allocs.is_empty());
    assert_eq!(eval.queued_allocations.get("web"), Some(&0));
}

#[test]
fn bin_packing_prefers_the_fuller_node() {
    let (mut harness, _) = harness_with(vec![mock::node(0), mock::node(1)], mock::job(1));
    let mut other = mock::job(1);
    other.id = "other".into();
    other.task_groups[0].tasks[0].resources = Some(crate::structs::Resources {
        cpu: 2000,
        memory_mb: 4096,
        ..Default::default()
    });
    let other = harness.state.upsert_job(other);
    harness
        .process(&config(), &mock::eval(&other, "eval-other"))
        .expect("other placed");
    let busy_node = harness.placed()[0].node_id.clone();
    let web = harness
        .snapshot()
        .job_by_id("default", &"web".into())
        .expect("web registered");
    harness
        .process(&config(), &mock::eval(&web, "eval-web"))
        .expect("web placed");
    let placed = harness.placed();
    assert_eq!(placed.len(), 2);
    assert_eq!(placed[1].node_id, busy_node);
}

#[test]
fn failed_placements_are_explained_and_blocked() {
    let (mut harness, job) = harness_with(vec![mock::node(0)], mock::job(20));
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    assert_eq!(harness.placed().len(), 8, "4000 MHz / 500 MHz");
    let eval = harness.last_eval().expect("eval updated");
    assert_eq!(eval.status, EvalStatus::Complete);
    assert_eq!(eval.queued_allocations.get("web"), Some(&12));
    let metric = eval.failed_tg_allocs.get("web").expect("web failed");
    assert_eq!(metric.nodes_evaluated, 1);
    assert_eq!(metric.nodes_exhausted, 1);
    assert_eq!(metric.dimension_exhausted.get("cpu"), Some(&1));
    assert_eq!(metric.coalesced_failures, 11);
    assert_eq!(metric.nodes_available.get("dc1"), Some(&1));
    assert_eq!(metric.nodes_in_pool, 1);
    let blocked = &harness.created_evals[0];
    assert_eq!(blocked.status, EvalStatus::Blocked);
    assert_eq!(blocked.triggered_by, "queued-allocs");
    assert_eq!(blocked.previous_eval.as_ref(), Some(&eval.id));
    assert_eq!(eval.blocked_eval.as_ref(), Some(&blocked.id));
}

/// Placements are generated one at a time and a group stops at its first failure: a count of a
/// billion on a node that takes 8 costs 9 attempts, not a billion names (Nomad:
/// `computePlacements`).
#[test]
fn a_huge_count_stops_at_the_first_failure_without_generating_the_rest() {
    let (mut harness, job) = harness_with(vec![mock::node(0)], mock::job(1_000_000_000));
    let started = std::time::Instant::now();
    harness
        .process(&config(), &mock::eval(&job, "eval-huge"))
        .expect("scheduling succeeds");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(harness.placed().len(), 8, "4000 MHz / 500 MHz");
    let eval = harness.last_eval().expect("eval updated");
    let metric = eval.failed_tg_allocs.get("web").expect("web failed");
    assert_eq!(metric.coalesced_failures, 1_000_000_000 - 9);
    assert_eq!(
        eval.queued_allocations.get("web"),
        Some(&(1_000_000_000 - 8))
    );
}

#[test]
fn blocked_eval_that_still_fails_is_reblocked() {
    let (mut harness, job) = harness_with(vec![mock::node(0)], mock::job(9));
    let mut eval = mock::eval(&job, "eval-blocked");
    eval.status = EvalStatus::Blocked;
    harness
        .process(&config(), &eval)
        .expect("scheduling succeeds");
    assert!(harness.updated_evals.is_empty());
    assert!(harness.created_evals.is_empty());
    assert_eq!(harness.reblocked_evals.len(), 1);
}

#[test]
fn constraint_filtered_nodes_are_keyed_by_the_constraint() {
    let mut job = mock::job(1);
    job.constraints.push(crate::structs::Constraint {
        l_target: "${attr.kernel.name}".to_owned(),
        operand: "=".to_owned(),
        r_target: "windows".to_owned(),
    });
    let (mut harness, job) = harness_with((0..3).map(mock::node).collect(), job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    assert!(harness.placed().is_empty());
    let metric = &harness.last_eval().expect("eval updated").failed_tg_allocs["web"];
    assert_eq!(metric.nodes_evaluated, 3);
    assert_eq!(metric.nodes_filtered, 3);
    assert_eq!(
        metric
            .constraint_filtered
            .get("${attr.kernel.name} = windows"),
        Some(&3)
    );
}

#[test]
fn missing_drivers_are_filtered() {
    let mut job = mock::job(1);
    job.task_groups[0].tasks[0].driver = "docker".to_owned();
    let (mut harness, job) = harness_with(vec![mock::node(0)], job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let metric = &harness.last_eval().expect("eval updated").failed_tg_allocs["web"];
    assert_eq!(metric.constraint_filtered.get("missing drivers"), Some(&1));
}

#[test]
fn static_ports_collide_and_dynamic_ports_do_not() {
    let mut job = mock::job(3);
    job.task_groups[0].networks = vec![mock::network(&[("http", 8080)], &["admin"])];
    let (mut harness, job) = harness_with(vec![mock::node(0), mock::node(1)], job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let placed = harness.placed();
    assert_eq!(placed.len(), 2);
    for alloc in &placed {
        let ports = &alloc.allocated_resources.shared.ports;
        assert_eq!(ports[0].label, "http");
        assert_eq!(ports[0].value, 8080);
        assert!((20000..=32000).contains(&ports[1].value));
        assert!(ports[0].host_ip.starts_with("10.0.0."));
        assert_eq!(
            alloc.allocated_resources.shared.networks[0].dynamic_ports[0].value,
            ports[1].value
        );
    }
    assert_ne!(placed[0].node_id, placed[1].node_id);
    let metric = &harness.last_eval().expect("eval updated").failed_tg_allocs["web"];
    assert_eq!(
        metric.dimension_exhausted.get("network: port collision"),
        Some(&2)
    );
}

#[test]
fn dynamic_ports_are_unique_on_a_node() {
    let mut job = mock::job(8);
    job.task_groups[0].networks = vec![mock::network(&[], &["a", "b"])];
    let (mut harness, job) = harness_with(vec![mock::node(0)], job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let mut ports: Vec<i32> = harness
        .placed()
        .iter()
        .flat_map(|alloc| {
            alloc
                .allocated_resources
                .shared
                .ports
                .iter()
                .map(|port| port.value)
        })
        .collect();
    assert_eq!(ports.len(), 16);
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 16);
}

#[test]
fn affinity_pulls_placements_to_matching_nodes() {
    let mut nodes: Vec<_> = (0..6).map(mock::node).collect();
    for node in nodes.iter_mut().take(2) {
        node.meta.insert("ssd".to_owned(), "true".to_owned());
    }
    let mut job = mock::job(4);
    job.affinities.push(crate::structs::Affinity {
        l_target: "${meta.ssd}".to_owned(),
        operand: "=".to_owned(),
        r_target: "true".to_owned(),
        weight: 100,
    });
    let (mut harness, job) = harness_with(nodes.clone(), job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let ssd_nodes = [&nodes[0].id, &nodes[1].id];
    let placed = harness.placed();
    assert_eq!(placed.len(), 4);
    assert!(
        placed
            .iter()
            .all(|alloc| ssd_nodes.contains(&&alloc.node_id))
    );
    let metric = placed[0].metrics.as_ref().expect("metrics");
    assert!(
        metric.score_meta_data[0]
            .scores
            .contains_key("node-affinity")
    );
    assert_eq!(metric.nodes_evaluated, 6, "affinities look at every node");
}

#[test]
fn spread_targets_split_by_percent() {
    let mut nodes: Vec<_> = (0..6).map(mock::node).collect();
    for (idx, node) in nodes.iter_mut().enumerate() {
        let zone = if idx < 3 { "east" } else { "west" };
        node.meta.insert("zone".to_owned(), zone.to_owned());
    }
    let mut job = mock::job(10);
    job.task_groups[0].spreads.push(crate::structs::Spread {
        attribute: "${meta.zone}".to_owned(),
        weight: 100,
        spread_target: vec![
            crate::structs::SpreadTarget {
                value: "east".to_owned(),
                percent: 70,
            },
            crate::structs::SpreadTarget {
                value: "west".to_owned(),
                percent: 30,
            },
        ],
    });
    let (mut harness, job) = harness_with(nodes.clone(), job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let east = harness
        .placed()
        .iter()
        .filter(|alloc| nodes[..3].iter().any(|node| node.id == alloc.node_id))
        .count();
    assert_eq!(east, 7);
}

#[test]
fn distinct_property_limits_allocations_per_value() {
    let mut nodes: Vec<_> = (0..6).map(mock::node).collect();
    for (idx, node) in nodes.iter_mut().enumerate() {
        node.meta.insert("rack".to_owned(), format!("r{}", idx % 3));
    }
    let mut job = mock::job(5);
    job.task_groups[0]
        .constraints
        .push(crate::structs::Constraint {
            l_target: "${meta.rack}".to_owned(),
            operand: "distinct_property".to_owned(),
            r_target: "1".to_owned(),
        });
    let (mut harness, job) = harness_with(nodes, job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    assert_eq!(harness.placed().len(), 3, "three racks, one each");
    let metric = &harness.last_eval().expect("eval updated").failed_tg_allocs["web"];
    assert_eq!(
        metric
            .constraint_filtered
            .get("${meta.rack} distinct_property 1"),
        Some(&6)
    );
}

#[test]
fn spread_algorithm_prefers_emptier_nodes() {
    let (mut harness, _) = harness_with(vec![mock::node(0), mock::node(1)], mock::job(1));
    let mut other = mock::job(1);
    other.id = "other".into();
    let other = harness.state.upsert_job(other);
    harness
        .process(&config(), &mock::eval(&other, "eval-other"))
        .expect("other placed");
    let busy_node = harness.placed()[0].node_id.clone();
    let web = harness
        .snapshot()
        .job_by_id("default", &"web".into())
        .expect("web registered");
    let mut spread_config = config();
    spread_config.algorithm = crate::scheduler::SchedulerAlgorithm::Spread;
    harness
        .process(&spread_config, &mock::eval(&web, "eval-web"))
        .expect("web placed");
    assert_ne!(harness.placed()[1].node_id, busy_node);
}

#[test]
fn deregistered_job_stops_everything() {
    let (mut harness, job) = harness_with((0..2).map(mock::node).collect(), mock::job(2));
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("placed");
    // A purged job: the allocations remain, the job is gone.
    let mut purged = crate::scheduler::harness::MemState::default();
    for node in harness.snapshot().nodes() {
        purged.upsert_node((*node).clone());
    }
    purged.upsert_allocs(
        harness
            .state
            .allocs()
            .into_iter()
            .map(|alloc| (*alloc).clone()),
    );
    let mut harness = crate::scheduler::harness::Harness::new(purged);
    harness
        .process(&config(), &mock::eval(&job, "eval-2"))
        .expect("scheduling succeeds");
    assert_eq!(harness.stopped().len(), 2);
    assert!(harness.placed().is_empty());
}

/// A `per_alloc` host volume names a different node volume for each allocation: `data[0]` and
/// `data[2]` on one node, `data[1]` on another, so each allocation lands where its own is, and
/// one whose volume no node has fails with Nomad's "missing compatible host volumes".
#[test]
fn per_alloc_host_volumes_place_each_allocation_beside_its_own_volume() {
    use crate::structs::{HostVolume, VolumeRequest};
    let mut nodes: Vec<_> = (0..3).map(mock::node).collect();
    for (node_idx, volume) in [(0, "data[0]"), (0, "data[2]"), (1, "data[1]")] {
        nodes[node_idx].host_volumes.insert(
            volume.to_owned(),
            HostVolume {
                path: format!("/srv/{volume}"),
                read_only: false,
            },
        );
    }
    let node_ids: Vec<_> = nodes.iter().map(|node| node.id.clone()).collect();
    let mut job = mock::job(4);
    job.task_groups[0].volumes.insert(
        "data".to_owned(),
        VolumeRequest {
            name: "data".to_owned(),
            volume_type: "host".to_owned(),
            source: "data".to_owned(),
            per_alloc: true,
            ..VolumeRequest::default()
        },
    );
    let (mut harness, job) = harness_with(nodes, job);
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let mut placed: Vec<(String, usize)> = harness
        .placed()
        .iter()
        .map(|alloc| {
            let node = node_ids
                .iter()
                .position(|id| *id == alloc.node_id)
                .expect("a known node");
            (alloc.name.clone(), node)
        })
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        vec![
            ("web.web[0]".to_owned(), 0),
            ("web.web[1]".to_owned(), 1),
            ("web.web[2]".to_owned(), 0),
        ]
    );
    let eval = harness.last_eval().expect("eval updated");
    let failed = eval.failed_tg_allocs.get("web").expect("web[3] failed");
    assert_eq!(
        failed
            .constraint_filtered
            .get("missing compatible host volumes"),
        Some(&3),
        "every node lacks data[3]: {failed:?}"
    );
}
