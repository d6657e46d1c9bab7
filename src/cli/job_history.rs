//! `caravan job history JOB`: the job's tracked versions.

use std::process::ExitCode;

use serde_json::Value;

use super::JobIdArgs;
use super::api_client::{ApiClient, format_time, key_values};

pub async fn run(args: &JobIdArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::from_args(&args.api);
    let job_id = super::job_status::resolve_job_id(&client, &args.job_id).await?;
    let reply: Value = client.get(&format!("/v1/job/{job_id}/versions")).await?;
    let versions = reply["Versions"].as_array().cloned().unwrap_or_default();
    let blocks: Vec<String> = versions
        .iter()
        .map(|job| {
            key_values(&[
                ("Version", job["Version"].to_string()),
                ("Stable", job["Stable"].to_string()),
                (
                    "Submit Date",
                    format_time(job["SubmitTime"].as_i64().unwrap_or(0)),
                ),
            ])
        })
        .collect();
    println!("{}", blocks.join("\n\n"));
    Ok(ExitCode::SUCCESS)
}
