//! The state in the form a Raft snapshot stores: flat lists, indexes rebuilt on restore.
//!
//! Allocations are stored without their job; each names the job version it runs, and restore
//! points it at the one stored copy of that version, as the live store shares it.

use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::tables::{TableIndexes, Tables, job_key};
use crate::structs::{
    AclPolicy, AclToken, Allocation, Deployment, Evaluation, Job, JobScalingEvents, JobSummary,
    Node, SchedulerConfiguration, ServiceRegistration,
};

/// An allocation without its job, and the version of the job it runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PersistedAlloc {
    pub job_version: Option<u64>,
    pub alloc: Allocation,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PersistedState {
    pub indexes: TableIndexes,
    pub jobs: Vec<Arc<Job>>,
    pub job_versions: Vec<Arc<Job>>,
    pub job_summaries: Vec<Arc<JobSummary>>,
    pub nodes: Vec<Arc<Node>>,
    pub allocs: Vec<PersistedAlloc>,
    pub evals: Vec<Arc<Evaluation>>,
    pub deployments: Vec<Arc<Deployment>>,
    pub services: Vec<Arc<ServiceRegistration>>,
    pub scaling_events: Vec<Arc<JobScalingEvents>>,
    pub scheduler_config: Option<Arc<SchedulerConfiguration>>,
    pub acl_policies: Vec<Arc<AclPolicy>>,
    pub acl_tokens: Vec<Arc<AclToken>>,
    pub acl_bootstrap_index: u64,
}

impl PersistedState {
    pub(super) fn from_tables(tables: &Tables) -> Self {
        Self {
            indexes: tables.indexes,
            jobs: tables.jobs.values().cloned().collect(),
            job_versions: tables.job_versions.values().cloned().collect(),
            job_summaries: tables.job_summaries.values().cloned().collect(),
            nodes: tables.nodes.values().cloned().collect(),
            allocs: tables
                .allocs
                .values()
                .map(|alloc| {
                    let mut alloc = (**alloc).clone();
                    let job_version = alloc.job.take().map(|job| job.version);
                    PersistedAlloc { job_version, alloc }
                })
                .collect(),
            evals: tables.evals.values().cloned().collect(),
            deployments: tables.deployments.values().cloned().collect(),
            services: tables.services.values().cloned().collect(),
            scaling_events: tables.scaling_events.values().cloned().collect(),
            scheduler_config: tables.scheduler_config.clone(),
            acl_policies: tables.acl_policies.values().cloned().collect(),
            acl_tokens: tables.acl_tokens.values().cloned().collect(),
            acl_bootstrap_index: tables.acl_bootstrap_index,
        }
    }

    pub(super) fn into_tables(self) -> Tables {
        let mut tables = Tables::default();
        for job in self.jobs {
            tables.jobs.insert(job_key(&job.namespace, &job.id), job);
        }
        for job in self.job_versions {
            let key = job_key(&job.namespace, &job.id);
            // The current version is shared with the jobs table.
            let job = match tables.jobs.get(&key) {
                Some(current) if current.version == job.version => current.clone(),
                _ => job,
            };
            tables.job_versions.insert((key, job.version), job);
        }
        for summary in self.job_summaries {
            tables
                .job_summaries
                .insert(job_key(&summary.namespace, &summary.job_id), summary);
        }
        for node in self.nodes {
            tables.nodes.insert(node.id.clone(), node);
        }
        for eval in self.evals {
            let key = job_key(&eval.namespace, &eval.job_id);
            tables.evals.insert(eval.id.clone(), eval.clone());
            insert_nested(&mut tables.evals_by_job, key, eval.id.clone(), eval);
        }
        for deployment in self.deployments {
            let key = job_key(&deployment.namespace, &deployment.job_id);
            tables
                .deployments
                .insert(deployment.id.clone(), deployment.clone());
            insert_nested(
                &mut tables.deployments_by_job,
                key,
                deployment.id.clone(),
                deployment,
            );
        }
        for PersistedAlloc {
            job_version,
            mut alloc,
        } in self.allocs
        {
            let key = job_key(&alloc.namespace, &alloc.job_id);
            alloc.job = job_version
                .and_then(|version| tables.job_versions.get(&(key.clone(), version)).cloned());
            let alloc = Arc::new(alloc);
            tables.update_node_usage(None, Some(&alloc));
            tables.allocs.insert(alloc.id.clone(), alloc.clone());
            insert_nested(
                &mut tables.allocs_by_job,
                key,
                alloc.id.clone(),
                alloc.clone(),
            );
            insert_nested(
                &mut tables.allocs_by_node,
                alloc.node_id.clone(),
                alloc.id.clone(),
                alloc,
            );
        }
        for events in self.scaling_events {
            tables
                .scaling_events
                .insert(job_key(&events.namespace, &events.job_id), events);
        }
        for registration in self.services {
            tables
                .services
                .insert(registration.id.clone(), registration);
        }
        tables.scheduler_config = self.scheduler_config;
        for policy in self.acl_policies {
            tables.acl_policies.insert(policy.name.clone(), policy);
        }
        for token in self.acl_tokens {
            tables.insert_acl_token(token);
        }
        tables.acl_bootstrap_index = self.acl_bootstrap_index;
        tables.indexes = self.indexes;
        tables.restored_alloc_index = self.indexes.allocs;
        tables
    }
}

fn insert_nested<K1, K2, V>(map: &mut OrdMap<K1, OrdMap<K2, V>>, outer: K1, inner: K2, value: V)
where
    K1: Ord + Clone,
    K2: Ord + Clone,
    V: Clone,
{
    if let Some(nested) = map.get_mut(&outer) {
        nested.insert(inner, value);
    } else {
        map.insert(outer, OrdMap::unit(inner, value));
    }
}

impl PersistedState {
    /// The persisted form of a state view.
    pub fn from_snapshot(snapshot: &super::StateSnapshot) -> Self {
        Self::from_tables(snapshot.tables())
    }
}
