//! `caravan job run` and `caravan job plan`: submit a job file (then follow its evaluation and
//! deployment, as Nomad's monitor does), or dry-run it and show what the scheduler would change.
//!
//! Nomad: `command/job_run.go`, `command/job_plan.go`.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use crate::api::error::ENFORCE_INDEX_ERR_PREFIX;

use super::api_client::{ApiClient, block_on, encode, i64_of, str_of};
use super::job_file;
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{JobPlanArgs, JobRunArgs};
use crate::api::client::ClientError;

/// The server's reason when a register failed because of `-check-index`: the condition is known
/// by the prefix both ends share (Nomad: `api.RegisterEnforceIndexErrPrefix`).
fn enforce_index_conflict(err: &anyhow::Error) -> Option<&str> {
    let ClientError::UnexpectedResponse { reason, .. } = err.downcast_ref::<ClientError>()? else {
        return None;
    };
    reason
        .starts_with(ENFORCE_INDEX_ERR_PREFIX)
        .then_some(reason.as_str())
}

pub fn run(args: &JobRunArgs) -> anyhow::Result<ExitCode> {
    let job = job_file::load(&args.job)
        .map_err(|err| anyhow::anyhow!("Error getting job struct: {err:#}"))?;
    let job_value = serde_json::to_value(&job).context("failed to encode the job")?;
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let mut body = json!({ "Job": job_value });
        if let Some(index) = args.check_index {
            body["EnforceIndex"] = json!(true);
            body["JobModifyIndex"] = json!(index);
        }
        let response = match client.put("/v1/jobs", &body).await {
            Ok(response) => response,
            Err(err) => match enforce_index_conflict(&err) {
                // Nomad shows the server's reason alone, then says nothing changed.
                Some(reason) => anyhow::bail!("{reason}\nJob not updated"),
                None => anyhow::bail!("Error submitting job: {err}"),
            },
        };
        let eval_id = str_of(&response, "EvalID").to_owned();
        let job_type = str_of(&job_value, "Type");
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
        if code == 0 && job_type == "service" {
            let job_modify_index = i64_of(&response, "JobModifyIndex") as u64;
            monitor::monitor_deployment(
                &client,
                str_of(&job_value, "ID"),
                job_modify_index,
                config,
            )
            .await?;
        }
        Ok(ExitCode::from(code))
    })
}

pub fn plan(args: &JobPlanArgs) -> anyhow::Result<ExitCode> {
    let job = job_file::load(&args.job)
        .map_err(|err| anyhow::anyhow!("Error getting job struct: {err:#}"))?;
    let job_value = serde_json::to_value(&job).context("failed to encode the job")?;
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let job_id = str_of(&job_value, "ID").to_owned();
        let body = json!({ "Job": job_value, "Diff": true });
        let plan = client
            .put(&format!("/v1/job/{}/plan", encode(&job_id)), &body)
            .await
            .map_err(|err| anyhow::anyhow!("Error during plan: {err}"))?;
        let diff_type = plan
            .get("Diff")
            .map(|diff| str_of(diff, "Type").to_owned())
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
        if let Some(updates) = plan
            .pointer("/Annotations/DesiredTGUpdates")
            .and_then(Value::as_object)
        {
            for (group, update) in updates {
                let parts = update_parts(update);
                changes |= parts.iter().any(|(label, _)| *label != "ignore");
                let summary: Vec<String> = parts
                    .iter()
                    .map(|(label, count)| format!("{count} {label}"))
                    .collect();
                let mark = if i64_of(update, "Place") > 0 && diff_type == "Added" {
                    "+ "
                } else if i64_of(update, "Stop") > 0 && i64_of(update, "Place") == 0 {
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
        }
        outln!()?;
        outln!("Scheduler dry-run:")?;
        let failed = plan
            .get("FailedTGAllocs")
            .and_then(Value::as_object)
            .filter(|failed| !failed.is_empty());
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
        let index = i64_of(&plan, "JobModifyIndex");
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
fn update_parts(update: &Value) -> Vec<(&'static str, i64)> {
    [
        ("Place", "create"),
        ("Stop", "destroy"),
        ("Migrate", "migrate"),
        ("InPlaceUpdate", "in-place update"),
        ("DestructiveUpdate", "create/destroy update"),
        ("Canary", "canary"),
        ("Ignore", "ignore"),
    ]
    .into_iter()
    .map(|(field, label)| (label, i64_of(update, field)))
    .filter(|(_, count)| *count > 0)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reply_opening_with_the_shared_prefix_is_an_enforce_index_conflict() {
        let conflict = anyhow::Error::from(ClientError::UnexpectedResponse {
            status: 409,
            reason: format!("{ENFORCE_INDEX_ERR_PREFIX} 3: job does not exist"),
        });
        assert_eq!(
            enforce_index_conflict(&conflict),
            Some("Enforcing job modify index 3: job does not exist")
        );
        let other = anyhow::Error::from(ClientError::UnexpectedResponse {
            status: 400,
            reason: "job validation failed: no task groups".to_owned(),
        });
        assert_eq!(enforce_index_conflict(&other), None);
        let transport = anyhow::anyhow!("connection refused");
        assert_eq!(enforce_index_conflict(&transport), None);
    }
}
