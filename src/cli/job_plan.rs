//! `caravan job plan FILE`: the scheduler's dry run. Exit code 1 when allocations would be
//! created or destroyed, 0 when nothing changes, as Nomad's.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::JobPlanArgs;
use super::api_client::ApiClient;
use super::job_run::load_job;

pub async fn run(args: &JobPlanArgs) -> anyhow::Result<ExitCode> {
    let job = load_job(&args.job)?;
    let client = ApiClient::from_args(&args.api);
    let reply: Value = client
        .put(
            &format!("/v1/job/{}/plan", job.id),
            &json!({ "Job": job, "Diff": true }),
        )
        .await?;
    let diff_type = reply["Diff"]["Type"].as_str().unwrap_or("None");
    let marker = match diff_type {
        "Added" => "+",
        "Deleted" => "-",
        "Edited" => "+/-",
        _ => "",
    };
    println!("{marker} Job: \"{}\"", job.id);
    let mut changes = false;
    if let Some(groups) = reply["Annotations"]["DesiredTGUpdates"].as_object() {
        for (group, updates) in groups {
            let mut parts = Vec::new();
            for (key, label) in [
                ("Place", "create"),
                ("DestructiveUpdate", "create/destroy update"),
                ("InPlaceUpdate", "in-place update"),
                ("Stop", "destroy"),
                ("Ignore", "ignore"),
            ] {
                let count = updates[key].as_u64().unwrap_or(0);
                if count > 0 {
                    parts.push(format!("{count} {label}"));
                    changes |= key != "Ignore";
                }
            }
            println!("{marker} Task Group: \"{group}\" ({})", parts.join(", "));
        }
    }
    println!("\nScheduler dry-run:");
    match reply["FailedTGAllocs"]
        .as_object()
        .filter(|failed| !failed.is_empty())
    {
        None => println!("- All tasks successfully allocated."),
        Some(failed) => {
            for group in failed.keys() {
                println!(
                    "- WARNING: Failed to place all allocations.\n  Task Group \"{group}\" could not be placed"
                );
            }
        }
    }
    let index = reply["JobModifyIndex"].as_u64().unwrap_or(0);
    println!("\nJob Modify Index: {index}");
    println!("To submit the job with version verification run:\n");
    println!(
        "caravan job run -check-index {index} {}",
        args.job.file.display()
    );
    println!(
        "\nWhen running the job with the check-index flag, the job will only be run if the\n\
         job modify index given matches the server-side version. If the index has\n\
         changed, another user has modified the job and the plan's results are\n\
         potentially invalid."
    );
    Ok(if changes {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
