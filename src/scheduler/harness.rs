//! A recording test harness: an in-memory [`State`] and a [`Planner`] that applies plans to it.
//!
//! [`MemState`] keeps its tables in persistent maps (`imbl`), so a snapshot is an O(1) clone, and
//! keeps per-node usage as an index (overriding [`State::node_usage`]) as a real store should.
//! [`Harness`] records every plan and evaluation it is given, commits plans to its state, and can
//! refuse whole plans or the placements on one node to exercise partial commits.
//!
//! Nomad: `scheduler/testing.go` `Harness`.

use std::sync::Arc;

use imbl::OrdMap;

use super::usage::NodeUsage;
use super::{Planner, PlannerError, SchedulerConfig, SchedulerError, State, process_eval};
use crate::structs::{
    AllocId, Allocation, Deployment, Evaluation, Job, JobId, Node, NodeId, Plan, PlanResult,
};

type JobKey = (String, JobId);

/// An in-memory cluster state.
#[derive(Clone, Debug, Default)]
pub struct MemState {
    index: u64,
    nodes: OrdMap<NodeId, Arc<Node>>,
    jobs: OrdMap<JobKey, Arc<Job>>,
    allocs: OrdMap<AllocId, Arc<Allocation>>,
    allocs_by_node: OrdMap<NodeId, OrdMap<AllocId, Arc<Allocation>>>,
    allocs_by_job: OrdMap<JobKey, OrdMap<AllocId, Arc<Allocation>>>,
    usage_by_node: OrdMap<NodeId, NodeUsage>,
    deployments: OrdMap<JobKey, Arc<Deployment>>,
}

impl MemState {
    fn next_index(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    pub fn upsert_node(&mut self, mut node: Node) {
        let index = self.next_index();
        node.modify_index = index;
        if node.create_index == 0 {
            node.create_index = index;
        }
        self.nodes.insert(node.id.clone(), Arc::new(node));
    }

    pub fn upsert_job(&mut self, mut job: Job) -> Arc<Job> {
        let index = self.next_index();
        let key = (job.namespace.clone(), job.id.clone());
        if let Some(previous) = self.jobs.get(&key) {
            job.version = previous.version + 1;
            job.create_index = previous.create_index;
        } else {
            job.create_index = index;
        }
        job.modify_index = index;
        job.job_modify_index = index;
        let job = Arc::new(job);
        self.jobs.insert(key, job.clone());
        job
    }

    pub fn upsert_allocs(&mut self, allocs: impl IntoIterator<Item = Allocation>) {
        let index = self.next_index();
        for alloc in allocs {
            self.put_alloc(alloc, index);
        }
    }

    pub fn upsert_deployment(&mut self, deployment: Deployment) {
        self.next_index();
        let key = (deployment.namespace.clone(), deployment.job_id.clone());
        self.deployments.insert(key, Arc::new(deployment));
    }

    fn put_alloc(&mut self, mut alloc: Allocation, index: u64) {
        let previous = self.allocs.get(&alloc.id).cloned();
        if let Some(previous) = &previous {
            if alloc.job.is_none() {
                alloc.job = previous.job.clone();
            }
            alloc.create_index = previous.create_index;
            if let Some(usage) = self.usage_by_node.get_mut(&previous.node_id)
                && !previous.is_terminal()
            {
                usage.remove(previous);
            }
        } else {
            alloc.create_index = index;
        }
        alloc.modify_index = index;
        alloc.alloc_modify_index = index;
        if let Some(previous_id) = alloc.previous_allocation.clone()
            && let Some(replaced) = self.allocs.get(&previous_id).cloned()
            && replaced.next_allocation.is_none()
        {
            let mut replaced = (*replaced).clone();
            replaced.next_allocation = Some(alloc.id.clone());
            self.put_alloc(replaced, index);
        }
        if !alloc.is_terminal() {
            self.usage_by_node
                .entry(alloc.node_id.clone())
                .or_default()
                .add(&alloc);
        }
        let alloc = Arc::new(alloc);
        let job_key = (alloc.namespace.clone(), alloc.job_id.clone());
        self.allocs.insert(alloc.id.clone(), alloc.clone());
        self.allocs_by_node
            .entry(alloc.node_id.clone())
            .or_default()
            .insert(alloc.id.clone(), alloc.clone());
        self.allocs_by_job
            .entry(job_key)
            .or_default()
            .insert(alloc.id.clone(), alloc);
    }

    pub fn alloc_by_id(&self, alloc_id: &AllocId) -> Option<Arc<Allocation>> {
        self.allocs.get(alloc_id).cloned()
    }

    /// Every allocation, in ID order.
    pub fn allocs(&self) -> Vec<Arc<Allocation>> {
        self.allocs.values().cloned().collect()
    }

    /// Commits `plan` except the placements `refuse` rejects; returns what was committed.
    pub fn apply_plan(&mut self, plan: &Plan, refuse: &dyn Fn(&NodeId) -> bool) -> PlanResult {
        let index = self.next_index();
        let mut result = PlanResult {
            alloc_index: index,
            deployment: plan.deployment.clone(),
            deployment_updates: plan.deployment_updates.clone(),
            ..PlanResult::default()
        };
        if let Some(deployment) = &plan.deployment {
            self.upsert_deployment(deployment.clone());
        }
        for update in &plan.deployment_updates {
            let key = self
                .deployments
                .iter()
                .find(|(_, deployment)| deployment.id == update.deployment_id)
                .map(|(key, _)| key.clone());
            if let Some(key) = key
                && let Some(existing) = self.deployments.get(&key)
            {
                let mut deployment = (**existing).clone();
                deployment.status = update.status;
                deployment.status_description = update.status_description.clone();
                self.deployments.insert(key, Arc::new(deployment));
            }
        }
        for (node_id, stops) in &plan.node_update {
            for stop in stops {
                let Some(existing) = self.allocs.get(&stop.id).cloned() else {
                    continue;
                };
                let mut stopped = (*existing).clone();
                stopped.desired_status = stop.desired_status;
                stopped.desired_description = stop.desired_description.clone();
                stopped.client_status = stop.client_status;
                self.put_alloc(stopped, index);
                result
                    .node_update
                    .entry(node_id.clone())
                    .or_default()
                    .push(Arc::new(stop.clone()));
            }
        }
        for (node_id, allocs) in &plan.node_allocation {
            if refuse(node_id) {
                result.refresh_index = index;
                continue;
            }
            for alloc in allocs {
                let mut alloc = alloc.clone();
                if alloc.job.is_none() {
                    alloc.job = plan.job.clone();
                }
                self.put_alloc(alloc.clone(), index);
                result
                    .node_allocation
                    .entry(node_id.clone())
                    .or_default()
                    .push(Arc::new(alloc));
            }
        }
        result
    }
}

impl State for MemState {
    fn index(&self) -> u64 {
        self.index
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.values().cloned().collect()
    }

    fn node_by_id(&self, node_id: &NodeId) -> Option<Arc<Node>> {
        self.nodes.get(node_id).cloned()
    }

    fn job_by_id(&self, namespace: &str, job_id: &JobId) -> Option<Arc<Job>> {
        self.jobs
            .get(&(namespace.to_owned(), job_id.clone()))
            .cloned()
    }

    fn allocs_by_job(&self, namespace: &str, job_id: &JobId) -> Vec<Arc<Allocation>> {
        self.allocs_by_job
            .get(&(namespace.to_owned(), job_id.clone()))
            .map(|allocs| allocs.values().cloned().collect())
            .unwrap_or_default()
    }

    fn allocs_by_node(&self, node_id: &NodeId) -> Vec<Arc<Allocation>> {
        self.allocs_by_node
            .get(node_id)
            .map(|allocs| allocs.values().cloned().collect())
            .unwrap_or_default()
    }

    fn latest_deployment_by_job(&self, namespace: &str, job_id: &JobId) -> Option<Arc<Deployment>> {
        self.deployments
            .get(&(namespace.to_owned(), job_id.clone()))
            .cloned()
    }

    fn node_usage(&self, node_id: &NodeId) -> NodeUsage {
        self.usage_by_node.get(node_id).cloned().unwrap_or_default()
    }
}

/// A planner that records and commits everything it is given.
#[derive(Debug, Default)]
pub struct Harness {
    pub state: MemState,
    pub plans: Vec<Plan>,
    pub updated_evals: Vec<Evaluation>,
    pub created_evals: Vec<Evaluation>,
    pub reblocked_evals: Vec<Evaluation>,
    /// Refuse this many of the next plans entirely.
    pub reject_plans: u32,
    /// Refuse placements on this node for this many of the next plans.
    pub refuse_node: Option<(NodeId, u32)>,
}

impl Harness {
    pub fn new(state: MemState) -> Self {
        Self {
            state,
            ..Self::default()
        }
    }

    pub fn snapshot(&self) -> Arc<dyn State> {
        Arc::new(self.state.clone())
    }

    /// Runs the scheduler for `eval` against the current state.
    pub fn process(
        &mut self,
        config: &SchedulerConfig,
        eval: &Evaluation,
    ) -> Result<(), SchedulerError> {
        let state = self.snapshot();
        process_eval(state, self, config, eval)
    }

    /// The last evaluation update the scheduler made.
    pub fn last_eval(&self) -> Option<&Evaluation> {
        self.updated_evals.last()
    }

    /// All placements of all plans.
    pub fn placed(&self) -> Vec<&Allocation> {
        self.plans
            .iter()
            .flat_map(|plan| plan.node_allocation.values().flatten())
            .collect()
    }

    /// All stops of all plans.
    pub fn stopped(&self) -> Vec<&Allocation> {
        self.plans
            .iter()
            .flat_map(|plan| plan.node_update.values().flatten())
            .collect()
    }
}

impl Planner for Harness {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), PlannerError> {
        if self.reject_plans > 0 {
            self.reject_plans -= 1;
            self.plans.push(plan);
            let result = PlanResult {
                refresh_index: self.state.index(),
                ..PlanResult::default()
            };
            return Ok((result, Some(self.snapshot())));
        }
        let refused = match &mut self.refuse_node {
            Some((node_id, remaining)) if *remaining > 0 => {
                *remaining -= 1;
                Some(node_id.clone())
            }
            _ => None,
        };
        let result = self
            .state
            .apply_plan(&plan, &|node_id| refused.as_ref() == Some(node_id));
        self.plans.push(plan);
        let refreshed = (result.refresh_index != 0).then(|| self.snapshot());
        Ok((result, refreshed))
    }

    fn update_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError> {
        self.updated_evals.push(eval);
        Ok(())
    }

    fn create_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError> {
        self.created_evals.push(eval);
        Ok(())
    }

    fn reblock_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError> {
        self.reblocked_evals.push(eval);
        Ok(())
    }
}

/// Synthetic clusters for throughput measurements (no clock here: callers time the run).
pub mod synthetic {
    use std::collections::BTreeMap;

    use super::{Harness, MemState};
    use crate::scheduler::{SchedulerConfig, SchedulerError};
    use crate::structs::{
        DriverInfo, EvalId, EvalStatus, EvalTrigger, Evaluation, Job, JobId, JobType,
        NetworkResource, Node, NodeCpuResources, NodeDiskResources, NodeId, NodeMemoryResources,
        NodeResources, NodeStatus, Port, Resources, Task, TaskGroup,
    };

    /// A ready node with 16 000 MHz, 32 GB, 500 GB of disk and the wasm driver.
    pub fn node(idx: usize) -> Node {
        let mut drivers = BTreeMap::new();
        drivers.insert(
            "wasm".to_owned(),
            DriverInfo {
                detected: true,
                healthy: true,
                ..DriverInfo::default()
            },
        );
        let mut attributes = BTreeMap::new();
        attributes.insert("kernel.name".to_owned(), "linux".to_owned());
        attributes.insert(
            "unique.network.ip-address".to_owned(),
            format!("10.{}.{}.{}", idx / 65536 % 256, idx / 256 % 256, idx % 256),
        );
        Node {
            id: NodeId::from(format!("00000000-0000-4000-8000-{idx:012}")),
            name: format!("node-{idx}"),
            datacenter: format!("dc{}", idx % 3 + 1),
            node_pool: "default".to_owned(),
            computed_class: "synthetic".to_owned(),
            attributes,
            drivers,
            node_resources: NodeResources {
                cpu: NodeCpuResources {
                    cpu_shares: 16_000,
                    total_cpu_cores: 8,
                    ..NodeCpuResources::default()
                },
                memory: NodeMemoryResources { memory_mb: 32_768 },
                disk: NodeDiskResources {
                    disk_mb: 500 * 1024,
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

    /// A service job `job-<idx>` of `count` small Wasm tasks (50 MHz, 64 MB, one dynamic port).
    pub fn job(idx: usize, count: i32) -> Job {
        let mut job = Job {
            id: JobId::from(format!("job-{idx}")),
            job_type: JobType::Service,
            datacenters: vec!["*".to_owned()],
            task_groups: vec![TaskGroup {
                name: "app".to_owned(),
                count,
                networks: vec![NetworkResource {
                    dynamic_ports: vec![Port {
                        label: "http".to_owned(),
                        ..Port::default()
                    }],
                    ..NetworkResource::default()
                }],
                tasks: vec![Task {
                    name: "app".to_owned(),
                    driver: "wasm".to_owned(),
                    resources: Some(Resources {
                        cpu: 50,
                        memory_mb: 64,
                        ..Resources::default()
                    }),
                    ..Task::default()
                }],
                ..TaskGroup::default()
            }],
            ..Job::default()
        };
        job.canonicalize();
        if let Some(disk) = &mut job.task_groups[0].ephemeral_disk {
            disk.size_mb = 10;
        }
        job
    }

    /// A harness with `n_nodes` nodes and `n_jobs` jobs of `count` registered, and their evals.
    pub fn cluster(n_nodes: usize, n_jobs: usize, count: i32) -> (Harness, Vec<Evaluation>) {
        let mut state = MemState::default();
        for idx in 0..n_nodes {
            state.upsert_node(node(idx));
        }
        let mut evals = Vec::with_capacity(n_jobs);
        for idx in 0..n_jobs {
            let job = state.upsert_job(job(idx, count));
            evals.push(Evaluation {
                id: EvalId::from(format!("00000000-0000-4000-9000-{idx:012}")),
                namespace: job.namespace.clone(),
                priority: job.priority,
                eval_type: job.job_type,
                triggered_by: EvalTrigger::JOB_REGISTER.to_owned(),
                job_id: job.id.clone(),
                job_modify_index: job.job_modify_index,
                status: EvalStatus::Pending,
                ..Evaluation::default()
            });
        }
        (Harness::new(state), evals)
    }

    /// Schedules every evaluation in turn; returns how many allocations were placed.
    pub fn run(
        harness: &mut Harness,
        evals: &[Evaluation],
        config: &SchedulerConfig,
    ) -> Result<usize, SchedulerError> {
        let mut placed = 0;
        for eval in evals {
            let before = harness.plans.len();
            harness.process(config, eval)?;
            placed += harness.plans[before..]
                .iter()
                .flat_map(|plan| plan.node_allocation.values())
                .map(Vec::len)
                .sum::<usize>();
            // Keep memory flat: the state holds the committed allocations already.
            harness.plans.clear();
        }
        Ok(placed)
    }
}
