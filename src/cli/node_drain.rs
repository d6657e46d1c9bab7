//! `caravan node drain -enable|-disable [-self] [-deadline D] [-ignore-system] NODE`.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::NodeDrainArgs;
use super::api_client::ApiClient;

pub async fn run(args: &NodeDrainArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.enable != args.disable,
        "Exactly one of -enable or -disable must be given"
    );
    let client = ApiClient::from_args(&args.api);
    let node_id = match (&args.node_id, args.self_node) {
        (Some(node_id), _) => node_id.clone(),
        (None, true) => super::node_status::self_node_id(&client).await?,
        (None, false) => anyhow::bail!("This command takes a node ID or -self"),
    };
    let deadline = match &args.deadline {
        Some(text) => crate::api::query::parse_go_duration(text)
            .ok_or_else(|| anyhow::anyhow!("Invalid deadline {text:?}"))?,
        None => std::time::Duration::from_secs(3600),
    };
    let body = if args.enable {
        json!({
            "NodeID": node_id,
            "DrainSpec": {
                "Deadline": u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX),
                "IgnoreSystemJobs": args.ignore_system,
            },
        })
    } else {
        json!({ "NodeID": node_id, "DrainSpec": null, "MarkEligible": true })
    };
    let _: Value = client
        .put(&format!("/v1/node/{node_id}/drain"), &body)
        .await?;
    if args.enable {
        println!("Node {node_id:?} drain strategy set");
    } else {
        println!("Node {node_id:?} drain strategy unset");
    }
    Ok(ExitCode::SUCCESS)
}
