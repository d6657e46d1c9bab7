//! `caravan job status|allocs|history|inspect|stop`: reading and stopping registered jobs.
//!
//! Nomad: `command/job_status.go`, `job_allocs.go`, `job_history.go`, `job_inspect.go`,
//! `job_stop.go`.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::api_client::{ApiClient, ObjectKind, block_on, bool_of, encode, i64_of, str_of};
use super::format::{format_nanos, job_status_text, jobs_table, kv, short_id, table, time_ago};
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{JobIdArgs, JobStatusArgs, JobStopArgs};

pub fn status(args: &JobStatusArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        match &args.job_id {
            None => list_jobs(&client).await,
            Some(prefix) => {
                let stub = client.resolve(ObjectKind::Job, prefix).await?;
                show_job(&client, str_of(&stub, "ID"), args).await
            }
        }
    })
}

/// The jobs table, or `No running jobs`.
pub async fn list_jobs(client: &ApiClient) -> anyhow::Result<ExitCode> {
    let jobs = client
        .get("/v1/jobs")
        .await
        .map_err(|err| anyhow::anyhow!("Error querying jobs: {err}"))?;
    let jobs = jobs.as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        outln!("No running jobs")?;
    } else {
        outln!("{}", jobs_table(&jobs))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn show_job(
    client: &ApiClient,
    job_id: &str,
    args: &JobStatusArgs,
) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/job/{}", encode(job_id));
    let job = client
        .get(&path)
        .await
        .map_err(|err| anyhow::anyhow!("Error querying job: {err}"))?;
    let launch_kind = launch_kind(&job);
    let mut header = job_header_pairs(&job);
    if launch_kind == Some(LaunchKind::Periodic)
        && let Some(next) = next_periodic_launch(&job)
    {
        header.push(("Next Periodic Launch", next));
    }
    outln!("{}", kv(&header))?;
    if args.short {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(kind) = launch_kind {
        // Periodic and parameterized parents have children instead of allocations.
        return show_children(client, &job, &path, kind).await;
    }
    let summary = client
        .get(&format!("{path}/summary"))
        .await
        .unwrap_or(Value::Null);
    outln!()?;
    outln!("Summary")?;
    outln!("{}", summary_table(&summary))?;
    if str_of(&job, "Type") == "service"
        && let Ok(deployment) = client.get(&format!("{path}/deployment")).await
        && !deployment.is_null()
    {
        outln!()?;
        outln!("Latest Deployment")?;
        outln!(
            "{}",
            monitor::deployment_block(&deployment, args.verbose, false)
        )?;
    }
    let allocs = client
        .get(&format!("{path}/allocations"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying job allocations: {err}"))?;
    let mut allocs = allocs.as_array().cloned().unwrap_or_default();
    if !args.all_allocs {
        let version = i64_of(&job, "Version");
        let latest: Vec<Value> = allocs
            .iter()
            .filter(|alloc| {
                i64_of(alloc, "JobVersion") == version || str_of(alloc, "ClientStatus") == "running"
            })
            .cloned()
            .collect();
        if !latest.is_empty() {
            allocs = latest;
        }
    }
    outln!()?;
    outln!("Allocations")?;
    if allocs.is_empty() {
        outln!("No allocations placed")?;
    } else {
        outln!("{}", allocs_table(&allocs, args.verbose))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// How a parent job launches its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LaunchKind {
    Periodic,
    Parameterized,
}

/// Whether `job` is a periodic or parameterized parent (Nomad's `IsPeriodic`,
/// `IsParameterized`: a dispatched child is neither).
fn launch_kind(job: &Value) -> Option<LaunchKind> {
    let parameterized = job
        .get("ParameterizedJob")
        .is_some_and(|value| value.is_object())
        && !bool_of(job, "Dispatched");
    let periodic = job
        .get("Periodic")
        .is_some_and(|periodic| bool_of(periodic, "Enabled"));
    if parameterized {
        Some(LaunchKind::Parameterized)
    } else if periodic {
        Some(LaunchKind::Periodic)
    } else {
        None
    }
}

/// `2026-12-04T06:00:00Z (1m30s from now)` in the job's time zone, or `none (job stopped)`.
fn next_periodic_launch(job: &Value) -> Option<String> {
    if bool_of(job, "Stop") {
        return Some("none (job stopped)".to_owned());
    }
    let periodic: crate::structs::PeriodicConfig =
        serde_json::from_value(job.get("Periodic")?.clone()).ok()?;
    let zone = periodic.zone().ok()?;
    let now = chrono::Utc::now();
    let next = periodic.next_launch(now)?;
    let seconds = u64::try_from((next - now).num_seconds()).unwrap_or(0);
    Some(format!(
        "{} ({} from now)",
        next.with_timezone(&zone)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        super::format::two_units(seconds)
    ))
}

/// The children summary and list of a periodic or parameterized job (Nomad:
/// `outputPeriodicInfo`, `outputParameterizedInfo`).
async fn show_children(
    client: &ApiClient,
    job: &Value,
    path: &str,
    kind: LaunchKind,
) -> anyhow::Result<ExitCode> {
    let summary = client
        .get(&format!("{path}/summary"))
        .await
        .unwrap_or(Value::Null);
    let children = summary.get("Children").cloned().unwrap_or(Value::Null);
    outln!()?;
    outln!("Children Job Summary")?;
    outln!(
        "{}",
        table(
            &["Pending", "Running", "Dead"],
            &[vec![
                i64_of(&children, "Pending").to_string(),
                i64_of(&children, "Running").to_string(),
                i64_of(&children, "Dead").to_string(),
            ]],
        )
    )?;
    let job_id = str_of(job, "ID");
    let (suffix, title, none) = match kind {
        LaunchKind::Periodic => (
            "/periodic-",
            "Previously Launched Jobs",
            "No instances of periodic job found",
        ),
        LaunchKind::Parameterized => (
            "/dispatch-",
            "Dispatched Jobs",
            "No dispatched instances of parameterized job found",
        ),
    };
    let prefix = format!("{job_id}{suffix}");
    let listed = client
        .get(&format!("/v1/jobs?prefix={}", encode(&prefix)))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying job: {err}"))?;
    let rows: Vec<Vec<String>> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter(|child| str_of(child, "ParentID") == job_id)
        .map(|child| {
            vec![
                str_of(child, "ID").to_owned(),
                str_of(child, "Status").to_owned(),
            ]
        })
        .collect();
    outln!()?;
    if rows.is_empty() {
        outln!("{none}")?;
    } else {
        outln!("{title}")?;
        outln!("{}", table(&["ID", "Status"], &rows))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The `ID = ...` lines at the top of `job status`.
fn job_header_pairs(job: &Value) -> Vec<(&'static str, String)> {
    let datacenters = job
        .get("Datacenters")
        .and_then(Value::as_array)
        .map(|dcs| {
            dcs.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let periodic = job.get("Periodic").is_some_and(|periodic| {
        periodic.as_bool().unwrap_or(false) || bool_of(periodic, "Enabled")
    });
    let parameterized = job
        .get("ParameterizedJob")
        .is_some_and(|value| !value.is_null() && value.as_bool() != Some(false));
    let node_pool = match str_of(job, "NodePool") {
        "" => "default",
        pool => pool,
    };
    vec![
        ("ID", str_of(job, "ID").to_owned()),
        ("Name", str_of(job, "Name").to_owned()),
        ("Submit Date", format_nanos(i64_of(job, "SubmitTime"))),
        ("Type", str_of(job, "Type").to_owned()),
        ("Priority", i64_of(job, "Priority").to_string()),
        ("Datacenters", datacenters),
        ("Namespace", str_of(job, "Namespace").to_owned()),
        ("Node Pool", node_pool.to_owned()),
        ("Status", job_status_text(job)),
        ("Periodic", periodic.to_string()),
        ("Parameterized", parameterized.to_string()),
    ]
}

fn summary_table(summary: &Value) -> String {
    let rows: Vec<Vec<String>> = summary
        .get("Summary")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(group, counts)| {
            let mut row = vec![group.clone()];
            for field in [
                "Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown",
            ] {
                row.push(i64_of(counts, field).to_string());
            }
            row
        })
        .collect();
    table(
        &[
            "Task Group",
            "Queued",
            "Starting",
            "Running",
            "Failed",
            "Complete",
            "Lost",
            "Unknown",
        ],
        &rows,
    )
}

/// `ID  Node ID  Task Group  Version  Desired  Status  Created  Modified`, newest first.
pub fn allocs_table(allocs: &[Value], verbose: bool) -> String {
    let mut allocs = allocs.to_vec();
    allocs.sort_by_key(|alloc| std::cmp::Reverse(i64_of(alloc, "CreateIndex")));
    let rows: Vec<Vec<String>> = allocs
        .iter()
        .map(|alloc| {
            let (created, modified) = if verbose {
                (
                    format_nanos(i64_of(alloc, "CreateTime")),
                    format_nanos(i64_of(alloc, "ModifyTime").max(i64_of(alloc, "CreateTime"))),
                )
            } else {
                (
                    time_ago(i64_of(alloc, "CreateTime")),
                    time_ago(i64_of(alloc, "ModifyTime").max(i64_of(alloc, "CreateTime"))),
                )
            };
            vec![
                short_id(str_of(alloc, "ID"), verbose),
                short_id(str_of(alloc, "NodeID"), verbose),
                str_of(alloc, "TaskGroup").to_owned(),
                i64_of(alloc, "JobVersion").to_string(),
                str_of(alloc, "DesiredStatus").to_owned(),
                str_of(alloc, "ClientStatus").to_owned(),
                created,
                modified,
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "Node ID",
            "Task Group",
            "Version",
            "Desired",
            "Status",
            "Created",
            "Modified",
        ],
        &rows,
    )
}

pub fn allocs(args: &JobIdArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let stub = client.resolve(ObjectKind::Job, &args.job_id).await?;
        let allocs = client
            .get(&format!(
                "/v1/job/{}/allocations",
                encode(str_of(&stub, "ID"))
            ))
            .await
            .map_err(|err| anyhow::anyhow!("Error retrieving allocations: {err}"))?;
        let allocs = allocs.as_array().cloned().unwrap_or_default();
        if allocs.is_empty() {
            outln!("No allocations placed")?;
        } else {
            outln!("{}", allocs_table(&allocs, args.verbose))?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn history(args: &JobIdArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let stub = client.resolve(ObjectKind::Job, &args.job_id).await?;
        let versions = client
            .get(&format!("/v1/job/{}/versions", encode(str_of(&stub, "ID"))))
            .await
            .map_err(|err| anyhow::anyhow!("Error retrieving job versions: {err}"))?;
        let mut versions = versions
            .get("Versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        versions.sort_by_key(|job| std::cmp::Reverse(i64_of(job, "Version")));
        let blocks: Vec<String> = versions
            .iter()
            .map(|job| {
                kv(&[
                    ("Version", i64_of(job, "Version").to_string()),
                    ("Stable", bool_of(job, "Stable").to_string()),
                    ("Submit Date", format_nanos(i64_of(job, "SubmitTime"))),
                ])
            })
            .collect();
        outln!("{}", blocks.join("\n\n"))?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn inspect(args: &JobIdArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let stub = client.resolve(ObjectKind::Job, &args.job_id).await?;
        let job = client
            .get(&format!("/v1/job/{}", encode(str_of(&stub, "ID"))))
            .await
            .map_err(|err| anyhow::anyhow!("Error inspecting job: {err}"))?;
        outln!("{}", serde_json::to_string_pretty(&json!({ "Job": job }))?)?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn stop(args: &JobStopArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let stub = client.resolve(ObjectKind::Job, &args.job_id).await?;
        let job_id = str_of(&stub, "ID").to_owned();
        let purge = if args.purge { "?purge=true" } else { "" };
        let response = client
            .delete(&format!("/v1/job/{}{purge}", encode(&job_id)))
            .await
            .map_err(|err| anyhow::anyhow!("Error deregistering job: {err}"))?;
        let eval_id = str_of(&response, "EvalID").to_owned();
        if args.detach || eval_id.is_empty() {
            outln!("{eval_id}")?;
            return Ok(ExitCode::SUCCESS);
        }
        let code = monitor::monitor_eval(&client, &eval_id, MonitorConfig::default()).await?;
        Ok(ExitCode::from(code))
    })
}
