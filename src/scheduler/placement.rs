//! Turning a decision into allocations: new ones on a chosen node, updated ones in place.
//!
//! IDs: a placed allocation gets a fresh random UUID ([`AllocId::generate`]). Plans are made before
//! Raft, so this keeps apply deterministic; only the IDs differ between two runs of the same
//! evaluation over the same snapshot, everything else (nodes, names, ports, resources) is decided
//! by the seeded generator.
//!
//! Nomad: `scheduler/generic_sched.go` `computePlacements`, `scheduler/util.go` `inplaceUpdate`.

use std::collections::HashMap;
use std::sync::Arc;

use super::context::EvalContext;
use super::feasible::GroupFeasibility;
use super::feasible::ports::PortAsk;
use super::feasible::resources::{ResourceAsk, check_fit};
use super::stack::RankedNode;
use super::usage::host_ip;
use crate::structs::{
    AllocClientStatus, AllocDesiredStatus, AllocId, AllocMetric, AllocatedCpu, AllocatedMemory,
    AllocatedPort, AllocatedResources, AllocatedSharedResources, AllocatedTaskResources,
    Allocation, DeploymentId, Job, NetworkResource, NodeId, RescheduleEvent, RescheduleTracker,
    SortedVecMap, TaskGroup,
};

/// Reschedule events kept on an allocation whose policy is unlimited (Nomad's
/// `maxPastRescheduleEvents`).
const MAX_PAST_RESCHEDULE_EVENTS: usize = 5;

/// Each task's CPU and memory as granted.
pub fn task_resources(group: &TaskGroup) -> SortedVecMap<String, AllocatedTaskResources> {
    group
        .tasks
        .iter()
        .map(|task| {
            let resources = task.resources.clone().unwrap_or_default();
            (
                task.name.clone(),
                AllocatedTaskResources {
                    cpu: AllocatedCpu {
                        cpu_shares: i64::from(resources.cpu),
                        reserved_cores: Vec::new(),
                    },
                    memory: AllocatedMemory {
                        memory_mb: i64::from(resources.memory_mb),
                        memory_max_mb: i64::from(resources.memory_max_mb),
                    },
                    networks: Vec::new(),
                    devices: Vec::new(),
                },
            )
        })
        .collect()
}

/// The group's network block as granted: the asked ports with the host ports chosen.
fn granted_network(ask: &PortAsk, ports: &[AllocatedPort], host_ip: &str) -> Vec<NetworkResource> {
    let Some(network) = &ask.network else {
        return Vec::new();
    };
    let n_static = ask.static_ports.len();
    let with_value = |asked: &crate::structs::Port, granted: Option<&AllocatedPort>| {
        let mut port = asked.clone();
        if let Some(granted) = granted {
            port.value = granted.value;
            port.to = granted.to;
        }
        port
    };
    vec![NetworkResource {
        ip: host_ip.to_owned(),
        reserved_ports: ask
            .static_ports
            .iter()
            .enumerate()
            .map(|(idx, port)| with_value(port, ports.get(idx)))
            .collect(),
        dynamic_ports: ask
            .dynamic_ports
            .iter()
            .enumerate()
            .map(|(idx, port)| with_value(port, ports.get(n_static + idx)))
            .collect(),
        ..network.clone()
    }]
}

/// What a new allocation is made of.
pub struct NewAlloc<'a> {
    pub job: &'a Arc<Job>,
    pub group: &'a TaskGroup,
    pub ask: &'a ResourceAsk,
    pub port_ask: &'a PortAsk,
    pub name: String,
    pub ranked: RankedNode,
    pub metric: AllocMetric,
    pub previous: Option<&'a Allocation>,
    pub reschedule: bool,
}

pub fn build_alloc(ctx: &mut EvalContext, new: NewAlloc<'_>) -> Allocation {
    let node = new.ranked.node.clone();
    let host_ip = host_ip(&node);
    let networks = granted_network(new.port_ask, &new.ranked.ports, &host_ip);
    let mut tasks = task_resources(new.group);
    for (task, devices) in new.ranked.devices.tasks {
        if let Some(resources) = tasks.get_mut(&task) {
            resources.devices = devices;
        }
    }
    for (task, (cores, mhz)) in new.ranked.cores.tasks {
        if let Some(resources) = tasks.get_mut(&task) {
            resources.cpu.reserved_cores = cores;
            resources.cpu.cpu_shares = mhz;
        }
    }
    let mut alloc = Allocation {
        id: AllocId::generate(),
        namespace: new.job.namespace.clone(),
        eval_id: ctx.eval.id.clone(),
        name: new.name,
        node_id: node.id.clone(),
        node_name: node.name.clone(),
        job_id: new.job.id.clone(),
        job: Some(new.job.clone()),
        task_group: new.group.name.clone(),
        allocated_resources: AllocatedResources {
            tasks,
            shared: AllocatedSharedResources {
                networks,
                disk_mb: new.ask.disk_mb,
                ports: new.ranked.ports,
            },
        },
        metrics: Some(std::sync::Arc::new(new.metric)),
        desired_status: AllocDesiredStatus::Run,
        client_status: AllocClientStatus::Pending,
        create_time: ctx.now,
        modify_time: ctx.now,
        ..Allocation::default()
    };
    if let Some(previous) = new.previous {
        alloc.previous_allocation = Some(previous.id.clone());
        if new.reschedule {
            let policy = new.group.reschedule_policy.as_ref();
            let mut events = previous
                .reschedule_tracker
                .as_ref()
                .map(|tracker| tracker.events.clone())
                .unwrap_or_default();
            let delay = policy.map_or(std::time::Duration::ZERO, |policy| {
                policy.delay_for_attempt(u32::try_from(events.len()).unwrap_or(u32::MAX))
            });
            events.push(RescheduleEvent {
                reschedule_time: ctx.now,
                prev_alloc_id: previous.id.clone(),
                prev_node_id: previous.node_id.clone(),
                delay: i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX),
            });
            if policy.is_some_and(|policy| policy.unlimited)
                && events.len() > MAX_PAST_RESCHEDULE_EVENTS
            {
                events.drain(..events.len() - MAX_PAST_RESCHEDULE_EVENTS);
            }
            alloc.reschedule_tracker = Some(RescheduleTracker { events });
        }
    }
    alloc
}

/// The nodes a rescheduled allocation should avoid: where it and its predecessors failed.
pub fn penalty_nodes(previous: Option<&Allocation>, reschedule: bool) -> Vec<NodeId> {
    let Some(previous) = previous.filter(|_| reschedule) else {
        return Vec::new();
    };
    let mut nodes = vec![previous.node_id.clone()];
    if let Some(tracker) = &previous.reschedule_tracker {
        nodes.extend(
            tracker
                .events
                .iter()
                .map(|event| event.prev_node_id.clone()),
        );
    }
    nodes.sort();
    nodes.dedup();
    nodes
}

/// Updates `alloc` to `job` on its node if the node still meets the group's constraints and fits
/// the new resources; `false` if it must be replaced instead. An allocation updated in place joins
/// `deployment` (the job version's active deployment) with its health to be decided again
/// (Nomad: `generic_sched.go` `computeJobAllocs`, the in-place updates).
pub fn try_in_place(
    ctx: &mut EvalContext,
    job: &Arc<Job>,
    alloc: &Arc<Allocation>,
    deployment: Option<&DeploymentId>,
    feasibility: &mut HashMap<String, GroupFeasibility>,
) -> bool {
    let Some(group) = job.task_group(&alloc.task_group) else {
        return false;
    };
    let Some(node_idx) = ctx.node_idx(&alloc.node_id) else {
        return false;
    };
    let node = ctx.all_nodes[node_idx].clone();
    let checks = feasibility
        .entry(group.name.clone())
        .or_insert_with(|| GroupFeasibility::new(job, group));
    if checks.check(&node).is_err() || checks.check_allocation(&node, &alloc.name).is_err() {
        return false;
    }
    let ask = ResourceAsk::of(group);
    let old = &alloc.allocated_resources;
    let delta = ResourceAsk {
        cpu: ask.cpu - old.total_cpu(),
        memory_mb: ask.memory_mb - old.total_memory_mb(),
        disk_mb: ask.disk_mb - old.shared.disk_mb,
    };
    let entry = ctx.entry_at(node_idx);
    if check_fit(&entry.capacity, &entry.usage, &delta).is_err() {
        return false;
    }
    let mut updated = (**alloc).clone();
    updated.job = Some(job.clone());
    updated.eval_id = ctx.eval.id.clone();
    // The device asks are unchanged (a change is destructive), so each task keeps its instances.
    let mut tasks = task_resources(group);
    for (task, resources) in &mut tasks {
        if let Some(old_task) = old.tasks.get(task) {
            resources.devices = old_task.devices.clone();
            // The cores asked are unchanged too: the task keeps its cores and their MHz.
            if !old_task.cpu.reserved_cores.is_empty() {
                resources.cpu = old_task.cpu.clone();
            }
        }
    }
    updated.allocated_resources.tasks = tasks;
    updated.allocated_resources.shared.disk_mb = ask.disk_mb;
    updated.modify_time = ctx.now;
    if let Some(deployment_id) = deployment
        && updated.deployment_id.as_ref() != Some(deployment_id)
    {
        updated.deployment_id = Some(deployment_id.clone());
        updated.deployment_status = None;
    }
    ctx.update_in_place(alloc, updated);
    true
}
