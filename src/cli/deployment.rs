//! `caravan deployment list|status|promote|fail|pause|resume`, `caravan job
//! revert|promote|deployments`.
//!
//! Nomad: `command/deployment_*.go`, `command/job_revert.go`, `command/job_promote.go`,
//! `command/job_deployments.go`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::block_on;
use super::format::{kv, short_id, table};
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{ApiArgs, ListArgs, OutputArgs, resolve};
use crate::api::client::{ApiClient, encode};
use crate::api::types::deployments::{
    DeploymentFailRequest, DeploymentPauseRequest, DeploymentPromoteRequest,
    DeploymentUpdateResponse,
};
use crate::api::types::jobs::{JobRegisterResponse, JobRevertRequest};
use crate::structs::Deployment;

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Lists deployments
    List(DeploymentListArgs),
    /// Shows a deployment's status per task group
    Status(DeploymentStatusArgs),
    /// Promotes a deployment's canaries
    Promote(DeploymentPromoteArgs),
    /// Marks a deployment failed (and reverts the job with auto_revert)
    Fail(DeploymentActionArgs),
    /// Pauses a deployment
    Pause(DeploymentIdArgs),
    /// Resumes a paused deployment
    Resume(DeploymentActionArgs),
}

#[derive(Debug, Args)]
pub struct DeploymentListArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub list: ListArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct DeploymentStatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The deployment ID (or prefix)
    pub deployment_id: String,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct DeploymentIdArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The deployment ID (or prefix)
    pub deployment_id: String,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct DeploymentActionArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The deployment ID (or prefix)
    pub deployment_id: String,
    /// Returns at once instead of monitoring the evaluation
    #[arg(long)]
    pub detach: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct DeploymentPromoteArgs {
    #[command(flatten)]
    pub action: DeploymentActionArgs,
    /// Promotes only this task group's canaries (repeatable)
    #[arg(long = "group")]
    pub groups: Vec<String>,
}

#[derive(Debug, Args)]
pub struct JobRevertArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job ID
    pub job_id: String,
    /// The version to revert to
    pub version: u64,
    /// Returns at once instead of monitoring the evaluation
    #[arg(long)]
    pub detach: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct JobDeploymentsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job ID (or prefix)
    pub job_id: String,
    /// Shows only the latest deployment
    #[arg(long)]
    pub latest: bool,
    /// Shows the deployments of earlier jobs of the same ID too
    #[arg(long)]
    pub all: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct JobPromoteArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job ID
    pub job_id: String,
    /// Promotes only this task group's canaries (repeatable)
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Returns at once instead of monitoring the evaluation
    #[arg(long)]
    pub detach: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
}

pub fn run(command: &DeploymentCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeploymentCommand::List(args) => list(args),
        DeploymentCommand::Status(args) => status(args),
        DeploymentCommand::Promote(args) => act(&args.action, Action::Promote(&args.groups)),
        DeploymentCommand::Fail(args) => act(args, Action::Fail),
        DeploymentCommand::Pause(args) => {
            let action = DeploymentActionArgs {
                api: args.api.clone(),
                deployment_id: args.deployment_id.clone(),
                detach: true,
                verbose: args.verbose,
            };
            act(&action, Action::Pause(true))
        }
        DeploymentCommand::Resume(args) => act(args, Action::Pause(false)),
    }
}

/// What to do to a deployment.
enum Action<'a> {
    Promote(&'a [String]),
    Fail,
    Pause(bool),
}

/// Resolves the deployment, acts on it, prints what happened and monitors the evaluation.
fn act(args: &DeploymentActionArgs, action: Action<'_>) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let id = resolve::deployment(&client, &args.deployment_id)
            .await?
            .id
            .to_string();
        let (message, response) = match action {
            Action::Promote(groups) => promote(&client, &id, groups).await?,
            Action::Fail => fail(&client, &id).await?,
            Action::Pause(paused) => pause(&client, &id, paused).await?,
        };
        outln!("{message}")?;
        finish(&client, &response.eval_id, args.detach, args.verbose).await
    })
}

async fn fail(client: &ApiClient, id: &str) -> anyhow::Result<(String, DeploymentUpdateResponse)> {
    let body = DeploymentFailRequest {
        deployment_id: id.to_owned(),
    };
    let response: DeploymentUpdateResponse = client
        .put(&format!("/v1/deployment/fail/{id}"), &body)
        .await?;
    let mut message = format!("Deployment {id:?} failed");
    if let Some(version) = response.reverted_job_version {
        message.push_str(&format!(". Job reverted to version {version}"));
    }
    Ok((message, response))
}

async fn finish(
    client: &ApiClient,
    eval_id: &str,
    detach: bool,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    if detach || eval_id.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    outln!()?;
    Ok(ExitCode::from(
        monitor::monitor_eval(client, eval_id, MonitorConfig { verbose }).await?,
    ))
}

async fn promote(
    client: &ApiClient,
    id: &str,
    groups: &[String],
) -> anyhow::Result<(String, DeploymentUpdateResponse)> {
    let body = DeploymentPromoteRequest {
        deployment_id: id.to_owned(),
        all: groups.is_empty(),
        groups: groups.to_vec(),
    };
    let response = client
        .put(&format!("/v1/deployment/promote/{id}"), &body)
        .await?;
    Ok((format!("Deployment {id:?} promoted"), response))
}

async fn pause(
    client: &ApiClient,
    id: &str,
    pause: bool,
) -> anyhow::Result<(String, DeploymentUpdateResponse)> {
    let body = DeploymentPauseRequest {
        deployment_id: id.to_owned(),
        pause,
    };
    let response = client
        .put(&format!("/v1/deployment/pause/{id}"), &body)
        .await?;
    let verb = if pause { "paused" } else { "resumed" };
    Ok((format!("Deployment {id:?} {verb}"), response))
}

fn list(args: &DeploymentListArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let (items, meta): (Vec<Deployment>, _) = client
            .get_with_meta(&args.list.path("/v1/deployments"))
            .await?;
        if args.output.printed(&items)? {
            return Ok(ExitCode::SUCCESS);
        }
        if items.is_empty() {
            outln!("No deployments found")?;
            return Ok(ExitCode::SUCCESS);
        }
        outln!("{}", deployments_table(&items, args.verbose))?;
        if let Some(hint) = ListArgs::next_page_hint(meta.next_token.as_deref()) {
            outln!("{hint}")?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Nomad's `deployment list` table, newest first.
pub fn deployments_table(items: &[Deployment], verbose: bool) -> String {
    let mut items: Vec<&Deployment> = items.iter().collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.create_index));
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            vec![
                short_id(&item.id, verbose),
                item.job_id.to_string(),
                item.job_version.to_string(),
                item.status.to_string(),
                item.status_description.clone(),
            ]
        })
        .collect();
    table(
        &["ID", "Job ID", "Job Version", "Status", "Description"],
        &rows,
    )
}

pub(super) fn status(args: &DeploymentStatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let stub = resolve::deployment(&client, &args.deployment_id).await?;
        let deployment: Deployment = client
            .get(&format!("/v1/deployment/{}", encode(&stub.id)))
            .await?;
        if args.output.printed(&deployment)? {
            return Ok(ExitCode::SUCCESS);
        }
        outln!("{}", deployment_block(&deployment, args.verbose))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Nomad's `deployment status` output: the deployment, then a row per task group.
pub fn deployment_block(deployment: &Deployment, verbose: bool) -> String {
    let mut text = kv(&[
        ("ID", short_id(&deployment.id, verbose)),
        ("Job ID", deployment.job_id.to_string()),
        ("Job Version", deployment.job_version.to_string()),
        ("Status", deployment.status.to_string()),
        ("Description", deployment.status_description.clone()),
    ]);
    let groups = &deployment.task_groups;
    if groups.is_empty() {
        return text;
    }
    let auto_revert = groups.values().any(|state| state.auto_revert);
    let canaries = groups.values().any(|state| state.desired_canaries > 0);
    let mut header = vec!["Task Group"];
    if auto_revert {
        header.push("Auto Revert");
    }
    if canaries {
        header.push("Promoted");
    }
    header.extend(["Desired"]);
    if canaries {
        header.push("Canaries");
    }
    header.extend(["Placed", "Healthy", "Unhealthy", "Progress Deadline"]);
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(name, state)| {
            let mut row = vec![name.clone()];
            if auto_revert {
                row.push(state.auto_revert.to_string());
            }
            if canaries {
                row.push(state.promoted.to_string());
            }
            row.push(state.desired_total.to_string());
            if canaries {
                row.push(state.desired_canaries.to_string());
            }
            row.push(state.placed_allocs.to_string());
            row.push(state.healthy_allocs.to_string());
            row.push(state.unhealthy_allocs.to_string());
            let by = state.require_progress_by.as_deref().unwrap_or_default();
            row.push(if by.is_empty() { "<none>" } else { by }.to_owned());
            row
        })
        .collect();
    text.push_str("\n\nDeployed\n");
    text.push_str(&table(&header, &rows));
    text
}

/// `caravan job deployments JOB`: the job's deployments, newest first, or with `-latest` its
/// latest one as `deployment status` shows it.
pub fn job_deployments(args: &JobDeploymentsArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let job = resolve::job(&client, &args.job_id).await?;
        let path = format!("/v1/job/{}", encode(&job.id));
        let failed = |err| anyhow::anyhow!("Error retrieving deployments: {err}");
        if args.latest {
            let latest: Option<Deployment> = client
                .get(&format!("{path}/deployment"))
                .await
                .map_err(failed)?;
            if args.output.printed(&latest)? {
                return Ok(ExitCode::SUCCESS);
            }
            match latest {
                Some(deployment) => outln!("{}", deployment_block(&deployment, args.verbose))?,
                None => outln!("No deployments found")?,
            }
            return Ok(ExitCode::SUCCESS);
        }
        let mut deployments: Vec<Deployment> = client
            .get(&format!("{path}/deployments"))
            .await
            .map_err(failed)?;
        // Without `-all`, only the deployments of this job, not of an earlier one of its ID.
        if !args.all {
            deployments.retain(|deployment| deployment.job_create_index == job.create_index);
        }
        deployments.sort_by_key(|deployment| std::cmp::Reverse(deployment.create_index));
        if args.output.printed(&deployments)? {
            return Ok(ExitCode::SUCCESS);
        }
        if deployments.is_empty() {
            outln!("No deployments found")?;
        } else {
            outln!("{}", deployments_table(&deployments, args.verbose))?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `caravan job revert JOB VERSION`.
pub fn job_revert(args: &JobRevertArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let job_id = resolve::job(&client, &args.job_id).await?.id;
        let body = JobRevertRequest {
            job_id: job_id.clone(),
            job_version: args.version,
            enforce_prior_version: None,
        };
        let response: JobRegisterResponse = client
            .put(&format!("/v1/job/{}/revert", encode(&job_id)), &body)
            .await?;
        finish(&client, &response.eval_id, args.detach, args.verbose).await
    })
}

/// `caravan job promote JOB`: promotes the job's latest deployment.
pub fn job_promote(args: &JobPromoteArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let job_id = resolve::job(&client, &args.job_id).await?.id;
        let deployment: Option<Deployment> = client
            .get(&format!("/v1/job/{}/deployment", encode(&job_id)))
            .await?;
        let Some(id) = deployment
            .map(|deployment| deployment.id.to_string())
            .filter(|id| !id.is_empty())
        else {
            anyhow::bail!("Job {job_id:?} has no deployment to promote");
        };
        let (message, response) = promote(&client, &id, &args.groups).await?;
        outln!("{message}")?;
        finish(&client, &response.eval_id, args.detach, args.verbose).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_canary_and_revert_columns_only_when_used() {
        let deployment: Deployment = serde_json::from_str(
            r#"{
                "ID": "0b23b149-aaaa-bbbb-cccc-000000000000",
                "JobID": "web", "JobVersion": 2, "Status": "running",
                "StatusDescription": "Deployment is running but requires manual promotion",
                "TaskGroups": { "g": {
                    "AutoRevert": true, "Promoted": false, "DesiredTotal": 3,
                    "DesiredCanaries": 1, "PlacedAllocs": 1, "HealthyAllocs": 1,
                    "UnhealthyAllocs": 0, "RequireProgressBy": "2026-12-03T23:50:23Z"
                }}
            }"#,
        )
        .expect("a deployment");
        let text = deployment_block(&deployment, false);
        assert!(text.starts_with("ID          = 0b23b149\n"), "{text}");
        assert!(text.contains("Deployed\nTask Group  Auto Revert  Promoted  Desired  Canaries  Placed  Healthy  Unhealthy  Progress Deadline\ng           true         false     3        1         1       1        0          2026-12-03T23:50:23Z"), "{text}");
        let plain: Deployment =
            serde_json::from_str(r#"{ "ID": "d", "TaskGroups": { "g": { "DesiredTotal": 1 } } }"#)
                .expect("a deployment");
        let text = deployment_block(&plain, false);
        assert!(text.contains("Task Group  Desired  Placed"), "{text}");
    }
}
