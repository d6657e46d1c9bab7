//! `caravan node status [-self] [NODE]`: the node list, or one node with its allocations.

use std::process::ExitCode;

use serde_json::Value;

use super::NodeStatusArgs;
use super::api_client::{ApiClient, key_values, short_id, table};

/// The node of the agent at the client's address (its client's node ID).
pub async fn self_node_id(client: &ApiClient) -> anyhow::Result<String> {
    let agent: Value = client.get("/v1/agent/self").await?;
    agent["stats"]["client"]["node_id"]
        .as_str()
        .or_else(|| agent["config"]["Client"]["NodeID"].as_str())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("This agent is not running a client: -self needs one"))
}

pub async fn run(args: &NodeStatusArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::from_args(&args.api);
    let node_id = match (&args.node_id, args.self_node) {
        (Some(node_id), _) => node_id.clone(),
        (None, true) => self_node_id(&client).await?,
        (None, false) => {
            let nodes: Vec<Value> = client.get("/v1/nodes").await?;
            if nodes.is_empty() {
                println!("No nodes registered");
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = table(&[
                "ID",
                "Node Pool",
                "DC",
                "Name",
                "Class",
                "Drain",
                "Eligibility",
                "Status",
            ]);
            for node in &nodes {
                rows.add_row(vec![
                    short_id(node["ID"].as_str().unwrap_or_default(), args.verbose).to_owned(),
                    node["NodePool"].as_str().unwrap_or_default().to_owned(),
                    node["Datacenter"].as_str().unwrap_or_default().to_owned(),
                    node["Name"].as_str().unwrap_or_default().to_owned(),
                    node["NodeClass"]
                        .as_str()
                        .filter(|class| !class.is_empty())
                        .unwrap_or("<none>")
                        .to_owned(),
                    node["Drain"].to_string(),
                    node["SchedulingEligibility"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    node["Status"].as_str().unwrap_or_default().to_owned(),
                ]);
            }
            println!("{rows}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let node: Value = client.get(&format!("/v1/node/{node_id}")).await?;
    let full_id = node["ID"].as_str().unwrap_or_default().to_owned();
    let drivers = node["Drivers"]
        .as_object()
        .map(|drivers| {
            drivers
                .iter()
                .filter(|(_, info)| info["Detected"] == true && info["Healthy"] == true)
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    println!(
        "{}",
        key_values(&[
            ("ID", short_id(&full_id, args.verbose).to_owned()),
            ("Name", node["Name"].as_str().unwrap_or_default().to_owned()),
            (
                "Node Pool",
                node["NodePool"].as_str().unwrap_or_default().to_owned()
            ),
            (
                "Class",
                node["NodeClass"]
                    .as_str()
                    .filter(|class| !class.is_empty())
                    .unwrap_or("<none>")
                    .to_owned()
            ),
            (
                "DC",
                node["Datacenter"].as_str().unwrap_or_default().to_owned()
            ),
            ("Drain", (!node["DrainStrategy"].is_null()).to_string()),
            (
                "Eligibility",
                node["SchedulingEligibility"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            ),
            (
                "Status",
                node["Status"].as_str().unwrap_or_default().to_owned()
            ),
            ("Drivers", drivers),
        ])
    );
    let allocs: Vec<Value> = client
        .get(&format!("/v1/node/{full_id}/allocations"))
        .await?;
    println!("\nAllocations");
    if allocs.is_empty() {
        println!("No allocations placed");
    } else {
        let mut rows = table(&["ID", "Job ID", "Task Group", "Desired", "Status"]);
        for alloc in &allocs {
            rows.add_row(vec![
                short_id(alloc["ID"].as_str().unwrap_or_default(), args.verbose).to_owned(),
                alloc["JobID"].as_str().unwrap_or_default().to_owned(),
                alloc["TaskGroup"].as_str().unwrap_or_default().to_owned(),
                alloc["DesiredStatus"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                alloc["ClientStatus"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ]);
        }
        println!("{rows}");
    }
    Ok(ExitCode::SUCCESS)
}
