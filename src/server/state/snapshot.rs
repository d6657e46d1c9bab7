//! An immutable view of the state at one index: what scheduler workers and API reads use.

use std::sync::Arc;

use super::tables::{Tables, job_key, with_prefix};
use crate::scheduler;
use crate::structs::{
    AllocId, Allocation, Deployment, DeploymentId, EvalId, Evaluation, Job, JobId, JobSummary,
    Node, NodeId,
};

/// A copy of every table; cheap to make, never changes.
#[derive(Clone, Debug)]
pub struct StateSnapshot {
    pub(super) tables: Tables,
}

impl StateSnapshot {
    pub(super) fn new(tables: Tables) -> Self {
        Self { tables }
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The stored scheduler configuration; `None` until a leader or the operator wrote one.
    pub fn scheduler_config(&self) -> Option<Arc<crate::structs::SchedulerConfiguration>> {
        self.tables.scheduler_config.clone()
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Arc<Job>> {
        self.tables.jobs.values()
    }

    pub fn job(&self, namespace: &str, job_id: &JobId) -> Option<Arc<Job>> {
        self.tables.jobs.get(&job_key(namespace, job_id)).cloned()
    }

    /// The jobs launched or dispatched from a periodic or parameterized job, in ID order.
    pub fn job_children<'a>(
        &'a self,
        namespace: &'a str,
        parent_id: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Job>> + 'a {
        self.tables.job_children(namespace, parent_id)
    }

    /// Every tracked version of a job, newest first.
    pub fn job_versions(&self, namespace: &str, job_id: &JobId) -> Vec<Arc<Job>> {
        let key = job_key(namespace, job_id);
        let mut versions: Vec<_> = self
            .tables
            .job_versions
            .range((key.clone(), 0)..=(key, u64::MAX))
            .map(|(_, job)| job.clone())
            .collect();
        versions.reverse();
        versions
    }

    pub fn job_summary(&self, namespace: &str, job_id: &JobId) -> Option<Arc<JobSummary>> {
        self.tables
            .job_summaries
            .get(&job_key(namespace, job_id))
            .cloned()
    }

    pub fn nodes_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Arc<Node>> {
        with_prefix(&self.tables.nodes, NodeId::from(prefix), prefix, |id| &id.0)
    }

    pub fn allocs_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Allocation>> {
        with_prefix(&self.tables.allocs, AllocId::from(prefix), prefix, |id| {
            &id.0
        })
    }

    pub fn evals_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Evaluation>> {
        with_prefix(&self.tables.evals, EvalId::from(prefix), prefix, |id| &id.0)
    }

    pub fn deployments_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Deployment>> {
        with_prefix(
            &self.tables.deployments,
            DeploymentId::from(prefix),
            prefix,
            |id| &id.0,
        )
    }

    pub fn alloc(&self, alloc_id: &AllocId) -> Option<Arc<Allocation>> {
        self.tables.allocs.get(alloc_id).cloned()
    }

    pub fn eval(&self, eval_id: &EvalId) -> Option<Arc<Evaluation>> {
        self.tables.evals.get(eval_id).cloned()
    }

    pub fn deployment(&self, deployment_id: &DeploymentId) -> Option<Arc<Deployment>> {
        self.tables.deployments.get(deployment_id).cloned()
    }

    pub fn evals_by_job(&self, namespace: &str, job_id: &JobId) -> Vec<Arc<Evaluation>> {
        self.tables
            .evals_by_job
            .get(&job_key(namespace, job_id))
            .map(|evals| evals.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn allocs_by_eval(&self, eval: &Evaluation) -> Vec<Arc<Allocation>> {
        self.tables
            .allocs_by_job
            .get(&job_key(&eval.namespace, &eval.job_id))
            .map(|allocs| {
                allocs
                    .values()
                    .filter(|alloc| alloc.eval_id == eval.id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn deployments_by_job(&self, namespace: &str, job_id: &JobId) -> Vec<Arc<Deployment>> {
        let mut deployments: Vec<_> = self
            .tables
            .deployments_by_job
            .get(&job_key(namespace, job_id))
            .map(|deployments| deployments.values().cloned().collect())
            .unwrap_or_default();
        deployments.sort_by_key(|deployment| std::cmp::Reverse(deployment.create_index));
        deployments
    }
}

impl scheduler::State for StateSnapshot {
    fn index(&self) -> u64 {
        self.tables.indexes.latest
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        self.tables.nodes.values().cloned().collect()
    }

    fn node_by_id(&self, node_id: &NodeId) -> Option<Arc<Node>> {
        self.tables.nodes.get(node_id).cloned()
    }

    fn job_by_id(&self, namespace: &str, job_id: &JobId) -> Option<Arc<Job>> {
        self.job(namespace, job_id)
    }

    fn allocs_by_job(&self, namespace: &str, job_id: &JobId) -> Vec<Arc<Allocation>> {
        self.tables
            .allocs_by_job
            .get(&job_key(namespace, job_id))
            .map(|allocs| allocs.values().cloned().collect())
            .unwrap_or_default()
    }

    fn allocs_by_node(&self, node_id: &NodeId) -> Vec<Arc<Allocation>> {
        self.tables
            .allocs_by_node
            .get(node_id)
            .map(|allocs| allocs.values().cloned().collect())
            .unwrap_or_default()
    }

    fn node_usage(&self, node_id: &NodeId) -> scheduler::usage::NodeUsage {
        self.tables
            .node_usage
            .get(node_id)
            .map(|usage| (**usage).clone())
            .unwrap_or_default()
    }

    fn latest_deployment_by_job(&self, namespace: &str, job_id: &JobId) -> Option<Arc<Deployment>> {
        self.tables
            .deployments_by_job
            .get(&job_key(namespace, job_id))?
            .values()
            .max_by_key(|deployment| deployment.create_index)
            .cloned()
    }
}

impl StateSnapshot {
    /// This view with `command` applied on top, for dry runs (`job plan`); the store is untouched.
    pub fn speculative(&self, command: &crate::server::raft::Command) -> StateSnapshot {
        let mut tables = self.tables.clone();
        let index = tables.indexes.latest + 1;
        let mut effects = super::ApplyEffects::new(false);
        tables.apply(index, command, &mut effects);
        StateSnapshot::new(tables)
    }
}
