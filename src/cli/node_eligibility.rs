//! `caravan node eligibility -enable|-disable [-self] NODE`.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::NodeEligibilityArgs;
use super::api_client::ApiClient;

pub async fn run(args: &NodeEligibilityArgs) -> anyhow::Result<ExitCode> {
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
    let eligibility = if args.enable {
        "eligible"
    } else {
        "ineligible"
    };
    let _: Value = client
        .put(
            &format!("/v1/node/{node_id}/eligibility"),
            &json!({ "NodeID": node_id, "Eligibility": eligibility }),
        )
        .await?;
    println!(
        "Node {node_id:?} scheduling eligibility set: {} for scheduling",
        eligibility
    );
    Ok(ExitCode::SUCCESS)
}
