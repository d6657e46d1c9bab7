//! Test fixtures: nodes, jobs and evaluations shaped like Nomad's `nomad/mock`.

use std::collections::BTreeMap;

use crate::structs::{
    DriverInfo, EvalId, EvalStatus, EvalTrigger, Evaluation, Job, JobId, JobType, NetworkResource,
    Node, NodeCpuResources, NodeDiskResources, NodeId, NodeMemoryResources, NodeResources,
    NodeStatus, Port, Resources, Task, TaskGroup,
};

/// A ready node with 4000 MHz, 8192 MB, 100 GB of disk, the wasm and raw_exec drivers.
pub fn node(idx: usize) -> Node {
    let mut attributes = BTreeMap::new();
    attributes.insert("kernel.name".to_owned(), "linux".to_owned());
    attributes.insert(
        "unique.network.ip-address".to_owned(),
        format!("10.0.{}.{}", idx / 250, idx % 250 + 1),
    );
    let mut drivers = BTreeMap::new();
    for driver in ["wasm", "raw_exec"] {
        drivers.insert(
            driver.to_owned(),
            DriverInfo {
                detected: true,
                healthy: true,
                ..DriverInfo::default()
            },
        );
    }
    Node {
        id: NodeId::from(format!("00000000-0000-4000-8000-{idx:012}")),
        name: format!("node-{idx}"),
        datacenter: "dc1".to_owned(),
        node_pool: "default".to_owned(),
        node_class: String::new(),
        attributes,
        drivers,
        node_resources: NodeResources {
            cpu: NodeCpuResources {
                cpu_shares: 4000,
                total_cpu_cores: 4,
                ..NodeCpuResources::default()
            },
            memory: NodeMemoryResources { memory_mb: 8192 },
            disk: NodeDiskResources {
                disk_mb: 100 * 1024,
            },
            networks: Vec::new(),
            min_dynamic_port: 20000,
            max_dynamic_port: 32000,
            devices: Vec::new(),
        },
        status: NodeStatus::Ready,
        ..Node::default()
    }
}

/// A service job `web` with one group `web` of `count` tasks asking 500 MHz and 256 MB.
pub fn job(count: i32) -> Job {
    let mut job = Job {
        id: JobId::from("web"),
        job_type: JobType::Service,
        datacenters: vec!["dc1".to_owned()],
        task_groups: vec![group("web", count, 500, 256)],
        ..Job::default()
    };
    job.canonicalize();
    job
}

pub fn group(name: &str, count: i32, cpu: i32, memory_mb: i32) -> TaskGroup {
    TaskGroup {
        name: name.to_owned(),
        count,
        tasks: vec![Task {
            name: "server".to_owned(),
            driver: "wasm".to_owned(),
            resources: Some(Resources {
                cpu,
                memory_mb,
                ..Resources::default()
            }),
            ..Task::default()
        }],
        ..TaskGroup::default()
    }
}

/// A network block with the given static ports and dynamic port labels.
pub fn network(static_ports: &[(&str, i32)], dynamic: &[&str]) -> NetworkResource {
    NetworkResource {
        mode: "host".to_owned(),
        reserved_ports: static_ports
            .iter()
            .map(|(label, value)| Port {
                label: (*label).to_owned(),
                value: *value,
                ..Port::default()
            })
            .collect(),
        dynamic_ports: dynamic
            .iter()
            .map(|label| Port {
                label: (*label).to_owned(),
                ..Port::default()
            })
            .collect(),
        ..NetworkResource::default()
    }
}

pub fn eval(job: &Job, id: &str) -> Evaluation {
    Evaluation {
        id: EvalId::from(id),
        namespace: job.namespace.clone(),
        priority: job.priority,
        eval_type: job.job_type,
        triggered_by: EvalTrigger::JOB_REGISTER.to_owned(),
        job_id: job.id.clone(),
        job_modify_index: job.job_modify_index,
        status: EvalStatus::Pending,
        ..Evaluation::default()
    }
}
