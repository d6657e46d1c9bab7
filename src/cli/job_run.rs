//! `caravan job run` and `caravan job plan`: submit a job file (then follow its evaluation and
//! deployment, as Nomad's monitor does), or dry-run it and show what the scheduler would change.
//!
//! Nomad: `command/job_run.go`, `command/job_plan.go`.

use std::process::ExitCode;

use super::block_on;
use super::job_file;
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{JobPlanArgs, JobRunArgs};
use crate::api::client::{ClientError, encode};
use crate::api::error::ENFORCE_INDEX_ERR_PREFIX;
use crate::api::types::jobs::{
    DesiredUpdates, JobPlanRequest, JobPlanResponse, JobRegisterRequest, JobRegisterResponse,
};
use crate::structs::{Job, JobType};

/// The server's reason when a register failed because of `-check-index`: the condition is known
/// by the prefix both ends share (Nomad: `api.RegisterEnforceIndexErrPrefix`).
fn enforce_index_conflict(err: &ClientError) -> Option<&str> {
    let ClientError::UnexpectedResponse { reason, .. } = err else {
        return None;
    };
    reason
        .starts_with(ENFORCE_INDEX_ERR_PREFIX)
        .then_some(reason.as_str())
}

pub fn run(args: &JobRunArgs) -> anyhow::Result<ExitCode> {
    let job = job_file::load(&args.job)
        .map_err(|err| anyhow::anyhow!("Error getting job struct: {err:#}"))?;
    let client = args.api.client()?;
    block_on(async {
        let body = JobRegisterRequest::<&Job> {
            job: Some(&job),
            enforce_index: args.check_index.is_some(),
            job_modify_index: args.check_index.unwrap_or(0),
        };
        let response: JobRegisterResponse = match client.put("/v1/jobs", &body).await {
            Ok(response) => response,
            Err(err) => match enforce_index_conflict(&err) {
                // Nomad shows the server's reason alone, then says nothing changed.
                Some(reason) => anyhow::bail!("{reason}\nJob not updated"),
                None => anyhow::bail!("Error submitting job: {err}"),
            },
        };
        let eval_id = response.eval_id;
        if eval_id.is_empty() {
            // Periodic and parameterized jobs make no evaluation until launched or dispatched.
            outln!("Job registration successful")?;
            return Ok(ExitCode::SUCCESS);
        }
        if args.detach {
            outln!("Job registration successful")?;
            outln!("Evaluation ID: {eval_id}")?;
            return Ok(ExitCode::SUCCESS);
        }
        let config = MonitorConfig {
            verbose: args.verbose,
        };
        let code = monitor::monitor_eval(&client, &eval_id, config).await?;
        if code == 0 && job.job_type == JobType::Service {
            monitor::monitor_deployment(&client, &job.id, response.job_modify_index, config)
                .await?;
        }
        Ok(ExitCode::from(code))
    })
}

pub fn plan(args: &JobPlanArgs) -> anyhow::Result<ExitCode> {
    let job = job_file::load(&args.job)
        .map_err(|err| anyhow::anyhow!("Error getting job struct: {err:#}"))?;
    let client = args.api.client()?;
    block_on(async {
        let job_id = job.id.to_string();
        let body = JobPlanRequest::<&Job> {
            job: Some(&job),
            diff: true,
        };
        let plan: JobPlanResponse = client
            .put(&format!("/v1/job/{}/plan", encode(&job_id)), &body)
            .await
            .map_err(|err| anyhow::anyhow!("Error during plan: {err}"))?;
        let diff_type = plan
            .diff
            .as_ref()
            .map(|diff| diff.diff_type.clone())
            .unwrap_or_default();
        let job_mark = match diff_type.as_str() {
            "Added" => "+",
            "Deleted" => "-",
            "Edited" => "+/-",
            _ => "",
        };
        if job_mark.is_empty() {
            outln!("Job: \"{job_id}\"")?;
        } else {
            outln!("{job_mark} Job: \"{job_id}\"")?;
        }
        let mut changes = false;
        for (group, update) in &plan.annotations.desired_tg_updates {
            let parts = update_parts(update);
            changes |= parts.iter().any(|(label, _)| *label != "ignore");
            let summary: Vec<String> = parts
                .iter()
                .map(|(label, count)| format!("{count} {label}"))
                .collect();
            let mark = if update.place > 0 && diff_type == "Added" {
                "+ "
            } else if update.stop > 0 && update.place == 0 {
                "- "
            } else if summary.iter().all(|part| part.ends_with("ignore")) {
                ""
            } else {
                "+/- "
            };
            if summary.is_empty() {
                outln!("{mark}Task Group: \"{group}\"")?;
            } else {
                outln!("{mark}Task Group: \"{group}\" ({})", summary.join(", "))?;
            }
        }
        outln!()?;
        outln!("Scheduler dry-run:")?;
        let failed = Some(&plan.failed_tg_allocs).filter(|failed| !failed.is_empty());
        match failed {
            None => outln!("- All tasks successfully allocated.")?,
            Some(failed) => {
                outln!("- WARNING: Failed to place all allocations.")?;
                for (group, metric) in failed {
                    for line in monitor::failed_placement_lines(group, metric) {
                        outln!("  {line}")?;
                    }
                }
            }
        }
        let index = plan.job_modify_index;
        outln!()?;
        outln!("Job Modify Index: {index}")?;
        outln!("To submit the job with version verification run:")?;
        outln!()?;
        outln!(
            "caravan job run -check-index {index} {}",
            args.job.file.display()
        )?;
        outln!()?;
        outln!("When running the job with the check-index flag, the job will only be run if the")?;
        outln!("job modify index given matches the server-side version. If the index has")?;
        outln!("changed, another user has modified the job and the plan's results are")?;
        outln!("potentially invalid.")?;
        // Nomad: 1 when allocations would be created or destroyed, 0 when nothing changes.
        Ok(ExitCode::from(u8::from(changes || failed.is_some())))
    })
}

/// The non-zero counts of a group's desired updates, with the words Nomad's plan uses.
fn update_parts(update: &DesiredUpdates) -> Vec<(&'static str, u64)> {
    [
        ("create", update.place),
        ("destroy", update.stop),
        ("migrate", update.migrate),
        ("in-place update", update.in_place_update),
        ("create/destroy update", update.destructive_update),
        ("canary", update.canary),
        ("ignore", update.ignore),
    ]
    .into_iter()
    .filter(|(_, count)| *count > 0)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reply_opening_with_the_shared_prefix_is_an_enforce_index_conflict() {
        let conflict = ClientError::UnexpectedResponse {
            status: 409,
            reason: format!("{ENFORCE_INDEX_ERR_PREFIX} 3: job does not exist"),
        };
        assert_eq!(
            enforce_index_conflict(&conflict),
            Some("Enforcing job modify index 3: job does not exist")
        );
        let other = ClientError::UnexpectedResponse {
            status: 400,
            reason: "job validation failed: no task groups".to_owned(),
        };
        assert_eq!(enforce_index_conflict(&other), None);
        let transport = ClientError::Transport("connection refused".to_owned());
        assert_eq!(enforce_index_conflict(&transport), None);
    }
}
