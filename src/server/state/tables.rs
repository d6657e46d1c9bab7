//! The tables of the state store: persistent maps, so a copy of all of them is a handful of
//! reference-count increments.
//!
//! Invariant: every secondary index (`allocs_by_job`, `allocs_by_node`, `evals_by_job`,
//! `deployments_by_job`) holds the same `Arc` as the primary table for the same key; all writes
//! go through the `upsert_*`/`delete_*` methods of the per-resource files, which keep them in step.

use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use crate::scheduler::usage::NodeUsage;
use crate::structs::{
    AclPolicy, AclToken, AllocId, Allocation, Deployment, DeploymentId, EvalId, Evaluation, Job,
    JobId, JobScalingEvents, JobSummary, Namespace, Node, NodeId, NodePool, RootKeyMeta,
    SchedulerConfiguration, ServiceRegistration, VariableEncrypted,
};

/// A job's key: namespace and ID.
pub type JobKey = (String, JobId);

/// Builds the key of a job in `namespace`.
pub fn job_key(namespace: &str, job_id: &JobId) -> JobKey {
    (namespace.to_owned(), job_id.clone())
}

/// The Raft index at which each table last changed, for blocking queries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TableIndexes {
    /// The last applied Raft index, whatever it changed.
    pub latest: u64,
    pub jobs: u64,
    pub job_summaries: u64,
    pub job_versions: u64,
    pub nodes: u64,
    pub allocs: u64,
    pub evals: u64,
    pub deployments: u64,
    pub services: u64,
    pub scaling_events: u64,
    pub acl_policies: u64,
    pub acl_tokens: u64,
    pub namespaces: u64,
    pub variables: u64,
    pub root_keys: u64,
    pub node_pools: u64,
}

/// Which table a read is about, to pick its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Jobs,
    JobSummaries,
    JobVersions,
    Nodes,
    Allocs,
    Evals,
    Deployments,
    Services,
    ScalingEvents,
    AclPolicies,
    AclTokens,
    Namespaces,
    Variables,
    RootKeys,
    NodePools,
}

impl TableIndexes {
    pub fn get(&self, table: Table) -> u64 {
        let index = match table {
            Table::Jobs => self.jobs,
            Table::JobSummaries => self.job_summaries,
            Table::JobVersions => self.job_versions,
            Table::Nodes => self.nodes,
            Table::Allocs => self.allocs,
            Table::Evals => self.evals,
            Table::Deployments => self.deployments,
            Table::Services => self.services,
            Table::ScalingEvents => self.scaling_events,
            Table::AclPolicies => self.acl_policies,
            Table::AclTokens => self.acl_tokens,
            Table::Namespaces => self.namespaces,
            Table::Variables => self.variables,
            Table::RootKeys => self.root_keys,
            Table::NodePools => self.node_pools,
        };
        // Nomad never reports index 0: a client that blocks on 0 would spin.
        index.max(1)
    }

    /// The highest index over several tables.
    pub fn max_of(&self, tables: &[Table]) -> u64 {
        tables
            .iter()
            .map(|table| self.get(*table))
            .max()
            .unwrap_or(1)
    }
}

/// All tables at one Raft index.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    pub indexes: TableIndexes,
    pub jobs: OrdMap<JobKey, Arc<Job>>,
    /// Every tracked version of every job, the current one included.
    pub job_versions: OrdMap<(JobKey, u64), Arc<Job>>,
    pub job_summaries: OrdMap<JobKey, Arc<JobSummary>>,
    pub nodes: OrdMap<NodeId, Arc<Node>>,
    pub allocs: OrdMap<AllocId, Arc<Allocation>>,
    pub allocs_by_job: OrdMap<JobKey, OrdMap<AllocId, Arc<Allocation>>>,
    pub allocs_by_node: OrdMap<NodeId, OrdMap<AllocId, Arc<Allocation>>>,
    /// Per node, what its non-terminal allocations use: kept on every allocation write so
    /// schedulers and the plan applier never rescan a node's allocations.
    pub node_usage: OrdMap<NodeId, Arc<NodeUsage>>,
    /// Per node, the index of the last server-side change to its allocations (placed, updated
    /// by the servers, stopped, deleted; a client's own status update does not count): what a
    /// client's watch blocks on, so a plan wakes only the nodes it touches.
    pub node_alloc_index: OrdMap<NodeId, u64>,
    /// The allocation index of the snapshot this state was restored from: the index of every
    /// node that has not changed since (the index a node had before is not in the snapshot).
    pub restored_alloc_index: u64,
    pub evals: OrdMap<EvalId, Arc<Evaluation>>,
    pub evals_by_job: OrdMap<JobKey, OrdMap<EvalId, Arc<Evaluation>>>,
    pub deployments: OrdMap<DeploymentId, Arc<Deployment>>,
    pub deployments_by_job: OrdMap<JobKey, OrdMap<DeploymentId, Arc<Deployment>>>,
    /// The native service catalog, by registration ID (`services.rs`).
    pub services: OrdMap<String, Arc<ServiceRegistration>>,
    /// Each job's scaling events by group, newest first (`scaling.rs`).
    pub scaling_events: OrdMap<JobKey, Arc<JobScalingEvents>>,
    /// The operator's scheduler configuration; `None` until a leader or the operator wrote one
    /// (`scheduler_config.rs`).
    pub scheduler_config: Option<Arc<SchedulerConfiguration>>,
    /// ACL policies by name (`acl.rs`).
    pub acl_policies: OrdMap<String, Arc<AclPolicy>>,
    /// ACL tokens by accessor ID.
    pub acl_tokens: OrdMap<String, Arc<AclToken>>,
    /// Accessor IDs by the SHA-256 of their token's secret: a lookup by secret never compares
    /// the secret itself (the match is confirmed in constant time).
    pub acl_tokens_by_secret_hash: OrdMap<String, String>,
    /// The create index of the bootstrap token, 0 before `acl bootstrap` (Nomad's reset index).
    pub acl_bootstrap_index: u64,
    /// Namespaces by name; `default` is answered even when not stored (`namespaces.rs`).
    pub namespaces: OrdMap<String, Arc<Namespace>>,
    /// Variables by namespace and path, their items sealed (`variables.rs`).
    pub variables: OrdMap<(String, String), Arc<VariableEncrypted>>,
    /// The root keys' metadata by key ID; the keys themselves are in each server's keystore.
    pub root_keys: OrdMap<String, Arc<RootKeyMeta>>,
    /// Node pools by name, the built-in `all` and `default` not among them (`node_pools.rs`).
    pub node_pools: OrdMap<String, Arc<NodePool>>,
}

impl Tables {
    /// The index of the last server-side change to `node_id`'s allocations.
    pub fn node_alloc_index(&self, node_id: &NodeId) -> u64 {
        self.node_alloc_index
            .get(node_id)
            .copied()
            .unwrap_or(self.restored_alloc_index)
            .max(1)
    }
}

/// Values of `map` whose key's string form starts with `prefix`, in key order; `start` is the
/// key made of the bare prefix, from which the ordered scan starts.
pub fn with_prefix<'a, K, V>(
    map: &'a OrdMap<K, V>,
    start: K,
    prefix: &'a str,
    key_str: fn(&K) -> &str,
) -> impl Iterator<Item = &'a V> + 'a
where
    K: Ord + Clone + 'a,
    V: Clone + 'a,
{
    map.range(start..)
        .take_while(move |(key, _)| key_str(key).starts_with(prefix))
        .map(|(_, value)| value)
}
