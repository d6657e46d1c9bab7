//! The plan applier refuses what no longer fits: capacity, ports, device instances, node
//! readiness.

use std::sync::Arc;

use crate::server::plan_apply::{accepted_nodes, evaluate_plan};
use crate::server::raft::Command;
use crate::server::state::StateStore;
use crate::structs::{
    AllocId, AllocatedCpu, AllocatedDeviceResource, AllocatedMemory, AllocatedPort,
    AllocatedResources, AllocatedSharedResources, AllocatedTaskResources, Allocation, JobId, Node,
    NodeCpuResources, NodeDevice, NodeDeviceResource, NodeId, NodeMemoryResources, NodeResources,
    NodeStatus, Plan,
};

fn node(id: &str, status: NodeStatus) -> Node {
    Node {
        id: NodeId::from(id),
        status,
        node_resources: NodeResources {
            cpu: NodeCpuResources {
                cpu_shares: 1000,
                ..NodeCpuResources::default()
            },
            memory: NodeMemoryResources { memory_mb: 1024 },
            ..NodeResources::default()
        },
        ..Node::default()
    }
}

fn alloc(id: &str, node_id: &str, cpu: i64, port: Option<i32>) -> Allocation {
    Allocation {
        id: AllocId::from(id),
        namespace: "default".to_owned(),
        job_id: JobId::from("web"),
        node_id: NodeId::from(node_id),
        task_group: "web".to_owned(),
        allocated_resources: AllocatedResources {
            tasks: [(
                "server".to_owned(),
                AllocatedTaskResources {
                    cpu: AllocatedCpu {
                        cpu_shares: cpu,
                        ..AllocatedCpu::default()
                    },
                    memory: AllocatedMemory {
                        memory_mb: 100,
                        ..AllocatedMemory::default()
                    },
                    ..AllocatedTaskResources::default()
                },
            )]
            .into(),
            shared: AllocatedSharedResources {
                ports: port
                    .map(|value| AllocatedPort {
                        label: "http".to_owned(),
                        value,
                        ..AllocatedPort::default()
                    })
                    .into_iter()
                    .collect(),
                ..AllocatedSharedResources::default()
            },
        },
        ..Allocation::default()
    }
}

fn store_with(nodes: Vec<Node>, allocs: Vec<Allocation>) -> StateStore {
    let store = StateStore::new();
    let mut index = 1;
    for node in nodes {
        store.apply(
            index,
            &Command::NodeRegister {
                node: Arc::new(node),
                evals: Vec::new(),
            },
        );
        index += 1;
    }
    if !allocs.is_empty() {
        store.apply(
            index,
            &Command::PlanApply(Arc::new(crate::server::raft::PlanApplyRequest {
                placed: allocs.into_iter().map(Arc::new).collect(),
                ..Default::default()
            })),
        );
    }
    store
}

fn plan_placing(allocs: Vec<Allocation>) -> Plan {
    let mut plan = Plan::default();
    for alloc in allocs {
        plan.append_alloc(alloc);
    }
    plan
}

#[test]
fn placement_that_fits_is_committed() {
    let store = store_with(
        vec![node("n1", NodeStatus::Ready)],
        vec![alloc("a1", "n1", 400, None)],
    );
    let result = evaluate_plan(
        &store.snapshot(),
        &plan_placing(vec![alloc("a2", "n1", 600, None)]),
    );
    assert_eq!(result.refresh_index, 0);
    assert_eq!(result.node_allocation[&NodeId::from("n1")].len(), 1);
}

#[test]
fn placement_over_capacity_is_refused_with_a_refresh_index() {
    let store = store_with(
        vec![node("n1", NodeStatus::Ready)],
        vec![alloc("a1", "n1", 600, None)],
    );
    let result = evaluate_plan(
        &store.snapshot(),
        &plan_placing(vec![alloc("a2", "n1", 600, None)]),
    );
    assert!(result.node_allocation.is_empty());
    assert!(result.refresh_index > 0);
}

#[test]
fn stopping_an_alloc_frees_its_capacity_in_the_same_plan() {
    let existing = alloc("a1", "n1", 600, None);
    let store = store_with(vec![node("n1", NodeStatus::Ready)], vec![existing.clone()]);
    let mut plan = plan_placing(vec![alloc("a2", "n1", 600, None)]);
    plan.append_stopped_alloc(&existing, "replaced", None);
    let result = evaluate_plan(&store.snapshot(), &plan);
    assert_eq!(result.refresh_index, 0);
    assert_eq!(result.node_update[&NodeId::from("n1")].len(), 1);
}

#[test]
fn port_collision_is_refused() {
    let store = store_with(
        vec![node("n1", NodeStatus::Ready)],
        vec![alloc("a1", "n1", 100, Some(8080))],
    );
    let result = evaluate_plan(
        &store.snapshot(),
        &plan_placing(vec![alloc("a2", "n1", 100, Some(8080))]),
    );
    assert!(result.node_allocation.is_empty());
    assert!(result.refresh_index > 0);
}

#[test]
fn node_not_ready_is_refused_and_other_nodes_commit() {
    let store = store_with(
        vec![node("n1", NodeStatus::Down), node("n2", NodeStatus::Ready)],
        Vec::new(),
    );
    let result = evaluate_plan(
        &store.snapshot(),
        &plan_placing(vec![
            alloc("a1", "n1", 100, None),
            alloc("a2", "n2", 100, None),
        ]),
    );
    assert!(!result.node_allocation.contains_key(&NodeId::from("n1")));
    assert!(result.node_allocation.contains_key(&NodeId::from("n2")));
    assert!(result.refresh_index > 0);
}

#[test]
fn all_at_once_plan_commits_nothing_if_any_node_refuses() {
    let store = store_with(
        vec![node("n1", NodeStatus::Down), node("n2", NodeStatus::Ready)],
        Vec::new(),
    );
    let mut plan = plan_placing(vec![
        alloc("a1", "n1", 100, None),
        alloc("a2", "n2", 100, None),
    ]);
    plan.all_at_once = true;
    let result = evaluate_plan(&store.snapshot(), &plan);
    assert!(result.node_allocation.is_empty());
    assert!(result.refresh_index > 0);
}

#[test]
fn placements_for_a_purged_or_stopped_job_are_refused() {
    use crate::server::plan_apply::{PlanError, check_job_live};
    use crate::structs::{Job, TaskGroup};

    let store = store_with(vec![node("n1", NodeStatus::Ready)], Vec::new());
    let job = Job {
        id: JobId::from("web"),
        namespace: "default".to_owned(),
        task_groups: vec![TaskGroup {
            name: "web".to_owned(),
            ..TaskGroup::default()
        }],
        ..Job::default()
    };
    let register = |index| {
        store.apply(
            index,
            &Command::JobRegister {
                job: Arc::new(job.clone()),
                enforce_index: None,
                eval: None,
            },
        )
    };
    let deregister = |index, purge| {
        store.apply(
            index,
            &Command::JobDeregister {
                namespace: "default".to_owned(),
                job_id: JobId::from("web"),
                purge,
                eval: None,
            },
        )
    };
    let mut plan = plan_placing(vec![alloc("a1", "n1", 100, None)]);
    plan.job = Some(Arc::new(job.clone()));
    register(10);
    assert!(check_job_live(&store.snapshot(), &plan).is_ok());
    deregister(11, false);
    let refused = check_job_live(&store.snapshot(), &plan);
    assert!(
        matches!(
            refused,
            Err(PlanError::JobGone {
                state: "stopped",
                ..
            })
        ),
        "{refused:?}"
    );
    deregister(12, true);
    let refused = check_job_live(&store.snapshot(), &plan);
    assert!(
        matches!(
            refused,
            Err(PlanError::JobGone {
                state: "purged",
                ..
            })
        ),
        "{refused:?}"
    );
    // A plan that only stops allocations of the gone job goes through.
    let stops_only = Plan {
        job: Some(Arc::new(job)),
        ..Plan::default()
    };
    assert!(check_job_live(&store.snapshot(), &stops_only).is_ok());
}

/// `n1` with one device group of instances `gpu-0` (healthy), `gpu-1` (healthy), `gpu-2` (not).
fn node_with_devices() -> Node {
    let mut node = node("n1", NodeStatus::Ready);
    node.node_resources.devices = vec![NodeDeviceResource {
        vendor: "caravan-test".to_owned(),
        device_type: "gpu".to_owned(),
        name: "sim".to_owned(),
        instances: [("gpu-0", true), ("gpu-1", true), ("gpu-2", false)]
            .into_iter()
            .map(|(id, healthy)| NodeDevice {
                id: id.to_owned(),
                healthy,
                ..NodeDevice::default()
            })
            .collect(),
        ..NodeDeviceResource::default()
    }];
    node
}

fn alloc_with_devices(id: &str, device_ids: &[&str]) -> Allocation {
    let mut alloc = alloc(id, "n1", 100, None);
    if let Some(task) = alloc.allocated_resources.tasks.get_mut("server") {
        task.devices = vec![AllocatedDeviceResource {
            vendor: "caravan-test".to_owned(),
            device_type: "gpu".to_owned(),
            name: "sim".to_owned(),
            device_ids: device_ids.iter().map(|id| (*id).to_owned()).collect(),
        }];
    }
    alloc
}

#[test]
fn a_device_instance_is_never_given_twice_nor_unhealthy() {
    let store = store_with(
        vec![node_with_devices()],
        vec![alloc_with_devices("a1", &["gpu-0"])],
    );
    let refusal = |allocs: Vec<Allocation>| {
        let verdict = accepted_nodes(&store.snapshot(), &plan_placing(allocs));
        verdict.refused.first().map(|(_, reason)| *reason)
    };
    assert_eq!(refusal(vec![alloc_with_devices("a2", &["gpu-1"])]), None);
    assert_eq!(
        refusal(vec![alloc_with_devices("a2", &["gpu-0"])]),
        Some("device oversubscribed"),
        "held by a1"
    );
    assert_eq!(
        refusal(vec![
            alloc_with_devices("a2", &["gpu-1"]),
            alloc_with_devices("a3", &["gpu-1"]),
        ]),
        Some("device oversubscribed"),
        "given twice in one plan"
    );
    assert_eq!(
        refusal(vec![alloc_with_devices("a2", &["gpu-2"])]),
        Some("device not available"),
        "unhealthy"
    );
    assert_eq!(
        refusal(vec![alloc_with_devices("a2", &["gpu-9"])]),
        Some("device not available"),
        "no such instance"
    );
    // Stopping a1 in the same plan frees gpu-0 for its replacement.
    let mut plan = plan_placing(vec![alloc_with_devices("a2", &["gpu-0"])]);
    plan.append_stopped_alloc(&alloc_with_devices("a1", &["gpu-0"]), "replaced", None);
    assert!(accepted_nodes(&store.snapshot(), &plan).refused.is_empty());
}

#[test]
fn a_core_is_never_reserved_twice_nor_outside_the_reservable_ones() {
    let mut node = node("n1", NodeStatus::Ready);
    node.node_resources.cpu.reservable_cpu_cores = vec![0, 1, 2];
    // The operator keeps core 2 for the system.
    node.reserved_resources.cpu.reservable_cpu_cores = vec![2];
    let with_cores = |id: &str, cores: &[u32]| {
        let mut alloc = alloc(id, "n1", 100, None);
        if let Some(task) = alloc.allocated_resources.tasks.get_mut("server") {
            task.cpu.reserved_cores = cores.to_vec();
        }
        alloc
    };
    let store = store_with(vec![node], vec![with_cores("a1", &[0])]);
    let refusal = |allocs: Vec<Allocation>| {
        let verdict = accepted_nodes(&store.snapshot(), &plan_placing(allocs));
        verdict.refused.first().map(|(_, reason)| *reason)
    };
    assert_eq!(refusal(vec![with_cores("a2", &[1])]), None);
    assert_eq!(
        refusal(vec![with_cores("a2", &[0])]),
        Some("cores oversubscribed"),
        "held by a1"
    );
    assert_eq!(
        refusal(vec![with_cores("a2", &[1]), with_cores("a3", &[1])]),
        Some("cores oversubscribed"),
        "given twice in one plan"
    );
    assert_eq!(
        refusal(vec![with_cores("a2", &[2])]),
        Some("core not reservable"),
        "reserved by the operator"
    );
    assert_eq!(
        refusal(vec![with_cores("a2", &[7])]),
        Some("core not reservable"),
        "no such core"
    );
}
