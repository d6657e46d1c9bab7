//! `caravan node status|drain|eligibility`: the cluster's client nodes.
//!
//! Nomad: `command/node_status.go`, `node_drain.go`, `node_eligibility.go`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::block_on;
use super::format::{kv, now_rfc3339, short_id, table};
use super::job_status::allocs_table;
use super::output::outln;
use super::{ApiArgs, ListArgs, NodeStatusArgs, resolve};
use crate::api::client::ApiClient;
use crate::api::types::agent::AgentSelf;
use crate::api::types::allocs::AllocListStub;
use crate::api::types::nodes::{
    DrainSpec, NodeDrainUpdateResponse, NodeListStub, NodeUpdateDrainRequest,
    NodeUpdateEligibilityRequest,
};
use crate::structs::{AllocClientStatus, AllocDesiredStatus, Allocation, JobType, Node};

#[derive(Debug, Args)]
pub struct NodeDrainArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The node ID (or prefix)
    pub node_id: Option<String>,
    /// Starts draining
    #[arg(long)]
    pub enable: bool,
    /// Stops draining
    #[arg(long)]
    pub disable: bool,
    /// The node of the agent at -address
    #[arg(long = "self")]
    pub self_node: bool,
    /// How long allocations may take to migrate, e.g. 1h
    #[arg(long, value_name = "DURATION")]
    pub deadline: Option<String>,
    /// Leaves system jobs running
    #[arg(long = "ignore-system")]
    pub ignore_system: bool,
    /// Answers yes to the confirmation
    #[arg(long)]
    pub yes: bool,
    /// Returns without monitoring the drain
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct NodeEligibilityArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The node ID (or prefix)
    pub node_id: Option<String>,
    /// Marks the node eligible
    #[arg(long)]
    pub enable: bool,
    /// Marks the node ineligible
    #[arg(long)]
    pub disable: bool,
    /// The node of the agent at -address
    #[arg(long = "self")]
    pub self_node: bool,
}

pub fn status(args: &NodeStatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let node_id = match (&args.node_id, args.self_node) {
            (_, true) => Some(self_node_id(&client).await?),
            (Some(prefix), false) => Some(resolve_node(&client, prefix).await?),
            (None, false) => None,
        };
        match node_id {
            None => list_nodes(&client, args).await,
            Some(node_id) => show_node(&client, &node_id, args).await,
        }
    })
}

/// Resolves a node ID prefix to the full ID, with Nomad's messages.
pub async fn resolve_node(client: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    if prefix.len() < 2 {
        anyhow::bail!("Node ID must contain at least two characters.");
    }
    Ok(resolve::node(client, prefix).await?.id)
}

/// The node of the agent at the address: its client's node, found by the agent's node name.
async fn self_node_id(client: &ApiClient) -> anyhow::Result<String> {
    let agent: AgentSelf = client
        .get("/v1/agent/self")
        .await
        .map_err(|err| anyhow::anyhow!("Error querying agent info: {err}"))?;
    if let Some(node_id) = agent
        .stats
        .get("client")
        .and_then(|client| client.get("node_id"))
    {
        return Ok(node_id.clone());
    }
    let name = &agent.config.node_name;
    let nodes: Vec<NodeListStub> = client.get("/v1/nodes").await?;
    nodes
        .into_iter()
        .find(|node| &node.name == name)
        .map(|node| node.id)
        .ok_or_else(|| anyhow::anyhow!("Not running in client mode"))
}

async fn list_nodes(client: &ApiClient, args: &NodeStatusArgs) -> anyhow::Result<ExitCode> {
    let (nodes, meta): (Vec<NodeListStub>, _) = client
        .get_with_meta(&args.list.path("/v1/nodes"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying node status: {err}"))?;
    if args.output.printed(&nodes)? {
        return Ok(ExitCode::SUCCESS);
    }
    if nodes.is_empty() {
        outln!("No nodes registered")?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{}", nodes_table(&nodes, args.verbose))?;
    if let Some(hint) = ListArgs::next_page_hint(meta.next_token.as_deref()) {
        outln!("{hint}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ID  Node Pool  DC  Name  Class  Drain  Eligibility  Status`.
pub fn nodes_table(nodes: &[NodeListStub], verbose: bool) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|node| {
            vec![
                short_id(&node.id, verbose),
                node.node_pool.clone(),
                node.datacenter.clone(),
                node.name.clone(),
                node.node_class.clone(),
                node.drain.to_string(),
                node.scheduling_eligibility.to_string(),
                node.status.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "Node Pool",
            "DC",
            "Name",
            "Class",
            "Drain",
            "Eligibility",
            "Status",
        ],
        &rows,
    )
}

async fn show_node(
    client: &ApiClient,
    node_id: &str,
    args: &NodeStatusArgs,
) -> anyhow::Result<ExitCode> {
    let node: Node = client
        .get(&format!("/v1/node/{node_id}"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying node info: {err}"))?;
    if args.output.printed(&node)? {
        return Ok(ExitCode::SUCCESS);
    }
    let verbose = args.verbose;
    let mut drivers: Vec<&str> = node
        .drivers
        .iter()
        .filter(|(_, info)| info.detected && info.healthy)
        .map(|(name, _)| name.as_str())
        .collect();
    drivers.sort_unstable();
    outln!(
        "{}",
        kv(&[
            ("ID", short_id(&node.id, verbose)),
            ("Name", node.name.clone()),
            ("Node Pool", node.node_pool.clone()),
            ("Class", node.node_class.clone()),
            ("DC", node.datacenter.clone()),
            ("Drain", drain_text(&node)),
            ("Eligibility", node.scheduling_eligibility.to_string()),
            ("Status", node.status.to_string()),
            ("Driver Status", drivers.join(",")),
        ])
    )?;
    let allocs: Vec<Allocation> = client
        .get(&format!("/v1/node/{node_id}/allocations"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying node allocations: {err}"))?;
    let running = allocs.iter().filter(|alloc| {
        matches!(
            alloc.client_status,
            AllocClientStatus::Running | AllocClientStatus::Pending
        ) && alloc.desired_status == AllocDesiredStatus::Run
    });
    let (mut cpu, mut memory_mb, mut disk_mb) = (0, 0, 0);
    for alloc in running {
        let resources = &alloc.allocated_resources;
        cpu += resources.total_cpu();
        memory_mb += resources.total_memory_mb();
        disk_mb += resources.shared.disk_mb;
    }
    let total = &node.node_resources;
    let mib = |mb: i64| super::alloc_status::bytes(mb * 1024 * 1024);
    outln!()?;
    outln!("Allocated Resources")?;
    outln!(
        "{}",
        table(
            &["CPU", "Memory", "Disk"],
            &[vec![
                format!("{cpu}/{} MHz", total.cpu.cpu_shares),
                format!("{}/{}", mib(memory_mb), mib(total.memory.memory_mb)),
                format!("{}/{}", mib(disk_mb), mib(total.disk.disk_mb)),
            ]]
        )
    )?;
    outln!()?;
    outln!("Allocations")?;
    if allocs.is_empty() {
        outln!("No allocations placed")?;
    } else {
        let stubs: Vec<AllocListStub> = allocs
            .iter()
            .map(|alloc| AllocListStub::new(alloc, false))
            .collect();
        outln!("{}", allocs_table(&stubs, verbose))?;
    }
    if verbose {
        outln!()?;
        outln!("Attributes")?;
        let pairs: Vec<(&str, String)> = node
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.clone()))
            .collect();
        outln!("{}", kv(&pairs))?;
        let devices = device_group_attributes(&node);
        if !devices.is_empty() {
            outln!()?;
            outln!("Device Group Attributes")?;
            outln!("{}", devices.join("\n\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Nomad's "Device Group Attributes": per device group (sorted by `vendor/type/name`), its name
/// and its attributes as `value unit`, one block each.
fn device_group_attributes(node: &Node) -> Vec<String> {
    let mut devices: Vec<_> = node
        .node_resources
        .devices
        .iter()
        .filter(|device| !device.attributes.is_empty())
        .collect();
    devices.sort_by_key(|device| device.full_name());
    devices
        .iter()
        .map(|device| {
            let name = device.full_name();
            let attributes: Vec<(String, String)> = device
                .attributes
                .iter()
                .map(|(key, value)| (key.clone(), value.to_string()))
                .collect();
            let mut pairs: Vec<(&str, String)> = vec![("Device Group", name)];
            pairs.extend(
                attributes
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.clone())),
            );
            kv(&pairs)
        })
        .collect()
}

fn drain_text(node: &Node) -> String {
    match &node.drain_strategy {
        None => "false".to_owned(),
        Some(strategy) if strategy.force_deadline > 0 => format!(
            "true; {} deadline",
            super::format::format_nanos(strategy.force_deadline)
        ),
        Some(_) => "true".to_owned(),
    }
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    outln!("{question} [y/N]")?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

pub fn drain(args: &NodeDrainArgs) -> anyhow::Result<ExitCode> {
    if args.enable == args.disable {
        anyhow::bail!("Either the '-enable' or '-disable' flag must be set, but not both");
    }
    let client = args.api.client()?;
    block_on(async {
        let node_id = match (&args.node_id, args.self_node) {
            (_, true) => self_node_id(&client).await?,
            (Some(prefix), false) => resolve_node(&client, prefix).await?,
            (None, false) => anyhow::bail!("This command takes one argument: <node-id>"),
        };
        let deadline = match &args.deadline {
            Some(text) => humantime::parse_duration(text)
                .map_err(|err| anyhow::anyhow!("Failed to parse deadline {text:?}: {err}"))?,
            None => Duration::from_secs(3600),
        };
        if args.enable
            && !args.yes
            && !confirm(&format!(
                "Are you sure you want to enable drain mode for node {node_id:?}?"
            ))?
        {
            outln!("Canceling drain toggle")?;
            return Ok(ExitCode::SUCCESS);
        }
        let body = NodeUpdateDrainRequest {
            node_id: node_id.clone(),
            drain_spec: args.enable.then(|| DrainSpec {
                deadline: i64::try_from(deadline.as_nanos()).unwrap_or(i64::MAX),
                ignore_system_jobs: args.ignore_system,
            }),
            mark_eligible: args.disable,
        };
        let live_before = live_allocs(&client, &node_id).await?;
        let _: NodeDrainUpdateResponse = client
            .post(&format!("/v1/node/{node_id}/drain"), &body)
            .await
            .map_err(|err| anyhow::anyhow!("Error updating drain specification: {err}"))?;
        if args.disable {
            outln!("Node {node_id:?} drain strategy unset")?;
            return Ok(ExitCode::SUCCESS);
        }
        outln!("Node {node_id:?} drain strategy set")?;
        if args.detach {
            return Ok(ExitCode::SUCCESS);
        }
        monitor_drain(&client, &node_id, deadline, live_before, args.ignore_system).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The IDs of the node's allocations that have not finished.
async fn live_allocs(
    client: &ApiClient,
    node_id: &str,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let allocs: Vec<Allocation> = client
        .get(&format!("/v1/node/{node_id}/allocations"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying node allocations: {err}"))?;
    Ok(allocs
        .iter()
        .filter(|alloc| !alloc.is_client_terminal())
        .map(|alloc| alloc.id.to_string())
        .collect())
}

/// Follows the drain until the node's allocations have stopped and the servers have ended its
/// drain (Nomad: `api.Nodes().MonitorDrain`: "Drain complete for node ..." once the node's drain
/// strategy is cleared, "All allocations on node ... have stopped" once none is left running;
/// with `ignore_system`, system jobs' allocations stay and are not waited for).
async fn monitor_drain(
    client: &ApiClient,
    node_id: &str,
    deadline: Duration,
    live_before: std::collections::BTreeSet<String>,
    ignore_system: bool,
) -> anyhow::Result<()> {
    let give_up = std::time::Instant::now() + deadline + Duration::from_secs(30);
    let (mut alloc_index, mut node_index) = (0, 0);
    let (mut stopped, mut complete) = (false, false);
    let mut reported: std::collections::BTreeSet<String> = Default::default();
    loop {
        let remaining = give_up.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            outln!(
                "{}: Drain still in progress for node {node_id:?}",
                now_rfc3339()
            )?;
            return Ok(());
        }
        let wait = remaining.min(Duration::from_secs(30));
        if !stopped {
            let (allocs, meta): (Vec<Allocation>, _) = client
                .blocking(
                    &format!("/v1/node/{node_id}/allocations"),
                    alloc_index,
                    wait,
                )
                .await?;
            alloc_index = meta.last_index.max(alloc_index);
            let mut left = 0;
            for alloc in &allocs {
                let alloc_id = alloc.id.as_str();
                let stopping = alloc.desired_status != AllocDesiredStatus::Run;
                let is_system = alloc
                    .job
                    .as_ref()
                    .is_some_and(|job| job.job_type == JobType::System);
                if ignore_system && is_system {
                    continue;
                }
                if alloc.is_client_terminal() {
                    if stopping
                        && live_before.contains(alloc_id)
                        && reported.insert(alloc_id.to_owned())
                    {
                        outln!(
                            "{}: Alloc {:?} draining",
                            now_rfc3339(),
                            short_id(alloc_id, false)
                        )?;
                    }
                } else {
                    left += 1;
                }
            }
            if left == 0 {
                stopped = true;
                outln!(
                    "{}: All allocations on node {node_id:?} have stopped",
                    now_rfc3339()
                )?;
            }
        }
        if !complete {
            // While allocations run the node is only looked at; after, it is waited on.
            let (index, node_wait) = if stopped {
                (node_index, wait)
            } else {
                (0, Duration::ZERO)
            };
            let (node, meta): (Node, _) = client
                .blocking(&format!("/v1/node/{node_id}"), index, node_wait)
                .await?;
            node_index = meta.last_index.max(node_index);
            if node.drain_strategy.is_none() {
                complete = true;
                outln!("{}: Drain complete for node {node_id}", now_rfc3339())?;
            }
        }
        if stopped && complete {
            return Ok(());
        }
    }
}

pub fn eligibility(args: &NodeEligibilityArgs) -> anyhow::Result<ExitCode> {
    if args.enable == args.disable {
        anyhow::bail!("Either the '-enable' or '-disable' flag must be set, but not both");
    }
    let client = args.api.client()?;
    block_on(async {
        let node_id = match (&args.node_id, args.self_node) {
            (_, true) => self_node_id(&client).await?,
            (Some(prefix), false) => resolve_node(&client, prefix).await?,
            (None, false) => anyhow::bail!("This command takes one argument: <node-id>"),
        };
        let eligibility = if args.enable {
            "eligible"
        } else {
            "ineligible"
        };
        let body = NodeUpdateEligibilityRequest {
            node_id: node_id.clone(),
            eligibility: eligibility.to_owned(),
        };
        let _: NodeDrainUpdateResponse = client
            .post(&format!("/v1/node/{node_id}/eligibility"), &body)
            .await
            .map_err(|err| anyhow::anyhow!("Error updating scheduling eligibility: {err}"))?;
        outln!("Node {node_id:?} scheduling eligibility set: {eligibility} for scheduling")?;
        Ok(ExitCode::SUCCESS)
    })
}
