//! `caravan job periodic force`: launching the children of periodic jobs.
//!
//! Nomad: `command/job_periodic_force.go`.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::ApiArgs;
use super::api_client::{ApiClient, ObjectKind, block_on, encode, str_of};
use super::monitor::{self, MonitorConfig};
use super::output::outln;

#[derive(Debug, Args)]
pub struct JobPeriodicForceArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The periodic job's ID (or prefix)
    pub job_id: String,
    /// Returns at once instead of monitoring the evaluation
    #[arg(long)]
    pub detach: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
}

/// `caravan job periodic force JOB`: launches a child of the periodic job now.
pub fn periodic_force(args: &JobPeriodicForceArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let job = client.resolve(ObjectKind::Job, &args.job_id).await?;
        let job_id = str_of(&job, "ID").to_owned();
        let response = client
            .put(
                &format!("/v1/job/{}/periodic/force", encode(&job_id)),
                &json!({}),
            )
            .await
            .map_err(|err| anyhow::anyhow!("Error forcing periodic job {job_id:?}: {err}"))?;
        let eval_id = str_of(&response, "EvalID").to_owned();
        if args.detach {
            outln!("Force periodic successful")?;
            outln!("Evaluation ID: {eval_id}")?;
            return Ok(ExitCode::SUCCESS);
        }
        let config = MonitorConfig {
            verbose: args.verbose,
        };
        Ok(ExitCode::from(
            monitor::monitor_eval(&client, &eval_id, config).await?,
        ))
    })
}
