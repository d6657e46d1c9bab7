//! `caravan job stop [-purge] [-detach] JOB`.

use std::process::ExitCode;

use serde_json::Value;

use super::JobStopArgs;
use super::api_client::ApiClient;
use super::job_run::monitor_eval;

pub async fn run(args: &JobStopArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::from_args(&args.api);
    let job_id = super::job_status::resolve_job_id(&client, &args.job_id).await?;
    let path = format!(
        "/v1/job/{job_id}{}",
        if args.purge { "?purge=true" } else { "" }
    );
    let reply: Value = client.delete(&path).await?;
    let eval_id = reply["EvalID"].as_str().unwrap_or_default();
    if args.detach || eval_id.is_empty() {
        println!("{eval_id}");
        return Ok(ExitCode::SUCCESS);
    }
    monitor_eval(&client, eval_id, false).await
}
