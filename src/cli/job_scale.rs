//! `caravan job scale JOB [GROUP] COUNT` and `caravan job scaling-events JOB`.
//!
//! Nomad: `command/job_scale.go`, `command/job_scaling_events.go`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;

use super::block_on;
use super::format::{format_nanos, table};
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{ApiArgs, resolve};
use crate::api::client::encode;
use crate::api::types::jobs::JobRegisterResponse;
use crate::api::types::scaling::{JobScaleStatusResponse, SCALING_TARGET_GROUP, ScalingRequest};
use crate::structs::{Job, ScalingEvent};

#[derive(Debug, Args)]
pub struct JobScaleArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job ID (or prefix)
    pub job_id: String,
    /// The group, then the count; the group may be left out when the job has one
    #[arg(num_args = 1..=2, required = true, value_name = "[GROUP] COUNT")]
    pub rest: Vec<String>,
    /// Returns at once instead of monitoring the evaluation
    #[arg(long)]
    pub detach: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct JobScalingEventsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job ID (or prefix)
    pub job_id: String,
    /// Shows every column: error, evaluation and message
    #[arg(long)]
    pub verbose: bool,
}

/// `caravan job scale`: sets a group's count within its scaling policy.
pub fn scale(args: &JobScaleArgs) -> anyhow::Result<ExitCode> {
    let (group, count) = match args.rest.as_slice() {
        [count] => (None, count),
        [group, count] => (Some(group.clone()), count),
        _ => anyhow::bail!("This command takes two or three arguments: <job> [<group>] <count>"),
    };
    let count: i64 = count
        .parse()
        .map_err(|err| anyhow::anyhow!("Failed to convert count string to int: {err}"))?;
    let client = args.api.client()?;
    block_on(async {
        let job_id = resolve::job(&client, &args.job_id).await?.id;
        let path = format!("/v1/job/{}", encode(&job_id));
        let group = match group {
            Some(group) => group,
            None => {
                let job: Job = client.get(&path).await?;
                let groups: Vec<&str> = job
                    .task_groups
                    .iter()
                    .map(|group| group.name.as_str())
                    .collect();
                match groups.as_slice() {
                    [only] => (*only).to_owned(),
                    _ => anyhow::bail!("Group name required"),
                }
            }
        };
        let request = ScalingRequest {
            count: Some(count),
            target: BTreeMap::from([(SCALING_TARGET_GROUP.to_owned(), group)]),
            message: "submitted using the Nomad CLI".to_owned(),
            ..ScalingRequest::default()
        };
        let response: JobRegisterResponse = client
            .put(&format!("{path}/scale"), &request)
            .await
            .map_err(|err| anyhow::anyhow!("Error submitting scaling request: {err}"))?;
        let eval_id = response.eval_id;
        if args.detach || eval_id.is_empty() {
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

/// `caravan job scaling-events`: the job's scaling events, newest first.
pub fn scaling_events(args: &JobScalingEventsArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let job_id = resolve::job(&client, &args.job_id).await?.id;
        let status: JobScaleStatusResponse = client
            .get(&format!("/v1/job/{}/scale", encode(&job_id)))
            .await
            .map_err(|err| anyhow::anyhow!("Error listing scaling events: {err}"))?;
        outln!("{}", events_table(&status, args.verbose))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The events of every group, newest first, or `No events found`.
fn events_table(status: &JobScaleStatusResponse, verbose: bool) -> String {
    let mut events: Vec<(&str, &ScalingEvent)> = status
        .task_groups
        .iter()
        .flat_map(|(group, state)| {
            state
                .events
                .iter()
                .map(move |event| (group.as_str(), event))
        })
        .collect();
    if events.is_empty() {
        return "No events found".to_owned();
    }
    events.sort_by_key(|(_, event)| std::cmp::Reverse(event.time));
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|(group, event)| {
            let count = event
                .count
                .map_or_else(|| "-".to_owned(), |count| count.to_string());
            let date = format_nanos(i64::try_from(event.time).unwrap_or(i64::MAX));
            let mut row = vec![(*group).to_owned(), count, event.previous_count.to_string()];
            if verbose {
                row.push(event.error.to_string());
                row.push(date);
                row.push(event.eval_id.clone().unwrap_or_default());
                row.push(event.message.clone());
            } else {
                row.push(date);
            }
            row
        })
        .collect();
    if verbose {
        table(
            &[
                "Task Group",
                "Count",
                "PrevCount",
                "Error",
                "Date",
                "EvalID",
                "Message",
            ],
            &rows,
        )
    } else {
        table(&["Task Group", "Count", "PrevCount", "Date"], &rows)
    }
}
