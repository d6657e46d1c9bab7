//! `caravan server members`.

use std::process::ExitCode;

use serde_json::Value;

use super::ApiOnlyArgs;
use super::api_client::{ApiClient, table};

pub async fn run(args: &ApiOnlyArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::from_args(&args.api);
    let members: Value = client.get("/v1/agent/members").await?;
    let mut rows = table(&[
        "Name",
        "Address",
        "Port",
        "Status",
        "Leader",
        "Raft Version",
        "Build",
        "Datacenter",
        "Region",
    ]);
    for member in members["Members"].as_array().into_iter().flatten() {
        let tags = &member["Tags"];
        rows.add_row(vec![
            member["Name"].as_str().unwrap_or_default().to_owned(),
            member["Addr"].as_str().unwrap_or_default().to_owned(),
            member["Port"].to_string(),
            member["Status"].as_str().unwrap_or_default().to_owned(),
            tags["leader"].as_str().unwrap_or("false").to_owned(),
            tags["raft_vsn"].as_str().unwrap_or_default().to_owned(),
            tags["build"].as_str().unwrap_or_default().to_owned(),
            tags["dc"].as_str().unwrap_or_default().to_owned(),
            tags["region"].as_str().unwrap_or_default().to_owned(),
        ]);
    }
    println!("{rows}");
    Ok(ExitCode::SUCCESS)
}
