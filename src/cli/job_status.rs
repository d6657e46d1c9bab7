//! `caravan job status [JOB]`: the job list, or one job in Nomad's layout (record, summary,
//! latest deployment, allocations).

use std::process::ExitCode;

use serde_json::Value;

use super::JobStatusArgs;
use super::api_client::{ApiClient, format_time, key_values, short_id, table};

/// The unique job whose ID starts with `prefix` (an exact match wins).
pub async fn resolve_job_id(client: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    let jobs: Vec<Value> = client.get(&format!("/v1/jobs?prefix={prefix}")).await?;
    let ids: Vec<&str> = jobs.iter().filter_map(|job| job["ID"].as_str()).collect();
    if ids.contains(&prefix) {
        return Ok(prefix.to_owned());
    }
    match ids.as_slice() {
        [] => anyhow::bail!("No job(s) with prefix or id {prefix:?} found"),
        [only] => Ok((*only).to_owned()),
        many => anyhow::bail!("Prefix matched multiple jobs\n\n{}", many.join("\n")),
    }
}

pub fn jobs_table(jobs: &[Value]) -> String {
    let mut rows = table(&["ID", "Type", "Priority", "Status", "Submit Date"]);
    for job in jobs {
        rows.add_row(vec![
            job["ID"].as_str().unwrap_or_default().to_owned(),
            job["Type"].as_str().unwrap_or_default().to_owned(),
            job["Priority"].to_string(),
            job["Status"].as_str().unwrap_or_default().to_owned(),
            format_time(job["SubmitTime"].as_i64().unwrap_or(0)),
        ]);
    }
    rows.to_string()
}

pub async fn run(args: &JobStatusArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::from_args(&args.api);
    let Some(prefix) = &args.job_id else {
        let jobs: Vec<Value> = client.get("/v1/jobs").await?;
        if jobs.is_empty() {
            println!("No running jobs");
        } else {
            println!("{}", jobs_table(&jobs));
        }
        return Ok(ExitCode::SUCCESS);
    };
    let job_id = resolve_job_id(&client, prefix).await?;
    print_job(&client, &job_id, args.verbose, args.short, args.all_allocs).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn print_job(
    client: &ApiClient,
    job_id: &str,
    verbose: bool,
    short: bool,
    all_allocs: bool,
) -> anyhow::Result<()> {
    let job: Value = client.get(&format!("/v1/job/{job_id}")).await?;
    let yes_no = |value: bool| value.to_string();
    let datacenters = job["Datacenters"]
        .as_array()
        .map(|dcs| {
            dcs.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let status = if job["Stop"] == true {
        "dead (stopped)".to_owned()
    } else {
        job["Status"].as_str().unwrap_or_default().to_owned()
    };
    println!(
        "{}",
        key_values(&[
            ("ID", job["ID"].as_str().unwrap_or_default().to_owned()),
            ("Name", job["Name"].as_str().unwrap_or_default().to_owned()),
            (
                "Submit Date",
                format_time(job["SubmitTime"].as_i64().unwrap_or(0))
            ),
            ("Type", job["Type"].as_str().unwrap_or_default().to_owned()),
            ("Priority", job["Priority"].to_string()),
            ("Datacenters", datacenters),
            (
                "Namespace",
                job["Namespace"].as_str().unwrap_or_default().to_owned()
            ),
            (
                "Node Pool",
                job["NodePool"].as_str().unwrap_or_default().to_owned()
            ),
            ("Status", status),
            ("Periodic", yes_no(job["Periodic"]["Enabled"] == true)),
            ("Parameterized", yes_no(!job["ParameterizedJob"].is_null())),
        ])
    );
    if short {
        return Ok(());
    }
    let summary: Value = client.get(&format!("/v1/job/{job_id}/summary")).await?;
    println!("\nSummary");
    let mut rows = table(&[
        "Task Group",
        "Queued",
        "Starting",
        "Running",
        "Failed",
        "Complete",
        "Lost",
        "Unknown",
    ]);
    if let Some(groups) = summary["Summary"].as_object() {
        for (group, counts) in groups {
            rows.add_row(vec![
                group.clone(),
                counts["Queued"].to_string(),
                counts["Starting"].to_string(),
                counts["Running"].to_string(),
                counts["Failed"].to_string(),
                counts["Complete"].to_string(),
                counts["Lost"].to_string(),
                counts["Unknown"].to_string(),
            ]);
        }
    }
    println!("{rows}");
    let deployment: Value = client.get(&format!("/v1/job/{job_id}/deployment")).await?;
    if !deployment.is_null() {
        println!("\nLatest Deployment");
        println!(
            "{}",
            key_values(&[
                (
                    "ID",
                    short_id(deployment["ID"].as_str().unwrap_or_default(), verbose).to_owned()
                ),
                (
                    "Status",
                    deployment["Status"].as_str().unwrap_or_default().to_owned()
                ),
                (
                    "Description",
                    deployment["StatusDescription"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                ),
            ])
        );
    }
    let path = format!(
        "/v1/job/{job_id}/allocations{}",
        if all_allocs { "?all=true" } else { "" }
    );
    let allocs: Vec<Value> = client.get(&path).await?;
    println!("\nAllocations");
    if allocs.is_empty() {
        println!("No allocations placed");
    } else {
        println!("{}", allocs_table(&allocs, verbose));
    }
    Ok(())
}

pub fn allocs_table(allocs: &[Value], verbose: bool) -> String {
    let mut rows = table(&[
        "ID",
        "Node ID",
        "Task Group",
        "Version",
        "Desired",
        "Status",
        "Created",
        "Modified",
    ]);
    for alloc in allocs {
        rows.add_row(vec![
            short_id(alloc["ID"].as_str().unwrap_or_default(), verbose).to_owned(),
            short_id(alloc["NodeID"].as_str().unwrap_or_default(), verbose).to_owned(),
            alloc["TaskGroup"].as_str().unwrap_or_default().to_owned(),
            alloc["JobVersion"].to_string(),
            alloc["DesiredStatus"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            alloc["ClientStatus"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            format_time(alloc["CreateTime"].as_i64().unwrap_or(0)),
            format_time(alloc["ModifyTime"].as_i64().unwrap_or(0)),
        ]);
    }
    rows.to_string()
}
