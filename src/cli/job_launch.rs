//! `caravan job periodic force` and `caravan job dispatch`: launching the children of periodic
//! and parameterized jobs; `caravan job eval`: a new evaluation of a job.
//!
//! Nomad: `command/job_periodic_force.go`, `command/job_dispatch.go`, `command/job_eval.go`.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;

use clap::Args;

use super::block_on;
use super::format::{kv, short_id};
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{ApiArgs, resolve};
use crate::api::client::encode;
use crate::api::types::client::EmptyResponse;
use crate::api::types::job_launch::{
    JobDispatchRequest, JobDispatchResponse, PeriodicForceResponse,
};
use crate::api::types::jobs::{EvalOptions, JobEvaluateRequest, JobRegisterResponse};

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
    let client = args.api.client()?;
    block_on(async {
        let job_id = resolve::job(&client, &args.job_id).await?.id;
        let response: PeriodicForceResponse = client
            .put(
                &format!("/v1/job/{}/periodic/force", encode(&job_id)),
                &EmptyResponse {},
            )
            .await
            .map_err(|err| anyhow::anyhow!("Error forcing periodic job {job_id:?}: {err}"))?;
        let eval_id = response.eval_id;
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

#[derive(Debug, Args)]
pub struct JobEvalArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job's ID (or prefix)
    pub job_id: String,
    /// Replaces the job's failed allocations now, whatever their reschedule policy says
    #[arg(long)]
    pub force_reschedule: bool,
    /// Returns at once instead of monitoring the evaluation
    #[arg(long)]
    pub detach: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
}

/// `caravan job eval JOB`: makes the scheduler look at the job again.
pub fn eval(args: &JobEvalArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let job_id = resolve::job(&client, &args.job_id).await?.id;
        let request = JobEvaluateRequest {
            job_id: job_id.to_string(),
            eval_options: EvalOptions {
                force_reschedule: args.force_reschedule,
            },
        };
        let response: JobRegisterResponse = client
            .put(&format!("/v1/job/{}/evaluate", encode(&job_id)), &request)
            .await
            .map_err(|err| anyhow::anyhow!("Error evaluating job: {err}"))?;
        if args.detach {
            outln!(
                "Created eval ID: {:?} ",
                short_id(&response.eval_id, args.verbose)
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        let config = MonitorConfig {
            verbose: args.verbose,
        };
        Ok(ExitCode::from(
            monitor::monitor_eval(&client, &response.eval_id, config).await?,
        ))
    })
}

#[derive(Debug, Args)]
pub struct JobDispatchArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The parameterized job's ID (or prefix)
    pub job_id: String,
    /// The payload: a file, or `-` for standard input
    pub input: Option<String>,
    /// Meta for the dispatched job, `key=value` (repeatable)
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// A prefix for the dispatched job's ID, after `dispatch-`
    #[arg(long = "id-prefix-template", value_name = "PREFIX", default_value = "")]
    pub id_prefix_template: String,
    /// Returns at once instead of monitoring the evaluation
    #[arg(long)]
    pub detach: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
}

/// `caravan job dispatch JOB [INPUT]`: dispatches a parameterized job with a payload and meta.
pub fn dispatch(args: &JobDispatchArgs) -> anyhow::Result<ExitCode> {
    let payload = match args.input.as_deref() {
        None => Vec::new(),
        Some("-") => {
            let mut payload = Vec::new();
            std::io::stdin()
                .read_to_end(&mut payload)
                .map_err(|err| anyhow::anyhow!("Error reading input data: {err}"))?;
            payload
        }
        Some(path) => {
            std::fs::read(path).map_err(|err| anyhow::anyhow!("Error reading input data: {err}"))?
        }
    };
    let mut meta = BTreeMap::new();
    for pair in &args.meta {
        let Some((key, value)) = pair.split_once('=') else {
            anyhow::bail!("Error parsing meta value: {pair}");
        };
        meta.insert(key.to_owned(), value.to_owned());
    }
    let client = args.api.client()?;
    block_on(async {
        let job_id = resolve::job(&client, &args.job_id).await?.id;
        let request = JobDispatchRequest {
            job_id: job_id.clone(),
            payload,
            meta,
            id_prefix_template: args.id_prefix_template.clone(),
        };
        let response: JobDispatchResponse = client
            .put(&format!("/v1/job/{}/dispatch", encode(&job_id)), &request)
            .await
            .map_err(|err| anyhow::anyhow!("Failed to dispatch job: {err}"))?;
        let eval_id = response.eval_id;
        let mut lines = vec![("Dispatched Job ID", response.dispatched_job_id)];
        if !eval_id.is_empty() {
            lines.push(("Evaluation ID", short_id(&eval_id, args.verbose)));
        }
        outln!("{}", kv(&lines))?;
        if args.detach || eval_id.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        outln!()?;
        let config = MonitorConfig {
            verbose: args.verbose,
        };
        Ok(ExitCode::from(
            monitor::monitor_eval(&client, &eval_id, config).await?,
        ))
    })
}
