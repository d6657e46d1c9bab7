//! `caravan job restart`: restarts a job's running allocations in place, or reschedules them
//! (`-reschedule`: stopped, for the scheduler to place anew), in batches.
//!
//! Nomad: `command/job_restart.go` (its messages; `-batch-wait=ask` and `-on-error=ask`, which
//! need a terminal, are not offered: a failed batch ends the restart, as `-on-error=fail`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::format::{now_rfc3339, short_id};
use super::output::outln;
use super::{ApiArgs, block_on, resolve};
use crate::api::client::{ApiClient, encode};
use crate::api::types::allocs::{AllocListStub, AllocStopResponse};
use crate::api::types::client::{AllocRestartRequest, EmptyResponse};
use crate::structs::{AllocClientStatus, AllocDesiredStatus, duration};

#[derive(Debug, Args)]
pub struct JobRestartArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Restarts every task of each allocation, not only the running ones
    #[arg(long = "all-tasks", conflicts_with_all = ["tasks", "reschedule"])]
    pub all_tasks: bool,
    /// How many allocations to restart at once: a number, or a percentage of them (`25%`)
    #[arg(long = "batch-size", default_value = "1")]
    pub batch_size: String,
    /// How long to wait between batches (`10s`)
    #[arg(long = "batch-wait")]
    pub batch_wait: Option<String>,
    /// Only the allocations of this group (repeatable)
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Only this task (repeatable)
    #[arg(long = "task", conflicts_with = "reschedule")]
    pub tasks: Vec<String>,
    /// Stops each allocation so the scheduler places a new one, instead of restarting it
    #[arg(long)]
    pub reschedule: bool,
    /// Answers yes to every question (there are none without a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Full IDs, and the allocations skipped
    #[arg(long)]
    pub verbose: bool,
    /// The job to restart
    pub job_id: String,
}

/// `-batch-size`: a count, or a percentage of `total` rounded up; at least 1.
fn batch_size(text: &str, total: usize) -> anyhow::Result<usize> {
    let invalid =
        || anyhow::anyhow!("Invalid -batch-size value {text:?}: a number or a percentage");
    let size = match text.strip_suffix('%') {
        Some(percent) => {
            let percent: usize = percent.parse().map_err(|_| invalid())?;
            if percent == 0 || percent > 100 {
                return Err(invalid());
            }
            (total * percent).div_ceil(100)
        }
        None => text.parse().map_err(|_| invalid())?,
    };
    if size == 0 {
        return Err(invalid());
    }
    Ok(size)
}

pub fn run(args: &JobRestartArgs) -> anyhow::Result<ExitCode> {
    let batch_wait = match args.batch_wait.as_deref() {
        None => Duration::ZERO,
        Some(text) => duration::parse_go_duration(text)
            .map_err(|err| anyhow::anyhow!("Invalid -batch-wait value {text:?}: {err}"))?,
    };
    let client = args.api.client()?;
    block_on(async {
        let job = resolve::job(&client, &args.job_id).await?;
        let allocs: Vec<AllocListStub> = client
            .get(&format!("/v1/job/{}/allocations", encode(&job.id)))
            .await
            .map_err(|err| {
                anyhow::anyhow!("Error retrieving allocations for job {:?}: {err}", job.id)
            })?;
        let short = |id: &str| short_id(id, args.verbose);
        let mut chosen = Vec::new();
        for alloc in allocs {
            if alloc.desired_status != AllocDesiredStatus::Run
                || alloc.client_status != AllocClientStatus::Running
            {
                if args.verbose {
                    outln!(
                        "    {}: Skipping allocation {:?} because desired status is {:?} and client status is {:?}",
                        now_rfc3339(),
                        short(&alloc.id),
                        alloc.desired_status.to_string(),
                        alloc.client_status.to_string()
                    )?;
                }
                continue;
            }
            if !args.groups.is_empty() && !args.groups.contains(&alloc.task_group) {
                continue;
            }
            if !args.tasks.is_empty()
                && !args
                    .tasks
                    .iter()
                    .any(|task| alloc.task_states.contains_key(task))
            {
                continue;
            }
            chosen.push(alloc);
        }
        if chosen.is_empty() {
            outln!("No allocations to restart")?;
            return Ok(ExitCode::SUCCESS);
        }
        let size = batch_size(&args.batch_size, chosen.len())?;
        let plural = if chosen.len() == 1 { "" } else { "s" };
        outln!(
            "==> {}: Restarting {} allocation{plural}",
            now_rfc3339(),
            chosen.len()
        )?;
        let batches: Vec<&[AllocListStub]> = chosen.chunks(size).collect();
        for (number, batch) in batches.iter().enumerate() {
            if size > 1 {
                outln!(
                    "==> {}: Restarting {} batch of {} allocations",
                    now_rfc3339(),
                    ordinal(number + 1),
                    batch.len()
                )?;
            }
            let mut failures = Vec::new();
            for alloc in *batch {
                if let Err(err) = handle(&client, args, alloc, &short(&alloc.id)).await {
                    failures.push(format!(
                        "Error restarting allocation {:?}: {err}",
                        short(&alloc.id)
                    ));
                }
            }
            if !failures.is_empty() {
                outln!("==> {}: Job restart finished with errors", now_rfc3339())?;
                anyhow::bail!("{}", failures.join("\n"));
            }
            if number + 1 < batches.len() && !batch_wait.is_zero() {
                outln!(
                    "==> {}: Waiting {} before restarting the next batch",
                    now_rfc3339(),
                    args.batch_wait.as_deref().unwrap_or_default()
                )?;
                tokio::time::sleep(batch_wait).await;
            }
        }
        outln!("==> {}: Job restart finished", now_rfc3339())?;
        outln!("\nJob restarted successfully!")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Restarts (or reschedules) one allocation as asked.
async fn handle(
    client: &ApiClient,
    args: &JobRestartArgs,
    alloc: &AllocListStub,
    short: &str,
) -> anyhow::Result<()> {
    let group = &alloc.task_group;
    if args.reschedule {
        outln!(
            "    {}: Rescheduling allocation {short:?} for group {group:?}",
            now_rfc3339()
        )?;
        let _: AllocStopResponse = client
            .post(
                &format!("/v1/allocation/{}/stop", alloc.id),
                &EmptyResponse {},
            )
            .await?;
        return Ok(());
    }
    let path = format!("/v1/client/allocation/{}/restart", alloc.id);
    if args.tasks.is_empty() {
        if args.all_tasks {
            outln!(
                "    {}: Restarting all tasks in allocation {short:?} for group {group:?}",
                now_rfc3339()
            )?;
        } else {
            outln!(
                "    {}: Restarting running tasks in allocation {short:?} for group {group:?}",
                now_rfc3339()
            )?;
        }
        let body = AllocRestartRequest {
            task_name: String::new(),
            all_tasks: args.all_tasks,
        };
        let _: EmptyResponse = client.post(&path, &body).await?;
        return Ok(());
    }
    for task in args
        .tasks
        .iter()
        .filter(|task| alloc.task_states.contains_key(*task))
    {
        outln!(
            "    {}: Restarting task {task:?} in allocation {short:?} for group {group:?}",
            now_rfc3339()
        )?;
        let body = AllocRestartRequest {
            task_name: task.clone(),
            all_tasks: false,
        };
        let _: EmptyResponse = client
            .post(&path, &body)
            .await
            .map_err(|err| anyhow::anyhow!("Failed to restart task {task:?}: {err}"))?;
    }
    Ok(())
}

/// `1st`, `2nd`, `3rd`, `4th`... `11th`, `21st`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_are_counts_or_percentages_rounded_up() {
        assert_eq!(batch_size("3", 10).ok(), Some(3));
        assert_eq!(batch_size("25%", 10).ok(), Some(3));
        assert_eq!(batch_size("100%", 7).ok(), Some(7));
        assert_eq!(batch_size("1%", 7).ok(), Some(1));
        for bad in ["0", "0%", "101%", "x", "-1"] {
            assert!(batch_size(bad, 10).is_err(), "{bad}");
        }
    }

    #[test]
    fn ordinals_read_as_english() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 111].map(ordinal).into();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "111th"
            ]
        );
    }
}
