//! `caravan status [ID]`: the job list, or whatever object the ID (prefix) names.

use std::process::ExitCode;

use serde_json::Value;

use super::StatusArgs;
use super::api_client::ApiClient;

pub async fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::from_args(&args.api);
    let Some(id) = &args.id else {
        let jobs: Vec<Value> = client.get("/v1/jobs").await?;
        if jobs.is_empty() {
            println!("No running jobs");
        } else {
            println!("{}", super::job_status::jobs_table(&jobs));
        }
        return Ok(ExitCode::SUCCESS);
    };
    if let Ok(job_id) = super::job_status::resolve_job_id(&client, id).await {
        super::job_status::print_job(&client, &job_id, false, false, false).await?;
        return Ok(ExitCode::SUCCESS);
    }
    for (kind, path) in [
        ("Allocation", "/v1/allocation"),
        ("Evaluation", "/v1/evaluation"),
        ("Node", "/v1/node"),
        ("Deployment", "/v1/deployment"),
    ] {
        if let Ok(object) = client.get::<Value>(&format!("{path}/{id}")).await {
            println!("{kind} {}", object["ID"].as_str().unwrap_or_default());
            println!("{}", serde_json::to_string_pretty(&object)?);
            return Ok(ExitCode::SUCCESS);
        }
    }
    anyhow::bail!("No matches found for {id:?}")
}
