//! Property tests: for random clusters and jobs, the scheduler's plans keep every invariant.
//!
//! - no node is over capacity (cpu, memory, disk) once the plans are committed;
//! - no two live allocations of a node share a host port, none takes a reserved one;
//! - each group gets its count, or the evaluation explains the shortfall (FailedTGAllocs and
//!   QueuedAllocations);
//! - every placed allocation's node meets the job's constraints;
//! - an even spread over an attribute is balanced within one allocation when capacity allows;
//! - the same snapshot and evaluation ID give the same plan, allocation IDs aside;
//! - all of this also holds when the plan applier refuses part of a plan (the scheduler retries
//!   against the refreshed state).

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::{config, mock};
use crate::scheduler::feasible::constraint::CompiledConstraint;
use crate::scheduler::harness::{Harness, MemState};
use crate::scheduler::usage::{NodeCapacity, NodeUsage, alloc_ports};
use crate::structs::{
    AllocId, Constraint, EphemeralDisk, Job, JobId, Node, NodeId, Plan, Spread, TaskGroup,
};

#[derive(Clone, Debug)]
struct NodeSpec {
    cpu: i64,
    memory_mb: i64,
    disk_mb: i64,
    zone: usize,
    kernel: &'static str,
    dynamic_range: i32,
    reserved_ports: &'static str,
}

#[derive(Clone, Debug)]
struct GroupSpec {
    count: i32,
    cpu: i32,
    memory_mb: i32,
    disk_mb: i32,
    static_port: bool,
    dynamic_ports: usize,
}

#[derive(Clone, Debug)]
struct JobSpec {
    groups: Vec<GroupSpec>,
    kernel_constraint: Option<&'static str>,
    zone_constraint: Option<usize>,
    distinct_hosts: bool,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        1..=16i64,
        1..=16i64,
        1..=20i64,
        0..3usize,
        prop_oneof![Just("linux"), Just("windows")],
        2..=40i32,
        prop_oneof![Just(""), Just("8080"), Just("20000-20002")],
    )
        .prop_map(
            |(cpu, memory, disk, zone, kernel, dynamic_range, reserved_ports)| NodeSpec {
                cpu: cpu * 500,
                memory_mb: memory * 512,
                disk_mb: disk * 1024,
                zone,
                kernel,
                dynamic_range,
                reserved_ports,
            },
        )
}

fn group_spec() -> impl Strategy<Value = GroupSpec> {
    (
        0..=12i32,
        1..=8i32,
        1..=8i32,
        1..=10i32,
        proptest::bool::weighted(0.2),
        0..=3usize,
    )
        .prop_map(
            |(count, cpu, memory, disk, static_port, dynamic_ports)| GroupSpec {
                count,
                cpu: cpu * 250,
                memory_mb: memory * 256,
                disk_mb: disk * 300,
                static_port,
                dynamic_ports,
            },
        )
}

fn job_spec() -> impl Strategy<Value = JobSpec> {
    (
        proptest::collection::vec(group_spec(), 1..=3),
        proptest::option::weighted(0.3, prop_oneof![Just("linux"), Just("windows")]),
        proptest::option::weighted(0.2, 0..3usize),
        proptest::bool::weighted(0.2),
    )
        .prop_map(
            |(groups, kernel_constraint, zone_constraint, distinct_hosts)| JobSpec {
                groups,
                kernel_constraint,
                zone_constraint,
                distinct_hosts,
            },
        )
}

fn build_node(idx: usize, spec: &NodeSpec) -> Node {
    let mut node = mock::node(idx);
    node.node_resources.cpu.cpu_shares = spec.cpu;
    node.node_resources.memory.memory_mb = spec.memory_mb;
    node.node_resources.disk.disk_mb = spec.disk_mb;
    node.node_resources.min_dynamic_port = 20000;
    node.node_resources.max_dynamic_port = 20000 + spec.dynamic_range;
    node.reserved_resources.reserved_host_ports = spec.reserved_ports.to_owned();
    node.attributes
        .insert("kernel.name".to_owned(), spec.kernel.to_owned());
    node.meta
        .insert("zone".to_owned(), format!("zone-{}", spec.zone));
    node
}

fn constraint(l_target: &str, operand: &str, r_target: &str) -> Constraint {
    Constraint {
        l_target: l_target.to_owned(),
        operand: operand.to_owned(),
        r_target: r_target.to_owned(),
    }
}

fn build_job(idx: usize, spec: &JobSpec) -> Job {
    let mut job = mock::job(1);
    job.id = JobId::from(format!("job-{idx}"));
    job.task_groups = spec
        .groups
        .iter()
        .enumerate()
        .map(|(group_idx, group)| {
            let mut task_group: TaskGroup = mock::group(
                &format!("group-{group_idx}"),
                group.count,
                group.cpu,
                group.memory_mb,
            );
            task_group.ephemeral_disk = Some(EphemeralDisk {
                size_mb: group.disk_mb,
                ..EphemeralDisk::default()
            });
            let dynamic: Vec<String> = (0..group.dynamic_ports)
                .map(|port_idx| format!("dyn{port_idx}"))
                .collect();
            let dynamic: Vec<&str> = dynamic.iter().map(String::as_str).collect();
            let static_ports: &[(&str, i32)] = if group.static_port {
                &[("http", 8080)]
            } else {
                &[]
            };
            if group.static_port || !dynamic.is_empty() {
                task_group.networks = vec![mock::network(static_ports, &dynamic)];
            }
            task_group
        })
        .collect();
    if let Some(kernel) = spec.kernel_constraint {
        job.constraints
            .push(constraint("${attr.kernel.name}", "=", kernel));
    }
    if let Some(zone) = spec.zone_constraint {
        job.constraints
            .push(constraint("${meta.zone}", "!=", &format!("zone-{zone}")));
    }
    if spec.distinct_hosts {
        job.constraints.push(constraint("", "distinct_hosts", ""));
    }
    job.canonicalize();
    job
}

/// Registers the jobs on the nodes and schedules each once, the first plan's placements on node
/// `refuse` refused (a partial commit); returns the harness.
fn schedule_all(
    nodes: &[NodeSpec],
    jobs: &[JobSpec],
    refuse: Option<usize>,
) -> (Harness, Vec<Arc<Job>>) {
    let mut state = MemState::default();
    for (idx, spec) in nodes.iter().enumerate() {
        state.upsert_node(build_node(idx, spec));
    }
    let stored: Vec<Arc<Job>> = jobs
        .iter()
        .enumerate()
        .map(|(idx, spec)| state.upsert_job(build_job(idx, spec)))
        .collect();
    let mut harness = Harness::new(state);
    harness.refuse_node = refuse
        .filter(|idx| *idx < nodes.len())
        .map(|idx| (mock::node(idx).id, 1));
    for (idx, job) in stored.iter().enumerate() {
        harness
            .process(&config(), &mock::eval(job, &format!("eval-{idx}")))
            .expect("scheduling succeeds");
    }
    (harness, stored)
}

fn live_by_node(harness: &Harness) -> BTreeMap<NodeId, Vec<Arc<crate::structs::Allocation>>> {
    let mut by_node: BTreeMap<NodeId, Vec<_>> = BTreeMap::new();
    for alloc in harness.state.allocs() {
        if !alloc.is_terminal() {
            by_node
                .entry(alloc.node_id.clone())
                .or_default()
                .push(alloc);
        }
    }
    by_node
}

/// The plan with allocation IDs blanked, for comparing two runs.
fn without_ids(plan: &Plan) -> Plan {
    let mut plan = plan.clone();
    for alloc in plan.node_allocation.values_mut().flatten() {
        alloc.id = AllocId::default();
        alloc.deployment_id = None;
    }
    if let Some(deployment) = &mut plan.deployment {
        deployment.id = Default::default();
    }
    plan
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn placements_respect_capacity_ports_counts_and_constraints(
        nodes in proptest::collection::vec(node_spec(), 1..=10),
        jobs in proptest::collection::vec(job_spec(), 1..=3),
        refuse in proptest::option::weighted(0.3, 0..10usize),
    ) {
        let (harness, stored) = schedule_all(&nodes, &jobs, refuse);
        let snapshot = harness.snapshot();
        // Capacity and ports, per node.
        for (node_id, allocs) in live_by_node(&harness) {
            let node = snapshot.node_by_id(&node_id).expect("allocs are on known nodes");
            let capacity = NodeCapacity::of(&node);
            let usage = NodeUsage::from_allocs(allocs.iter().map(|alloc| &**alloc));
            // The harness's usage index agrees with the State trait's default (a sum).
            prop_assert_eq!(&snapshot.node_usage(&node_id), &usage);
            prop_assert!(usage.cpu <= capacity.cpu, "cpu {} > {}", usage.cpu, capacity.cpu);
            prop_assert!(usage.memory_mb <= capacity.memory_mb);
            prop_assert!(usage.disk_mb <= capacity.disk_mb);
            let mut ports: Vec<u16> = allocs.iter().flat_map(|alloc| alloc_ports(alloc)).collect();
            let n_ports = ports.len();
            ports.sort_unstable();
            ports.dedup();
            prop_assert_eq!(ports.len(), n_ports, "port collision on {}", node_id);
            prop_assert!(ports.iter().all(|port| !capacity.is_reserved(*port)));
        }
        // Counts, explanations and constraints, per job.
        for (job_idx, job) in stored.iter().enumerate() {
            let eval = harness
                .updated_evals
                .iter()
                .find(|eval| eval.id.as_str() == format!("eval-{job_idx}"))
                .expect("every eval is updated");
            let allocs = snapshot.allocs_by_job("default", &job.id);
            for group in &job.task_groups {
                let live = allocs
                    .iter()
                    .filter(|alloc| alloc.task_group == group.name && !alloc.is_terminal())
                    .count() as u64;
                let count = u64::try_from(group.count).unwrap_or(0);
                let queued = eval.queued_allocations.get(&group.name).copied().unwrap_or(0);
                prop_assert_eq!(live + queued, count, "group {}", group.name);
                if live < count {
                    let metric = eval.failed_tg_allocs.get(&group.name);
                    prop_assert!(metric.is_some(), "shortfall of {} unexplained", group.name);
                    let metric = metric.expect("checked above");
                    prop_assert!(
                        metric.nodes_filtered + metric.nodes_exhausted == metric.nodes_evaluated,
                        "{:?}", metric
                    );
                } else {
                    prop_assert!(!eval.failed_tg_allocs.contains_key(&group.name));
                }
            }
            let checks: Vec<CompiledConstraint> = job
                .constraints
                .iter()
                .filter(|constraint| constraint.operand != "distinct_hosts")
                .map(CompiledConstraint::new)
                .collect();
            let mut hosts: Vec<&NodeId> = Vec::new();
            for alloc in allocs.iter().filter(|alloc| !alloc.is_terminal()) {
                let node = snapshot.node_by_id(&alloc.node_id).expect("known node");
                for check in &checks {
                    prop_assert!(check.is_satisfied_by(&node), "{} on {}", check.key, node.id);
                }
                hosts.push(&alloc.node_id);
            }
            if job.constraints.iter().any(|constraint| constraint.operand == "distinct_hosts") {
                let n_hosts = hosts.len();
                hosts.sort();
                hosts.dedup();
                prop_assert_eq!(hosts.len(), n_hosts, "distinct_hosts violated");
            }
        }
    }

    #[test]
    fn same_snapshot_and_eval_give_the_same_plan(
        nodes in proptest::collection::vec(node_spec(), 1..=10),
        job in job_spec(),
    ) {
        let mut state = MemState::default();
        for (idx, spec) in nodes.iter().enumerate() {
            state.upsert_node(build_node(idx, spec));
        }
        let job = state.upsert_job(build_job(0, &job));
        let eval = mock::eval(&job, "3f6c0e4e-2a7b-4c1f-9a53-0d3c6f1b2e77");
        let mut first = Harness::new(state.clone());
        let mut second = Harness::new(state);
        first.process(&config(), &eval).expect("first run");
        second.process(&config(), &eval).expect("second run");
        let first_plans: Vec<Plan> = first.plans.iter().map(without_ids).collect();
        let second_plans: Vec<Plan> = second.plans.iter().map(without_ids).collect();
        prop_assert_eq!(first_plans, second_plans);
    }

    #[test]
    fn even_spread_is_balanced_within_one(
        n_nodes_per_zone in proptest::collection::vec(1..=4usize, 2..=4),
        count in 1..=40i32,
        seed in 0..1000u32,
    ) {
        let mut state = MemState::default();
        let mut idx = 0;
        for (zone, n_nodes) in n_nodes_per_zone.iter().enumerate() {
            for _ in 0..*n_nodes {
                let mut node = mock::node(idx);
                // Unequal sizes, so bin packing has an opinion to overrule.
                node.node_resources.cpu.cpu_shares = 100_000 + 10_000 * (idx as i64 % 3);
                node.node_resources.memory.memory_mb = 100_000;
                node.meta.insert("zone".to_owned(), format!("zone-{zone}"));
                state.upsert_node(node);
                idx += 1;
            }
        }
        let mut job = mock::job(count);
        job.task_groups[0].spreads.push(Spread {
            attribute: "${meta.zone}".to_owned(),
            weight: 50,
            spread_target: Vec::new(),
        });
        let job = state.upsert_job(job);
        let mut harness = Harness::new(state);
        harness
            .process(&config(), &mock::eval(&job, &format!("eval-{seed}")))
            .expect("scheduling succeeds");
        let snapshot = harness.snapshot();
        let mut per_zone: BTreeMap<String, i64> = (0..n_nodes_per_zone.len())
            .map(|zone| (format!("zone-{zone}"), 0))
            .collect();
        for alloc in harness.placed() {
            let node = snapshot.node_by_id(&alloc.node_id).expect("known node");
            *per_zone.entry(node.meta["zone"].clone()).or_default() += 1;
        }
        prop_assert_eq!(per_zone.values().sum::<i64>(), i64::from(count));
        let max = per_zone.values().max().copied().unwrap_or(0);
        let min = per_zone.values().min().copied().unwrap_or(0);
        prop_assert!(max - min <= 1, "{:?}", per_zone);
    }
}
