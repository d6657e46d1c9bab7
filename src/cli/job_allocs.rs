//! `caravan job allocs JOB`: the job's allocations.

use std::process::ExitCode;

use serde_json::Value;

use super::JobIdArgs;
use super::api_client::ApiClient;

pub async fn run(args: &JobIdArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::from_args(&args.api);
    let job_id = super::job_status::resolve_job_id(&client, &args.job_id).await?;
    let allocs: Vec<Value> = client.get(&format!("/v1/job/{job_id}/allocations")).await?;
    if allocs.is_empty() {
        println!("No allocations placed");
    } else {
        println!("{}", super::job_status::allocs_table(&allocs, args.verbose));
    }
    Ok(ExitCode::SUCCESS)
}
