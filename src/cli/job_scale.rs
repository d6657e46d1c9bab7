//! `caravan job scale JOB [GROUP] COUNT` and `caravan job scaling-events JOB`.
//!
//! Nomad: `command/job_scale.go`, `command/job_scaling_events.go`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::ApiArgs;
use super::api_client::{ApiClient, ObjectKind, block_on, encode, i64_of, str_of};
use super::format::{format_nanos, table};
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use crate::api::types::scaling::{SCALING_TARGET_GROUP, ScalingRequest};

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
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let stub = client.resolve(ObjectKind::Job, &args.job_id).await?;
        let job_id = str_of(&stub, "ID").to_owned();
        let path = format!("/v1/job/{}", encode(&job_id));
        let group = match group {
            Some(group) => group,
            None => {
                let job = client.get(&path).await?;
                let groups: Vec<&str> = job["TaskGroups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|group| str_of(group, "Name"))
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
        let response = client
            .put(&format!("{path}/scale"), &serde_json::to_value(&request)?)
            .await
            .map_err(|err| anyhow::anyhow!("Error submitting scaling request: {err}"))?;
        let eval_id = str_of(&response, "EvalID").to_owned();
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
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let stub = client.resolve(ObjectKind::Job, &args.job_id).await?;
        let job_id = str_of(&stub, "ID").to_owned();
        let status = client
            .get(&format!("/v1/job/{}/scale", encode(&job_id)))
            .await
            .map_err(|err| anyhow::anyhow!("Error listing scaling events: {err}"))?;
        outln!("{}", events_table(&status, args.verbose))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The events of every group, newest first, or `No events found`.
fn events_table(status: &Value, verbose: bool) -> String {
    let mut events: Vec<(&str, &Value)> = status["TaskGroups"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(group, state)| {
            state["Events"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |event| (group.as_str(), event))
        })
        .collect();
    if events.is_empty() {
        return "No events found".to_owned();
    }
    events.sort_by_key(|(_, event)| std::cmp::Reverse(i64_of(event, "Time")));
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|(group, event)| {
            let count = event["Count"]
                .as_i64()
                .map_or_else(|| "-".to_owned(), |count| count.to_string());
            let date = format_nanos(i64_of(event, "Time"));
            let mut row = vec![
                (*group).to_owned(),
                count,
                i64_of(event, "PreviousCount").to_string(),
            ];
            if verbose {
                row.push(event["Error"].as_bool().unwrap_or(false).to_string());
                row.push(date);
                row.push(event["EvalID"].as_str().unwrap_or_default().to_owned());
                row.push(str_of(event, "Message").to_owned());
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
