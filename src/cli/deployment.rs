//! `caravan deployment list|status|promote|fail|pause|resume`, `caravan job revert|promote`.
//!
//! Nomad: `command/deployment_*.go`, `command/job_revert.go`, `command/job_promote.go`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::ApiArgs;
use super::api_client::{ApiClient, ObjectKind, block_on, bool_of, encode, i64_of, str_of};
use super::format::{kv, short_id, table};
use super::monitor::{self, MonitorConfig};
use super::output::outln;

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Lists deployments
    List(DeploymentListArgs),
    /// Shows a deployment's status per task group
    Status(DeploymentIdArgs),
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
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let stub = client
            .resolve(ObjectKind::Deployment, &args.deployment_id)
            .await?;
        let id = str_of(&stub, "ID").to_owned();
        let (message, response) = match action {
            Action::Promote(groups) => promote(&client, &id, groups).await?,
            Action::Fail => fail(&client, &id).await?,
            Action::Pause(paused) => pause(&client, &id, paused).await?,
        };
        outln!("{message}")?;
        finish(&client, &response, args.detach, args.verbose).await
    })
}

async fn fail(client: &ApiClient, id: &str) -> anyhow::Result<(String, Value)> {
    let response = client
        .put(&format!("/v1/deployment/fail/{id}"), &json!({}))
        .await?;
    let mut message = format!("Deployment {id:?} failed");
    if let Some(version) = response.get("RevertedJobVersion").and_then(Value::as_u64) {
        message.push_str(&format!(". Job reverted to version {version}"));
    }
    Ok((message, response))
}

async fn finish(
    client: &ApiClient,
    response: &Value,
    detach: bool,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let eval_id = str_of(response, "EvalID");
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
) -> anyhow::Result<(String, Value)> {
    let body = json!({ "DeploymentID": id, "All": groups.is_empty(), "Groups": groups });
    let response = client
        .put(&format!("/v1/deployment/promote/{id}"), &body)
        .await?;
    Ok((format!("Deployment {id:?} promoted"), response))
}

async fn pause(client: &ApiClient, id: &str, pause: bool) -> anyhow::Result<(String, Value)> {
    let body = json!({ "DeploymentID": id, "Pause": pause });
    let response = client
        .put(&format!("/v1/deployment/pause/{id}"), &body)
        .await?;
    let verb = if pause { "paused" } else { "resumed" };
    Ok((format!("Deployment {id:?} {verb}"), response))
}

fn list(args: &DeploymentListArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let deployments = client.get("/v1/deployments").await?;
        let items = deployments.as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            outln!("No deployments found")?;
            return Ok(ExitCode::SUCCESS);
        }
        outln!("{}", deployments_table(&items, args.verbose))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Nomad's `deployment list` table, newest first.
pub fn deployments_table(items: &[Value], verbose: bool) -> String {
    let mut items = items.to_vec();
    items.sort_by_key(|item| std::cmp::Reverse(i64_of(item, "CreateIndex")));
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            vec![
                short_id(str_of(item, "ID"), verbose),
                str_of(item, "JobID").to_owned(),
                i64_of(item, "JobVersion").to_string(),
                str_of(item, "Status").to_owned(),
                str_of(item, "StatusDescription").to_owned(),
            ]
        })
        .collect();
    table(
        &["ID", "Job ID", "Job Version", "Status", "Description"],
        &rows,
    )
}

fn status(args: &DeploymentIdArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let stub = client
            .resolve(ObjectKind::Deployment, &args.deployment_id)
            .await?;
        let id = str_of(&stub, "ID");
        let deployment = client
            .get(&format!("/v1/deployment/{}", encode(id)))
            .await?;
        outln!("{}", deployment_block(&deployment, args.verbose))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Nomad's `deployment status` output: the deployment, then a row per task group.
pub fn deployment_block(deployment: &Value, verbose: bool) -> String {
    let mut text = kv(&[
        ("ID", short_id(str_of(deployment, "ID"), verbose)),
        ("Job ID", str_of(deployment, "JobID").to_owned()),
        ("Job Version", i64_of(deployment, "JobVersion").to_string()),
        ("Status", str_of(deployment, "Status").to_owned()),
        (
            "Description",
            str_of(deployment, "StatusDescription").to_owned(),
        ),
    ]);
    let groups = deployment
        .get("TaskGroups")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if groups.is_empty() {
        return text;
    }
    let auto_revert = groups.values().any(|state| bool_of(state, "AutoRevert"));
    let canaries = groups
        .values()
        .any(|state| i64_of(state, "DesiredCanaries") > 0);
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
                row.push(bool_of(state, "AutoRevert").to_string());
            }
            if canaries {
                row.push(bool_of(state, "Promoted").to_string());
            }
            row.push(i64_of(state, "DesiredTotal").to_string());
            if canaries {
                row.push(i64_of(state, "DesiredCanaries").to_string());
            }
            row.push(i64_of(state, "PlacedAllocs").to_string());
            row.push(i64_of(state, "HealthyAllocs").to_string());
            row.push(i64_of(state, "UnhealthyAllocs").to_string());
            let by = str_of(state, "RequireProgressBy");
            row.push(if by.is_empty() { "<none>" } else { by }.to_owned());
            row
        })
        .collect();
    text.push_str("\n\nDeployed\n");
    text.push_str(&table(&header, &rows));
    text
}

/// `caravan job revert JOB VERSION`.
pub fn job_revert(args: &JobRevertArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let job = client.resolve(ObjectKind::Job, &args.job_id).await?;
        let job_id = str_of(&job, "ID").to_owned();
        let body = json!({ "JobID": job_id, "JobVersion": args.version });
        let response = client
            .put(&format!("/v1/job/{}/revert", encode(&job_id)), &body)
            .await?;
        finish(&client, &response, args.detach, args.verbose).await
    })
}

/// `caravan job promote JOB`: promotes the job's latest deployment.
pub fn job_promote(args: &JobPromoteArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let job = client.resolve(ObjectKind::Job, &args.job_id).await?;
        let job_id = str_of(&job, "ID").to_owned();
        let deployment = client
            .get(&format!("/v1/job/{}/deployment", encode(&job_id)))
            .await?;
        let id = str_of(&deployment, "ID").to_owned();
        if id.is_empty() {
            anyhow::bail!("Job {job_id:?} has no deployment to promote");
        }
        let (message, response) = promote(&client, &id, &args.groups).await?;
        outln!("{message}")?;
        finish(&client, &response, args.detach, args.verbose).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_canary_and_revert_columns_only_when_used() {
        let deployment = json!({
            "ID": "0b23b149-aaaa-bbbb-cccc-000000000000",
            "JobID": "web", "JobVersion": 2, "Status": "running",
            "StatusDescription": "Deployment is running but requires manual promotion",
            "TaskGroups": { "g": {
                "AutoRevert": true, "Promoted": false, "DesiredTotal": 3, "DesiredCanaries": 1,
                "PlacedAllocs": 1, "HealthyAllocs": 1, "UnhealthyAllocs": 0,
                "RequireProgressBy": "2026-12-03T23:50:23Z",
            }},
        });
        let text = deployment_block(&deployment, false);
        assert!(text.starts_with("ID          = 0b23b149\n"), "{text}");
        assert!(text.contains("Deployed\nTask Group  Auto Revert  Promoted  Desired  Canaries  Placed  Healthy  Unhealthy  Progress Deadline\ng           true         false     3        1         1       1        0          2026-12-03T23:50:23Z"), "{text}");
        let plain = json!({ "ID": "d", "TaskGroups": { "g": { "DesiredTotal": 1 } } });
        let text = deployment_block(&plain, false);
        assert!(text.contains("Task Group  Desired  Placed"), "{text}");
    }
}
