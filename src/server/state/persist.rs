//! The state in the form a snapshot stores: flat lists, indexes rebuilt on restore; written and
//! read as a stream of rows ([`write_state`], [`read_state`]), or as one [`PersistedState`] (what
//! `Command::SnapshotRestore` carries).
//!
//! Allocations are stored without their job; each names the job version it runs, and restore
//! points it at the one stored copy of that version, as the live store shares it.

use std::sync::Arc;

use std::io::{Read, Write};

use imbl::OrdMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::tables::{TableIndexes, Tables, job_key};
use crate::codec::{CodecError, StreamReader, StreamWriter};
use crate::structs::{
    AclPolicy, AclToken, Allocation, Deployment, Evaluation, Job, JobScalingEvents, JobSummary,
    Namespace, Node, NodePool, RootKeyMeta, SchedulerConfiguration, ServiceRegistration,
    VariableEncrypted,
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
    pub namespaces: Vec<Arc<Namespace>>,
    /// Sealed: the items are never in a snapshot in plain text.
    pub variables: Vec<Arc<VariableEncrypted>>,
    pub root_keys: Vec<Arc<RootKeyMeta>>,
    pub node_pools: Vec<Arc<NodePool>>,
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
            namespaces: tables.namespaces.values().cloned().collect(),
            variables: tables.variables.values().cloned().collect(),
            root_keys: tables.root_keys.values().cloned().collect(),
            node_pools: tables.node_pools.values().cloned().collect(),
        }
    }

    pub(super) fn into_tables(self) -> Tables {
        let mut restorer = Restorer::default();
        self.jobs.into_iter().for_each(|job| restorer.job(job));
        (self.job_versions.into_iter()).for_each(|job| restorer.job_version(job));
        (self.job_summaries.into_iter()).for_each(|summary| restorer.job_summary(summary));
        self.nodes.into_iter().for_each(|node| restorer.node(node));
        self.evals.into_iter().for_each(|eval| restorer.eval(eval));
        (self.deployments.into_iter()).for_each(|deployment| restorer.deployment(deployment));
        self.allocs
            .into_iter()
            .for_each(|alloc| restorer.alloc(alloc));
        (self.scaling_events.into_iter()).for_each(|events| restorer.scaling_events(events));
        self.services
            .into_iter()
            .for_each(|service| restorer.service(service));
        restorer.tables.scheduler_config = self.scheduler_config;
        (self.acl_policies.into_iter()).for_each(|policy| restorer.acl_policy(policy));
        self.acl_tokens
            .into_iter()
            .for_each(|token| restorer.acl_token(token));
        restorer.tables.acl_bootstrap_index = self.acl_bootstrap_index;
        (self.namespaces.into_iter()).for_each(|namespace| restorer.namespace(namespace));
        (self.variables.into_iter()).for_each(|variable| restorer.variable(variable));
        (self.root_keys.into_iter()).for_each(|key| restorer.root_key(key));
        (self.node_pools.into_iter()).for_each(|pool| restorer.node_pool(pool));
        restorer.finish(self.indexes)
    }
}

/// Builds the tables from their rows, one at a time, in the order of [`PersistedState`]'s fields:
/// a job version after the jobs (it shares the current one), an allocation after the job
/// versions (it points at the one it runs).
#[derive(Default)]
struct Restorer {
    tables: Tables,
}

impl Restorer {
    fn job(&mut self, job: Arc<Job>) {
        self.tables
            .jobs
            .insert(job_key(&job.namespace, &job.id), job);
    }

    fn job_version(&mut self, job: Arc<Job>) {
        let key = job_key(&job.namespace, &job.id);
        // The current version is shared with the jobs table.
        let job = match self.tables.jobs.get(&key) {
            Some(current) if current.version == job.version => current.clone(),
            _ => job,
        };
        self.tables.job_versions.insert((key, job.version), job);
    }

    fn job_summary(&mut self, summary: Arc<JobSummary>) {
        self.tables
            .job_summaries
            .insert(job_key(&summary.namespace, &summary.job_id), summary);
    }

    fn node(&mut self, node: Arc<Node>) {
        self.tables.nodes.insert(node.id.clone(), node);
    }

    fn eval(&mut self, eval: Arc<Evaluation>) {
        let key = job_key(&eval.namespace, &eval.job_id);
        self.tables.evals.insert(eval.id.clone(), eval.clone());
        insert_nested(&mut self.tables.evals_by_job, key, eval.id.clone(), eval);
    }

    fn deployment(&mut self, deployment: Arc<Deployment>) {
        let key = job_key(&deployment.namespace, &deployment.job_id);
        self.tables
            .deployments
            .insert(deployment.id.clone(), deployment.clone());
        insert_nested(
            &mut self.tables.deployments_by_job,
            key,
            deployment.id.clone(),
            deployment,
        );
    }

    fn alloc(&mut self, persisted: PersistedAlloc) {
        let PersistedAlloc {
            job_version,
            mut alloc,
        } = persisted;
        let tables = &mut self.tables;
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

    fn scaling_events(&mut self, events: Arc<JobScalingEvents>) {
        self.tables
            .scaling_events
            .insert(job_key(&events.namespace, &events.job_id), events);
    }

    fn service(&mut self, registration: Arc<ServiceRegistration>) {
        self.tables
            .services
            .insert(registration.id.clone(), registration);
    }

    fn acl_policy(&mut self, policy: Arc<AclPolicy>) {
        self.tables.acl_policies.insert(policy.name.clone(), policy);
    }

    fn acl_token(&mut self, token: Arc<AclToken>) {
        self.tables.insert_acl_token(token);
    }

    fn namespace(&mut self, namespace: Arc<Namespace>) {
        self.tables
            .namespaces
            .insert(namespace.name.clone(), namespace);
    }

    fn variable(&mut self, variable: Arc<VariableEncrypted>) {
        let key = (variable.meta.namespace.clone(), variable.meta.path.clone());
        self.tables.variables.insert(key, variable);
    }

    fn root_key(&mut self, key: Arc<RootKeyMeta>) {
        self.tables.root_keys.insert(key.key_id.clone(), key);
    }

    fn node_pool(&mut self, pool: Arc<NodePool>) {
        self.tables.node_pools.insert(pool.name.clone(), pool);
    }

    fn finish(mut self, indexes: TableIndexes) -> Tables {
        self.tables.indexes = indexes;
        self.tables.restored_alloc_index = indexes.allocs;
        self.tables
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

/// The state as a stream of [`codec`] items, table by table: each table is a `(name, count)` item
/// and then `count` rows, the tables in the order [`Restorer`] needs them, `("End", 0)` last. An
/// older build skips a table it does not know; a stream cut short is refused (no `End`).
///
/// Only one row is ever encoded or decoded at a time: the whole state is never one document.
mod stream {
    pub(super) const INDEXES: &str = "Indexes";
    pub(super) const JOBS: &str = "Jobs";
    pub(super) const JOB_VERSIONS: &str = "JobVersions";
    pub(super) const JOB_SUMMARIES: &str = "JobSummaries";
    pub(super) const NODES: &str = "Nodes";
    pub(super) const EVALS: &str = "Evals";
    pub(super) const DEPLOYMENTS: &str = "Deployments";
    pub(super) const ALLOCS: &str = "Allocs";
    pub(super) const SCALING_EVENTS: &str = "ScalingEvents";
    pub(super) const SERVICES: &str = "Services";
    pub(super) const SCHEDULER_CONFIG: &str = "SchedulerConfig";
    pub(super) const ACL_POLICIES: &str = "AclPolicies";
    pub(super) const ACL_TOKENS: &str = "AclTokens";
    pub(super) const ACL_BOOTSTRAP_INDEX: &str = "AclBootstrapIndex";
    pub(super) const NAMESPACES: &str = "Namespaces";
    pub(super) const VARIABLES: &str = "Variables";
    pub(super) const ROOT_KEYS: &str = "RootKeys";
    pub(super) const NODE_POOLS: &str = "NodePools";
    pub(super) const END: &str = "End";
}

/// An allocation row as written: [`PersistedAlloc`]'s fields, the allocation borrowed.
#[derive(Serialize)]
struct PersistedAllocRef<'a> {
    job_version: Option<u64>,
    alloc: &'a Allocation,
}

fn table<W, T, I>(out: &mut StreamWriter<W>, name: &str, rows: I) -> Result<(), CodecError>
where
    W: Write,
    T: Serialize,
    I: ExactSizeIterator<Item = T>,
{
    out.item(&(name, rows.len() as u64))?;
    for row in rows {
        out.item(&row)?;
    }
    Ok(())
}

/// Writes the state of `tables` to `out`, a row at a time (see [`stream`]).
pub fn write_state<W: Write>(tables: &Tables, out: &mut StreamWriter<W>) -> Result<(), CodecError> {
    table(out, stream::INDEXES, std::iter::once(tables.indexes))?;
    table(out, stream::JOBS, tables.jobs.values())?;
    table(out, stream::JOB_VERSIONS, tables.job_versions.values())?;
    table(out, stream::JOB_SUMMARIES, tables.job_summaries.values())?;
    table(out, stream::NODES, tables.nodes.values())?;
    table(out, stream::EVALS, tables.evals.values())?;
    table(out, stream::DEPLOYMENTS, tables.deployments.values())?;
    out.item(&(stream::ALLOCS, tables.allocs.len() as u64))?;
    for alloc in tables.allocs.values() {
        // Stored without its job (restore points it at the stored version): a copy without the
        // job is made one allocation at a time, only when it has one.
        match &alloc.job {
            None => out.item(&PersistedAllocRef {
                job_version: None,
                alloc,
            })?,
            Some(job) => {
                let mut without_job = (**alloc).clone();
                without_job.job = None;
                out.item(&PersistedAllocRef {
                    job_version: Some(job.version),
                    alloc: &without_job,
                })?;
            }
        }
    }
    table(out, stream::SCALING_EVENTS, tables.scaling_events.values())?;
    table(out, stream::SERVICES, tables.services.values())?;
    table(
        out,
        stream::SCHEDULER_CONFIG,
        tables.scheduler_config.iter(),
    )?;
    table(out, stream::ACL_POLICIES, tables.acl_policies.values())?;
    table(out, stream::ACL_TOKENS, tables.acl_tokens.values())?;
    table(
        out,
        stream::ACL_BOOTSTRAP_INDEX,
        std::iter::once(tables.acl_bootstrap_index),
    )?;
    table(out, stream::NAMESPACES, tables.namespaces.values())?;
    table(out, stream::VARIABLES, tables.variables.values())?;
    table(out, stream::ROOT_KEYS, tables.root_keys.values())?;
    table(out, stream::NODE_POOLS, tables.node_pools.values())?;
    out.item(&(stream::END, 0u64))
}

/// Reads a state [`write_state`] wrote, building the tables a row at a time.
pub fn read_state<R: Read>(input: &mut StreamReader<R>) -> Result<Tables, CodecError> {
    fn rows<R: Read, T: DeserializeOwned>(
        input: &mut StreamReader<R>,
        count: u64,
        mut each: impl FnMut(T),
    ) -> Result<(), CodecError> {
        for _ in 0..count {
            each(input.item()?);
        }
        Ok(())
    }
    let mut restorer = Restorer::default();
    let mut indexes = TableIndexes::default();
    loop {
        let (name, count): (String, u64) = input.item()?;
        let input = &mut *input;
        match name.as_str() {
            stream::END => break,
            stream::INDEXES => rows(input, count, |row| indexes = row)?,
            stream::JOBS => rows(input, count, |row| restorer.job(row))?,
            stream::JOB_VERSIONS => rows(input, count, |row| restorer.job_version(row))?,
            stream::JOB_SUMMARIES => rows(input, count, |row| restorer.job_summary(row))?,
            stream::NODES => rows(input, count, |row| restorer.node(row))?,
            stream::EVALS => rows(input, count, |row| restorer.eval(row))?,
            stream::DEPLOYMENTS => rows(input, count, |row| restorer.deployment(row))?,
            stream::ALLOCS => rows(input, count, |row| restorer.alloc(row))?,
            stream::SCALING_EVENTS => rows(input, count, |row| restorer.scaling_events(row))?,
            stream::SERVICES => rows(input, count, |row| restorer.service(row))?,
            stream::SCHEDULER_CONFIG => rows(input, count, |row| {
                restorer.tables.scheduler_config = Some(row);
            })?,
            stream::ACL_POLICIES => rows(input, count, |row| restorer.acl_policy(row))?,
            stream::ACL_TOKENS => rows(input, count, |row| restorer.acl_token(row))?,
            stream::ACL_BOOTSTRAP_INDEX => rows(input, count, |row| {
                restorer.tables.acl_bootstrap_index = row;
            })?,
            stream::NAMESPACES => rows(input, count, |row| restorer.namespace(row))?,
            stream::VARIABLES => rows(input, count, |row| restorer.variable(row))?,
            stream::ROOT_KEYS => rows(input, count, |row| restorer.root_key(row))?,
            stream::NODE_POOLS => rows(input, count, |row| restorer.node_pool(row))?,
            other => {
                tracing::warn!(
                    table = other,
                    rows = count,
                    "skipping a table this build does not know"
                );
                rows(input, count, |_: serde::de::IgnoredAny| {})?;
            }
        }
    }
    Ok(restorer.finish(indexes))
}

impl PersistedState {
    /// Reads a state [`write_state`] wrote, in this form.
    pub fn read_stream<R: Read>(input: &mut StreamReader<R>) -> Result<Self, CodecError> {
        Ok(Self::from_tables(&read_state(input)?))
    }
}
