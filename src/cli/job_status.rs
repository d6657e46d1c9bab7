//! `caravan job status|allocs|history|inspect|stop`: reading and stopping registered jobs.
//!
//! Nomad: `command/job_status.go`, `job_allocs.go`, `job_history.go`, `job_inspect.go`,
//! `job_stop.go`.

use std::process::ExitCode;

use super::block_on;
use super::format::{format_nanos, job_status_text, jobs_table, kv, short_id, table, time_ago};
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{JobHistoryArgs, JobIdArgs, JobStatusArgs, JobStopArgs, job_file, resolve};
use crate::api::client::{ApiClient, encode};
use crate::api::types::allocs::AllocListStub;
use crate::api::types::jobs::{JobDeregisterResponse, JobListStub, JobVersionsResponse};
use crate::structs::{
    AllocClientStatus, Deployment, EvalStatus, Evaluation, Job, JobSummary, JobType,
};

pub fn status(args: &JobStatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        match &args.job_id {
            None => list_jobs(&client, args).await,
            Some(prefix) => {
                let stub = resolve::job(&client, prefix).await?;
                if args.output.requested() {
                    let json = job_status_json(&client, &stub, args.all_allocs).await?;
                    args.output.printed(&[json])?;
                    return Ok(ExitCode::SUCCESS);
                }
                show_job(&client, &stub.id, args).await
            }
        }
    })
}

/// The jobs table, or `No running jobs`; with `-json` or `-t`, each job's [`JobStatusJson`].
async fn list_jobs(client: &ApiClient, args: &JobStatusArgs) -> anyhow::Result<ExitCode> {
    let jobs: Vec<JobListStub> = client
        .get("/v1/jobs")
        .await
        .map_err(|err| anyhow::anyhow!("Error querying jobs: {err}"))?;
    if jobs.is_empty() {
        outln!("No running jobs")?;
    } else if args.output.requested() {
        let mut statuses = Vec::with_capacity(jobs.len());
        for stub in &jobs {
            statuses.push(job_status_json(client, stub, args.all_allocs).await?);
        }
        args.output.printed(&statuses)?;
    } else {
        outln!("{}", jobs_table(&jobs))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One job as `job status -json` prints it: what the command read about it (Nomad:
/// `command/job_status.go` `JobJson`).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct JobStatusJson {
    summary: JobSummary,
    allocations: Vec<AllocListStub>,
    latest_deployment: Option<Deployment>,
    evaluations: Vec<Evaluation>,
}

/// Reads [`JobStatusJson`] for `stub`, in the job's own namespace (a list may span several).
async fn job_status_json(
    client: &ApiClient,
    stub: &JobListStub,
    all_allocs: bool,
) -> anyhow::Result<JobStatusJson> {
    let client = client.in_namespace(&stub.namespace);
    let path = format!("/v1/job/{}", encode(&stub.id));
    let all = if all_allocs { "?all=true" } else { "" };
    Ok(JobStatusJson {
        summary: client
            .get(&format!("{path}/summary"))
            .await
            .map_err(|err| anyhow::anyhow!("Error querying job summary: {err}"))?,
        allocations: client
            .get(&format!("{path}/allocations{all}"))
            .await
            .map_err(|err| anyhow::anyhow!("Error querying job allocations: {err}"))?,
        latest_deployment: client
            .get(&format!("{path}/deployment"))
            .await
            .map_err(|err| anyhow::anyhow!("Error querying latest job deployment: {err}"))?,
        evaluations: client
            .get(&format!("{path}/evaluations"))
            .await
            .map_err(|err| anyhow::anyhow!("Error querying job evaluations: {err}"))?,
    })
}

async fn show_job(
    client: &ApiClient,
    job_id: &str,
    args: &JobStatusArgs,
) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/job/{}", encode(job_id));
    let job: Job = client
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
    let summary: Option<JobSummary> = client.get(&format!("{path}/summary")).await.ok();
    if let Some(kind) = launch_kind {
        // Periodic and parameterized parents have children instead of allocations.
        return show_children(client, &job, summary.as_ref(), kind).await;
    }
    outln!()?;
    outln!("Summary")?;
    outln!("{}", summary_table(summary.as_ref()))?;
    let evals: Vec<Evaluation> = client
        .get(&format!("{path}/evaluations"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying job evaluations: {err}"))?;
    placement_failures(&evals)?;
    if job.job_type == JobType::Service
        && let Ok(Some(deployment)) = client
            .get::<Option<Deployment>>(&format!("{path}/deployment"))
            .await
    {
        outln!()?;
        outln!("Latest Deployment")?;
        outln!(
            "{}",
            monitor::deployment_block(&deployment, args.verbose, false)
        )?;
    }
    let mut allocs: Vec<AllocListStub> = client
        .get(&format!("{path}/allocations"))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying job allocations: {err}"))?;
    if !args.all_allocs {
        let latest: Vec<AllocListStub> = allocs
            .iter()
            .filter(|alloc| {
                alloc.job_version == job.version
                    || alloc.client_status == AllocClientStatus::Running
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

/// How many groups' failures `job status` explains (Nomad's `maxFailedTGs`).
const MAX_FAILED_GROUPS: usize = 5;

/// Nomad's "Placement Failure" section: while an evaluation is blocked, why the latest evaluation
/// with failures could not place its groups.
fn placement_failures(evals: &[Evaluation]) -> anyhow::Result<()> {
    if !evals.iter().any(|eval| eval.status == EvalStatus::Blocked) {
        return Ok(());
    }
    let Some(failed) = evals
        .iter()
        .filter(|eval| !eval.failed_tg_allocs.is_empty())
        .max_by_key(|eval| eval.create_index)
    else {
        return Ok(());
    };
    outln!()?;
    outln!("Placement Failure")?;
    let shown = failed.failed_tg_allocs.len().min(MAX_FAILED_GROUPS);
    for (position, (group, metric)) in failed.failed_tg_allocs.iter().take(shown).enumerate() {
        outln!("Task Group {group:?}:")?;
        outln!("{}", monitor::alloc_metric_lines(metric).join("\n"))?;
        if position + 1 != failed.failed_tg_allocs.len() {
            outln!()?;
        }
    }
    if failed.failed_tg_allocs.len() > MAX_FAILED_GROUPS {
        outln!(
            "Placement failures truncated. To see remainder run:\ncaravan eval status {}",
            failed.id
        )?;
    }
    Ok(())
}

/// How a parent job launches its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LaunchKind {
    Periodic,
    Parameterized,
}

/// Whether `job` is a periodic or parameterized parent (Nomad's `IsPeriodic`,
/// `IsParameterized`: a dispatched child is neither).
fn launch_kind(job: &Job) -> Option<LaunchKind> {
    let parameterized = job.parameterized_job.is_some() && !job.dispatched;
    let periodic = job
        .periodic
        .as_ref()
        .is_some_and(|periodic| periodic.enabled);
    if parameterized {
        Some(LaunchKind::Parameterized)
    } else if periodic {
        Some(LaunchKind::Periodic)
    } else {
        None
    }
}

/// `2026-12-04T06:00:00Z (1m30s from now)` in the job's time zone, or `none (job stopped)`.
fn next_periodic_launch(job: &Job) -> Option<String> {
    if job.stop {
        return Some("none (job stopped)".to_owned());
    }
    let periodic = job.periodic.as_ref()?;
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
    job: &Job,
    summary: Option<&JobSummary>,
    kind: LaunchKind,
) -> anyhow::Result<ExitCode> {
    let children = summary
        .and_then(|summary| summary.children.clone())
        .unwrap_or_default();
    outln!()?;
    outln!("Children Job Summary")?;
    outln!(
        "{}",
        table(
            &["Pending", "Running", "Dead"],
            &[vec![
                children.pending.to_string(),
                children.running.to_string(),
                children.dead.to_string(),
            ]],
        )
    )?;
    let job_id = job.id.as_str();
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
    let listed: Vec<JobListStub> = client
        .get(&format!("/v1/jobs?prefix={}", encode(&prefix)))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying job: {err}"))?;
    let rows: Vec<Vec<String>> = listed
        .iter()
        .filter(|child| child.parent_id == job_id)
        .map(|child| vec![child.id.clone(), child.status.to_string()])
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
fn job_header_pairs(job: &Job) -> Vec<(&'static str, String)> {
    let periodic = job
        .periodic
        .as_ref()
        .is_some_and(|periodic| periodic.enabled);
    let node_pool = match job.node_pool.as_str() {
        "" => "default",
        pool => pool,
    };
    vec![
        ("ID", job.id.to_string()),
        ("Name", job.name.clone()),
        ("Submit Date", format_nanos(job.submit_time)),
        ("Type", job.job_type.to_string()),
        ("Priority", job.priority.to_string()),
        ("Datacenters", job.datacenters.join(",")),
        ("Namespace", job.namespace.clone()),
        ("Node Pool", node_pool.to_owned()),
        ("Status", job_status_text(job.status, job.stop)),
        ("Periodic", periodic.to_string()),
        ("Parameterized", job.parameterized_job.is_some().to_string()),
    ]
}

fn summary_table(summary: Option<&JobSummary>) -> String {
    let rows: Vec<Vec<String>> = summary
        .into_iter()
        .flat_map(|summary| &summary.summary)
        .map(|(group, counts)| {
            let mut row = vec![group.clone()];
            for count in [
                counts.queued,
                counts.starting,
                counts.running,
                counts.failed,
                counts.complete,
                counts.lost,
                counts.unknown,
            ] {
                row.push(count.to_string());
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
pub fn allocs_table(allocs: &[AllocListStub], verbose: bool) -> String {
    let mut allocs: Vec<&AllocListStub> = allocs.iter().collect();
    allocs.sort_by_key(|alloc| std::cmp::Reverse(alloc.create_index));
    let rows: Vec<Vec<String>> = allocs
        .iter()
        .map(|alloc| {
            let time = if verbose { format_nanos } else { time_ago };
            vec![
                short_id(&alloc.id, verbose),
                short_id(&alloc.node_id, verbose),
                alloc.task_group.clone(),
                alloc.job_version.to_string(),
                alloc.desired_status.to_string(),
                alloc.client_status.to_string(),
                time(alloc.create_time),
                time(alloc.modify_time.max(alloc.create_time)),
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
    let client = args.api.client()?;
    block_on(async {
        let stub = resolve::job(&client, &args.job_id).await?;
        let allocs: Vec<AllocListStub> = client
            .get(&format!("/v1/job/{}/allocations", encode(&stub.id)))
            .await
            .map_err(|err| anyhow::anyhow!("Error retrieving allocations: {err}"))?;
        if args.output.printed(&allocs)? {
            return Ok(ExitCode::SUCCESS);
        }
        if allocs.is_empty() {
            outln!("No allocations placed")?;
        } else {
            outln!("{}", allocs_table(&allocs, args.verbose))?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn history(args: &JobHistoryArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        if args.diff && args.output.requested() {
            anyhow::bail!("-json and -t are exclusive with -p");
        }
        let stub = resolve::job(&client, &args.job_id).await?;
        let diffs = if args.diff { "?diffs=true" } else { "" };
        let response: JobVersionsResponse = client
            .get(&format!("/v1/job/{}/versions{diffs}", encode(&stub.id)))
            .await
            .map_err(|err| anyhow::anyhow!("Error retrieving job versions: {err}"))?;
        // Nomad prints the versions alone, newest first as the API answers them.
        if args.output.printed(&response.versions)? {
            return Ok(ExitCode::SUCCESS);
        }
        let mut versions = response.versions;
        versions.sort_by_key(|job| std::cmp::Reverse(job.version));
        // Nomad: `diffs[i]` is version i's change from version i + 1 (newest first).
        let diffs = response.diffs.unwrap_or_default();
        let blocks: Vec<String> = versions
            .iter()
            .enumerate()
            .map(|(index, job)| {
                let mut rows = vec![
                    ("Version", job.version.to_string()),
                    ("Stable", job.stable.to_string()),
                    ("Submit Date", format_nanos(job.submit_time)),
                ];
                if let Some(diff) = diffs.get(index).filter(|_| args.diff) {
                    let text = super::job_diff::format_job_diff(diff, false);
                    rows.push(("Diff", format!("\n{}", text.trim())));
                }
                kv(&rows)
            })
            .collect();
        outln!("{}", blocks.join("\n\n"))?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn inspect(args: &JobIdArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let stub = resolve::job(&client, &args.job_id).await?;
        let job: Job = client
            .get(&format!("/v1/job/{}", encode(&stub.id)))
            .await
            .map_err(|err| anyhow::anyhow!("Error inspecting job: {err}"))?;
        if !args.output.printed(&job)? {
            outln!("{}", job_file::api_json(&job)?)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn stop(args: &JobStopArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let stub = resolve::job(&client, &args.job_id).await?;
        let purge = if args.purge { "?purge=true" } else { "" };
        let response: JobDeregisterResponse = client
            .delete(&format!("/v1/job/{}{purge}", encode(&stub.id)))
            .await
            .map_err(|err| anyhow::anyhow!("Error deregistering job: {err}"))?;
        let eval_id = response.eval_id;
        if args.detach || eval_id.is_empty() {
            outln!("{eval_id}")?;
            return Ok(ExitCode::SUCCESS);
        }
        let code = monitor::monitor_eval(&client, &eval_id, MonitorConfig::default()).await?;
        Ok(ExitCode::from(code))
    })
}
