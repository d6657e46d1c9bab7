//! `caravan job run`: submits a job file and monitors its evaluation as Nomad's CLI does.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use super::api_client::{ApiClient, now, short_id};
use super::{JobFileArgs, JobRunArgs};
use crate::structs::Job;

/// Reads a job file: HCL through the jobspec parser, or API JSON (`{"Job": ...}` or a bare job).
pub fn load_job(args: &JobFileArgs) -> anyhow::Result<Job> {
    if args.json
        || args
            .file
            .extension()
            .is_some_and(|extension| extension == "json")
    {
        let text = std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing {} as JSON", args.file.display()))?;
        let job = value.get("Job").cloned().unwrap_or(value);
        let mut job: Job = serde_json::from_value(job)?;
        job.canonicalize();
        return Ok(job);
    }
    let vars = args
        .vars
        .vars
        .iter()
        .map(|flag| crate::jobspec::ParseConfig::parse_var_flag(flag).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = crate::jobspec::ParseConfig {
        vars,
        var_files: args.vars.var_files.clone(),
        env: Vec::new(),
    }
    .with_process_env();
    Ok(crate::jobspec::parse_file(&args.file, &config)?)
}

/// `caravan job run [-detach] [-output] [-check-index N] FILE`.
pub async fn run(args: &JobRunArgs) -> anyhow::Result<ExitCode> {
    let job = load_job(&args.job)?;
    if args.output {
        println!("{}", serde_json::to_string_pretty(&json!({ "Job": job }))?);
        return Ok(ExitCode::SUCCESS);
    }
    let client = ApiClient::from_args(&args.api);
    let mut body = json!({ "Job": job });
    if let Some(index) = args.check_index {
        body["EnforceIndex"] = json!(true);
        body["JobModifyIndex"] = json!(index);
    }
    let reply: Value = client.put("/v1/jobs", &body).await?;
    let eval_id = reply["EvalID"].as_str().unwrap_or_default();
    if eval_id.is_empty() {
        println!("Job registration successful");
        return Ok(ExitCode::SUCCESS);
    }
    if args.detach {
        println!("Job registration successful");
        println!("Evaluation ID: {eval_id}");
        return Ok(ExitCode::SUCCESS);
    }
    monitor_eval(&client, eval_id, args.verbose).await
}

/// Follows an evaluation until it finishes, printing Nomad's monitor lines. Exit code 2 when
/// placements failed, as Nomad's.
pub async fn monitor_eval(
    client: &ApiClient,
    eval_id: &str,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    println!(
        "==> {}: Monitoring evaluation \"{}\"",
        now(),
        short_id(eval_id, verbose)
    );
    let mut index = 0;
    let mut status = String::new();
    let mut announced = false;
    let mut seen_allocs = BTreeSet::new();
    loop {
        let (eval, new_index): (Value, u64) = client
            .get_blocking(
                &format!("/v1/evaluation/{eval_id}"),
                index,
                Duration::from_secs(5),
            )
            .await?;
        index = new_index;
        if !announced {
            announced = true;
            match eval["NodeID"].as_str().filter(|node| !node.is_empty()) {
                Some(node) => println!(
                    "    {}: Evaluation triggered by node \"{}\"",
                    now(),
                    short_id(node, verbose)
                ),
                None => println!(
                    "    {}: Evaluation triggered by job \"{}\"",
                    now(),
                    eval["JobID"].as_str().unwrap_or_default()
                ),
            }
        }
        let allocs: Vec<Value> = client
            .get(&format!("/v1/evaluation/{eval_id}/allocations"))
            .await?;
        for alloc in &allocs {
            let alloc_id = alloc["ID"].as_str().unwrap_or_default().to_owned();
            if seen_allocs.insert(alloc_id.clone()) && alloc["DesiredStatus"] == "run" {
                println!(
                    "    {}: Allocation \"{}\" created: node \"{}\", group \"{}\"",
                    now(),
                    short_id(&alloc_id, verbose),
                    short_id(alloc["NodeID"].as_str().unwrap_or_default(), verbose),
                    alloc["TaskGroup"].as_str().unwrap_or_default()
                );
            }
        }
        let new_status = eval["Status"].as_str().unwrap_or_default().to_owned();
        if new_status != status {
            if !status.is_empty() {
                println!(
                    "    {}: Evaluation status changed: \"{status}\" -> \"{new_status}\"",
                    now()
                );
            }
            status = new_status;
        }
        if matches!(status.as_str(), "complete" | "failed" | "canceled") {
            return Ok(finish(&eval, eval_id, &status, verbose));
        }
    }
}

fn finish(eval: &Value, eval_id: &str, status: &str, verbose: bool) -> ExitCode {
    let failed = eval["FailedTGAllocs"]
        .as_object()
        .filter(|failed| !failed.is_empty());
    let Some(failed) = failed else {
        println!(
            "==> {}: Evaluation \"{}\" finished with status \"{status}\"",
            now(),
            short_id(eval_id, verbose)
        );
        return if status == "complete" {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    };
    println!(
        "==> {}: Evaluation \"{}\" finished with status \"{status}\" but failed to place all allocations:",
        now(),
        short_id(eval_id, verbose)
    );
    for (group, metric) in failed {
        let coalesced = metric["CoalescedFailures"].as_u64().unwrap_or(0);
        println!(
            "    {}: Task Group \"{group}\" (failed to place {} allocation{}):",
            now(),
            coalesced + 1,
            if coalesced == 0 { "" } else { "s" }
        );
        if let Some(exhausted) = metric["DimensionExhausted"].as_object() {
            for (dimension, count) in exhausted {
                println!("      * Dimension \"{dimension}\" exhausted on {count} nodes");
            }
        }
        if let Some(filtered) = metric["ConstraintFiltered"].as_object() {
            for (constraint, count) in filtered {
                println!("      * Constraint \"{constraint}\": {count} nodes excluded by filter");
            }
        }
    }
    if let Some(blocked) = eval["BlockedEval"]
        .as_str()
        .filter(|blocked| !blocked.is_empty())
    {
        println!(
            "    {}: Evaluation \"{}\" waiting for additional capacity to place remainder",
            now(),
            short_id(blocked, verbose)
        );
    }
    ExitCode::from(2)
}
