//! `caravan node status|drain|eligibility`: the cluster's client nodes.
//!
//! Nomad: `command/node_status.go`, `node_drain.go`, `node_eligibility.go`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::api_client::{ApiClient, ObjectKind, block_on, bool_of, i64_of, str_of};
use super::format::{kv, now_rfc3339, short_id, table};
use super::job_status::allocs_table;
use super::output::outln;
use super::{NodeDrainArgs, NodeEligibilityArgs, NodeStatusArgs};

pub fn status(args: &NodeStatusArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let node_id = match (&args.node_id, args.self_node) {
            (_, true) => Some(self_node_id(&client).await?),
            (Some(prefix), false) => Some(resolve_node(&client, prefix).await?),
            (None, false) => None,
        };
        match node_id {
            None => list_nodes(&client, args.verbose).await,
            Some(node_id) => show_node(&client, &node_id, args).await,
        }
    })
}

/// Resolves a node ID prefix to the full ID, with Nomad's messages.
pub async fn resolve_node(client: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    if prefix.len() < 2 {
        anyhow::bail!("Node ID must contain at least two characters.");
    }
    let node = client.resolve(ObjectKind::Node, prefix).await?;
    Ok(str_of(&node, "ID").to_owned())
}

/// The node of the agent at the address: its client's node, found by the agent's node name.
async fn self_node_id(client: &ApiClient) -> anyhow::Result<String> {
    let agent = client
        .get("/v1/agent/self")
        .await
        .map_err(|err| anyhow::anyhow!("Error querying agent info: {err}"))?;
    if let Some(node_id) = agent
        .pointer("/stats/client/node_id")
        .and_then(Value::as_str)
    {
        return Ok(node_id.to_owned());
    }
    let name = agent
        .pointer("/config/NodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let nodes = client.get("/v1/nodes").await?;
    nodes
        .as_array()
        .into_iter()
        .flatten()
        .find(|node| str_of(node, "Name") == name)
        .map(|node| str_of(node, "ID").to_owned())
        .ok_or_else(|| anyhow::anyhow!("Not running in client mode"))
}

async fn list_nodes(client: &ApiClient, verbose: bool) -> anyhow::Result<ExitCode> {
    let nodes = client
        .get("/v1/nodes")
        .await
        .map_err(|err| anyhow::anyhow!("Error querying node status: {err}"))?;
    let nodes = nodes.as_array().cloned().unwrap_or_default();
    if nodes.is_empty() {
        outln!("No nodes registered")?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{}", nodes_table(&nodes, verbose))?;
    Ok(ExitCode::SUCCESS)
}

/// `ID  Node Pool  DC  Name  Class  Drain  Eligibility  Status`.
pub fn nodes_table(nodes: &[Value], verbose: bool) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|node| {
            vec![
                short_id(str_of(node, "ID"), verbose),
                str_of(node, "NodePool").to_owned(),
                str_of(node, "Datacenter").to_owned(),
                str_of(node, "Name").to_owned(),
                str_of(node, "NodeClass").to_owned(),
                bool_of(node, "Drain").to_string(),
                str_of(node, "SchedulingEligibility").to_owned(),
                str_of(node, "Status").to_owned(),
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
    let node = client
        .get(&format!("/v1/node/{node_id}"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying node info: {err}"))?;
    let verbose = args.verbose;
    let mut drivers: Vec<&str> = node
        .get("Drivers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, info)| bool_of(info, "Detected") && bool_of(info, "Healthy"))
        .map(|(name, _)| name.as_str())
        .collect();
    drivers.sort_unstable();
    outln!(
        "{}",
        kv(&[
            ("ID", short_id(str_of(&node, "ID"), verbose)),
            ("Name", str_of(&node, "Name").to_owned()),
            ("Node Pool", str_of(&node, "NodePool").to_owned()),
            ("Class", str_of(&node, "NodeClass").to_owned()),
            ("DC", str_of(&node, "Datacenter").to_owned()),
            ("Drain", drain_text(&node)),
            (
                "Eligibility",
                str_of(&node, "SchedulingEligibility").to_owned()
            ),
            ("Status", str_of(&node, "Status").to_owned()),
            ("Driver Status", drivers.join(",")),
        ])
    )?;
    let allocs = client
        .get(&format!("/v1/node/{node_id}/allocations"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying node allocations: {err}"))?;
    let allocs = allocs.as_array().cloned().unwrap_or_default();
    let running: Vec<&Value> = allocs
        .iter()
        .filter(|alloc| {
            matches!(str_of(alloc, "ClientStatus"), "running" | "pending")
                && str_of(alloc, "DesiredStatus") == "run"
        })
        .collect();
    let (mut cpu, mut memory_mb, mut disk_mb) = (0, 0, 0);
    for alloc in &running {
        let resources = alloc
            .get("AllocatedResources")
            .cloned()
            .unwrap_or(Value::Null);
        for task in resources
            .get("Tasks")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(_, t)| t)
        {
            cpu += task
                .pointer("/Cpu/CpuShares")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            memory_mb += task
                .pointer("/Memory/MemoryMB")
                .and_then(Value::as_i64)
                .unwrap_or(0);
        }
        disk_mb += resources
            .pointer("/Shared/DiskMB")
            .and_then(Value::as_i64)
            .unwrap_or(0);
    }
    let total = |pointer: &str| node.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let mib = |mb: i64| super::alloc_status::bytes(mb * 1024 * 1024);
    outln!()?;
    outln!("Allocated Resources")?;
    outln!(
        "{}",
        table(
            &["CPU", "Memory", "Disk"],
            &[vec![
                format!("{cpu}/{} MHz", total("/NodeResources/Cpu/CpuShares")),
                format!(
                    "{}/{}",
                    mib(memory_mb),
                    mib(total("/NodeResources/Memory/MemoryMB"))
                ),
                format!(
                    "{}/{}",
                    mib(disk_mb),
                    mib(total("/NodeResources/Disk/DiskMB"))
                ),
            ]]
        )
    )?;
    outln!()?;
    outln!("Allocations")?;
    if allocs.is_empty() {
        outln!("No allocations placed")?;
    } else {
        outln!("{}", allocs_table(&allocs, verbose))?;
    }
    if verbose {
        outln!()?;
        outln!("Attributes")?;
        let attributes: Vec<(String, String)> = node
            .get("Attributes")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_owned()))
            .collect();
        let pairs: Vec<(&str, String)> = attributes
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
fn device_group_attributes(node: &Value) -> Vec<String> {
    let Some(devices) = node.pointer("/NodeResources/Devices").and_then(|devices| {
        serde_json::from_value::<Vec<crate::structs::NodeDeviceResource>>(devices.clone()).ok()
    }) else {
        return Vec::new();
    };
    let mut devices: Vec<_> = devices
        .into_iter()
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

fn drain_text(node: &Value) -> String {
    match node
        .get("DrainStrategy")
        .filter(|strategy| !strategy.is_null())
    {
        None => "false".to_owned(),
        Some(strategy) => {
            let force = i64_of(strategy, "ForceDeadline");
            if force > 0 {
                format!("true; {} deadline", super::format::format_nanos(force))
            } else {
                "true".to_owned()
            }
        }
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
    let client = ApiClient::new(&args.api)?;
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
        let body = if args.enable {
            json!({
                "NodeID": node_id,
                "DrainSpec": {
                    "Deadline": deadline.as_nanos() as u64,
                    "IgnoreSystemJobs": args.ignore_system,
                },
                "MarkEligible": false,
            })
        } else {
            json!({ "NodeID": node_id, "DrainSpec": null, "MarkEligible": true })
        };
        let live_before = live_allocs(&client, &node_id).await?;
        client
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
        monitor_drain(&client, &node_id, deadline, live_before).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn is_terminal(alloc: &Value) -> bool {
    matches!(
        str_of(alloc, "ClientStatus"),
        "complete" | "failed" | "lost"
    )
}

/// The IDs of the node's allocations that have not finished.
async fn live_allocs(
    client: &ApiClient,
    node_id: &str,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let allocs = client
        .get(&format!("/v1/node/{node_id}/allocations"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying node allocations: {err}"))?;
    Ok(allocs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|alloc| !is_terminal(alloc))
        .map(|alloc| str_of(alloc, "ID").to_owned())
        .collect())
}

/// Follows the node's allocations until none is left running (Nomad: `api.Nodes().MonitorDrain`).
async fn monitor_drain(
    client: &ApiClient,
    node_id: &str,
    deadline: Duration,
    live_before: std::collections::BTreeSet<String>,
) -> anyhow::Result<()> {
    let give_up = std::time::Instant::now() + deadline + Duration::from_secs(30);
    let mut index = 0;
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
        let reply = client
            .get_blocking(
                &format!("/v1/node/{node_id}/allocations"),
                index,
                remaining.min(Duration::from_secs(30)),
            )
            .await?;
        index = reply.index.max(index);
        let mut left = 0;
        for alloc in reply.body.as_array().into_iter().flatten() {
            let alloc_id = str_of(alloc, "ID");
            let stopping = str_of(alloc, "DesiredStatus") != "run";
            let terminal = matches!(
                str_of(alloc, "ClientStatus"),
                "complete" | "failed" | "lost"
            );
            if str_of(alloc, "JobType") == "system" {
                continue;
            }
            if terminal {
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
            outln!(
                "{}: All allocations on node {node_id:?} have stopped",
                now_rfc3339()
            )?;
            return Ok(());
        }
    }
}

pub fn eligibility(args: &NodeEligibilityArgs) -> anyhow::Result<ExitCode> {
    if args.enable == args.disable {
        anyhow::bail!("Either the '-enable' or '-disable' flag must be set, but not both");
    }
    let client = ApiClient::new(&args.api)?;
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
        client
            .post(
                &format!("/v1/node/{node_id}/eligibility"),
                &json!({ "NodeID": node_id, "Eligibility": eligibility }),
            )
            .await
            .map_err(|err| anyhow::anyhow!("Error updating scheduling eligibility: {err}"))?;
        outln!("Node {node_id:?} scheduling eligibility set: {eligibility} for scheduling")?;
        Ok(ExitCode::SUCCESS)
    })
}
