//! `caravan node pool list|apply|info|nodes|jobs|delete`: node pools as Nomad's CLI shows them.
//!
//! Nomad: `command/node_pool_*.go`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Deserialize;

use super::format::{jobs_table, kv, table};
use super::node_status::nodes_table;
use super::output::outln;
use super::{ApiArgs, ListArgs, ListCommandArgs, OutputArgs, block_on};
use crate::api::client::encode;
use crate::api::types::jobs::JobListStub;
use crate::api::types::nodes::NodeListStub;
use crate::structs::{NodePool, NodePoolSchedulerConfiguration, SchedulerAlgorithm};

#[derive(Debug, Subcommand)]
pub enum NodePoolCommand {
    /// Lists the node pools
    List(ListCommandArgs),
    /// Creates or updates a node pool from a specification file (`-` for standard input)
    Apply(PoolApplyArgs),
    /// Shows a node pool
    Info(PoolArgs),
    /// Lists the nodes of a node pool
    Nodes(PoolListedArgs),
    /// Lists the jobs of a node pool
    Jobs(PoolListedArgs),
    /// Deletes a node pool
    Delete(PoolDeleteArgs),
}

#[derive(Debug, Args)]
pub struct PoolApplyArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Reads the file as JSON (a NodePool object) instead of HCL
    #[arg(long)]
    pub json: bool,
    /// The specification file
    pub path: String,
}

#[derive(Debug, Args)]
pub struct PoolArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The node pool's name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PoolListedArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub list: ListArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
    /// The node pool's name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PoolDeleteArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The node pool's name
    pub name: String,
}

pub fn run(command: &NodePoolCommand) -> anyhow::Result<ExitCode> {
    match command {
        NodePoolCommand::List(args) => list(args),
        NodePoolCommand::Apply(args) => apply(args),
        NodePoolCommand::Info(args) => info(args),
        NodePoolCommand::Nodes(args) => nodes(args),
        NodePoolCommand::Jobs(args) => jobs(args),
        NodePoolCommand::Delete(args) => delete(args),
    }
}

fn list(args: &ListCommandArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let (pools, meta): (Vec<NodePool>, _) = block_on(async {
        Ok(client
            .get_with_meta(&args.list.path("/v1/node/pools"))
            .await?)
    })
    .map_err(|err| anyhow::anyhow!("Error retrieving node pools: {err:#}"))?;
    if args.output.printed(&pools)? {
        return Ok(ExitCode::SUCCESS);
    }
    if pools.is_empty() {
        outln!("No node pools found")?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|pool| vec![pool.name.clone(), pool.description.clone()])
        .collect();
    outln!("{}", table(&["Name", "Description"], &rows))?;
    if let Some(hint) = ListArgs::next_page_hint(meta.next_token.as_deref()) {
        outln!("{hint}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A node pool specification file: one `node_pool "name" { ... }` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolSpecFile {
    node_pool: BTreeMap<String, PoolSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PoolSpec {
    description: String,
    meta: BTreeMap<String, String>,
    scheduler_config: Option<PoolSchedulerSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PoolSchedulerSpec {
    scheduler_algorithm: Option<String>,
    memory_oversubscription: Option<bool>,
}

/// The pool an HCL specification describes.
fn parse_spec(text: &str) -> anyhow::Result<NodePool> {
    let spec: PoolSpecFile = hcl::from_str(text)?;
    let mut blocks = spec.node_pool.into_iter();
    let (Some((name, spec)), None) = (blocks.next(), blocks.next()) else {
        anyhow::bail!("the file must hold exactly one node_pool block");
    };
    let scheduler_configuration = match spec.scheduler_config {
        None => None,
        Some(config) => Some(NodePoolSchedulerConfiguration {
            scheduler_algorithm: config
                .scheduler_algorithm
                .map(|text| text.parse::<SchedulerAlgorithm>())
                .transpose()
                .map_err(|err| anyhow::anyhow!(err))?,
            memory_oversubscription_enabled: config.memory_oversubscription,
        }),
    };
    Ok(NodePool {
        name,
        description: spec.description,
        meta: spec.meta,
        scheduler_configuration,
        ..NodePool::default()
    })
}

fn apply(args: &PoolApplyArgs) -> anyhow::Result<ExitCode> {
    let text = if args.path == "-" {
        std::io::read_to_string(std::io::stdin()).context("Error reading standard input")?
    } else {
        std::fs::read_to_string(&args.path)
            .with_context(|| format!("Error reading file {:?}", args.path))?
    };
    let pool = if args.json || args.path.ends_with(".json") {
        serde_json::from_str::<NodePool>(&text)
            .map_err(|err| anyhow::anyhow!("Error parsing node pool: {err}"))?
    } else {
        parse_spec(&text).map_err(|err| anyhow::anyhow!("Error parsing node pool: {err:#}"))?
    };
    let client = args.api.client()?;
    block_on(async {
        client.put::<_, ()>("/v1/node/pools", &pool).await?;
        Ok(())
    })
    .map_err(|err| anyhow::anyhow!("Error applying node pool: {err:#}"))?;
    outln!("Successfully applied node pool {:?}!", pool.name)?;
    Ok(ExitCode::SUCCESS)
}

fn info(args: &PoolArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let path = format!("/v1/node/pool/{}", encode(&args.name));
    let pool: NodePool = block_on(async { Ok(client.get(&path).await?) })
        .map_err(|err| anyhow::anyhow!("Error reading node pool: {err:#}"))?;
    if args.output.printed(&pool)? {
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{}",
        kv(&[
            ("Name", pool.name.clone()),
            ("Description", pool.description.clone()),
        ])
    )?;
    outln!("\nMetadata")?;
    if pool.meta.is_empty() {
        outln!("No metadata")?;
    } else {
        let pairs: Vec<(&str, String)> = pool
            .meta
            .iter()
            .map(|(key, value)| (key.as_str(), value.clone()))
            .collect();
        outln!("{}", kv(&pairs))?;
    }
    outln!("\nScheduler Configuration")?;
    match &pool.scheduler_configuration {
        None => outln!("No scheduler configuration")?,
        Some(config) => {
            let algorithm = config
                .scheduler_algorithm
                .map_or_else(String::new, |algorithm| algorithm.to_string());
            let oversubscription = config
                .memory_oversubscription_enabled
                .map_or_else(String::new, |enabled| enabled.to_string());
            outln!(
                "{}",
                kv(&[
                    ("Scheduler Algorithm", algorithm),
                    ("Memory Oversubscription Enabled", oversubscription),
                ])
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn nodes(args: &PoolListedArgs) -> anyhow::Result<ExitCode> {
    let nodes: Vec<NodeListStub> = members(args, "nodes")?;
    if args.output.printed(&nodes)? {
        return Ok(ExitCode::SUCCESS);
    }
    if nodes.is_empty() {
        outln!("No nodes in node pool {:?}", args.name)?;
    } else {
        outln!("{}", nodes_table(&nodes, args.verbose))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn jobs(args: &PoolListedArgs) -> anyhow::Result<ExitCode> {
    let jobs: Vec<JobListStub> = members(args, "jobs")?;
    if args.output.printed(&jobs)? {
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        outln!("No jobs in node pool {:?}", args.name)?;
    } else {
        outln!("{}", jobs_table(&jobs))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `GET /v1/node/pool/<name>/<what>` (`nodes` or `jobs`) with the list flags.
fn members<T: serde::de::DeserializeOwned>(
    args: &PoolListedArgs,
    what: &str,
) -> anyhow::Result<Vec<T>> {
    let client = args.api.client()?;
    let path = args
        .list
        .path(&format!("/v1/node/pool/{}/{what}", encode(&args.name)));
    block_on(async { Ok(client.get(&path).await?) })
        .map_err(|err| anyhow::anyhow!("Error querying {what}: {err:#}"))
}

fn delete(args: &PoolDeleteArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let path = format!("/v1/node/pool/{}", encode(&args.name));
    block_on(async {
        client.delete::<()>(&path).await?;
        Ok(())
    })
    .map_err(|err| anyhow::anyhow!("Error deleting node pool: {err:#}"))?;
    outln!("Successfully deleted node pool {:?}!", args.name)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_file_becomes_the_pool() {
        let pool = parse_spec(
            r#"
            node_pool "prod" {
              description = "Production nodes"
              meta {
                env = "prod"
              }
              scheduler_config {
                scheduler_algorithm = "spread"
              }
            }
            "#,
        )
        .expect("the spec parses");
        assert_eq!(pool.name, "prod");
        assert_eq!(pool.description, "Production nodes");
        assert_eq!(pool.meta.get("env").map(String::as_str), Some("prod"));
        let config = pool.scheduler_configuration.expect("a scheduler config");
        assert_eq!(config.scheduler_algorithm, Some(SchedulerAlgorithm::Spread));
    }

    #[test]
    fn bad_spec_files_name_the_problem() {
        let unknown = parse_spec(r#"node_pool "x" { colour = "red" }"#).expect_err("refused");
        assert!(unknown.to_string().contains("colour"), "{unknown}");
        let two = parse_spec("node_pool \"a\" {}\nnode_pool \"b\" {}\n").expect_err("refused");
        assert!(two.to_string().contains("exactly one"), "{two}");
        let algorithm =
            parse_spec(r#"node_pool "x" { scheduler_config { scheduler_algorithm = "fast" } }"#)
                .expect_err("refused");
        assert!(algorithm.to_string().contains("fast"), "{algorithm}");
    }
}
