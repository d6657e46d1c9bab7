//! Resolving the ID prefixes the CLI is given, as Nomad's commands do: through the typed client's
//! prefix rules ([`ApiClient::by_prefix`]), each kind of object as its list answers it, and no
//! match or several worded and tabled as Nomad's CLI words them.
//!
//! Nomad: `command/job_status.go`, `alloc_status.go`, `node_status.go`, `eval_status.go`,
//! `deployment_status.go` (their `Prefix matched multiple ...` branches).

use anyhow::Context;
use serde::de::DeserializeOwned;

use super::eval_status::evals_table;
use super::format::{jobs_table, short_id, table};
use super::node_status::nodes_table;
use crate::api::client::{ApiClient, HasId, PrefixMatch};
use crate::api::types::allocs::AllocListStub;
use crate::api::types::jobs::JobListStub;
use crate::api::types::nodes::NodeListStub;
use crate::structs::{Deployment, Evaluation};

async fn lookup<T: DeserializeOwned + HasId>(
    client: &ApiClient,
    plural: &str,
    noun: &str,
    prefix: &str,
) -> anyhow::Result<PrefixMatch<T>> {
    client
        .by_prefix(plural, prefix)
        .await
        .with_context(|| format!("Error querying {noun}"))
}

/// The job `prefix` names.
pub async fn job(client: &ApiClient, prefix: &str) -> anyhow::Result<JobListStub> {
    match lookup(client, "jobs", "job", prefix).await? {
        PrefixMatch::One(job) => Ok(job),
        PrefixMatch::None => anyhow::bail!("No job(s) with prefix or ID {prefix:?} found"),
        PrefixMatch::Many(jobs) => {
            anyhow::bail!("Prefix matched multiple jobs\n\n{}", jobs_table(&jobs))
        }
    }
}

/// The allocation `prefix` names.
pub async fn alloc(client: &ApiClient, prefix: &str) -> anyhow::Result<AllocListStub> {
    match lookup(client, "allocations", "allocation", prefix).await? {
        PrefixMatch::One(alloc) => Ok(alloc),
        PrefixMatch::None => {
            anyhow::bail!("No allocation(s) with prefix or id {prefix:?} found")
        }
        PrefixMatch::Many(allocs) => {
            let rows: Vec<Vec<String>> = allocs
                .iter()
                .map(|alloc| {
                    vec![
                        short_id(&alloc.id, false),
                        short_id(&alloc.eval_id, false),
                        alloc.job_id.clone(),
                        alloc.task_group.clone(),
                        alloc.desired_status.to_string(),
                        alloc.client_status.to_string(),
                    ]
                })
                .collect();
            let header = [
                "ID",
                "Eval ID",
                "Job ID",
                "Task Group",
                "Desired Status",
                "Client Status",
            ];
            anyhow::bail!(
                "Prefix matched multiple allocations\n\n{}",
                table(&header, &rows)
            )
        }
    }
}

/// The evaluation `prefix` names.
pub async fn eval(client: &ApiClient, prefix: &str) -> anyhow::Result<Evaluation> {
    match lookup(client, "evaluations", "evaluation", prefix).await? {
        PrefixMatch::One(eval) => Ok(eval),
        PrefixMatch::None => {
            anyhow::bail!("No evaluation(s) with prefix or id {prefix:?} found")
        }
        PrefixMatch::Many(evals) => anyhow::bail!(
            "Prefix matched multiple evaluations\n\n{}",
            evals_table(&evals, true)
        ),
    }
}

/// The node `prefix` names.
pub async fn node(client: &ApiClient, prefix: &str) -> anyhow::Result<NodeListStub> {
    match lookup(client, "nodes", "node", prefix).await? {
        PrefixMatch::One(node) => Ok(node),
        PrefixMatch::None => anyhow::bail!("No node(s) with prefix {prefix:?} found"),
        PrefixMatch::Many(nodes) => anyhow::bail!(
            "Prefix matched multiple nodes\n\n{}",
            nodes_table(&nodes, true)
        ),
    }
}

/// The deployment `prefix` names.
pub async fn deployment(client: &ApiClient, prefix: &str) -> anyhow::Result<Deployment> {
    match lookup(client, "deployments", "deployment", prefix).await? {
        PrefixMatch::One(deployment) => Ok(deployment),
        PrefixMatch::None => {
            anyhow::bail!("No deployment(s) with prefix or id {prefix:?} found")
        }
        PrefixMatch::Many(deployments) => {
            let ids: Vec<&str> = deployments.iter().map(|d| d.id.as_str()).collect();
            anyhow::bail!("Prefix matched multiple deployments\n\n{}", ids.join("\n"))
        }
    }
}
