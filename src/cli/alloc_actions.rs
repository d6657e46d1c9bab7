//! `caravan alloc stop|restart|signal`: acting on one allocation.
//!
//! Nomad: `command/alloc_stop.go`, `alloc_restart.go`, `alloc_signal.go`.

use std::process::ExitCode;

use serde_json::json;

use super::alloc_status::{read_alloc, task_names};
use super::api_client::{ApiClient, block_on, str_of};
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{AllocIdArgs, AllocSignalArgs, AllocTaskArgs};

pub fn stop(args: &AllocIdArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        let response = client
            .post(
                &format!("/v1/allocation/{}/stop", str_of(&alloc, "ID")),
                &json!({}),
            )
            .await
            .map_err(|err| anyhow::anyhow!("Error stopping allocation: {err}"))?;
        let eval_id = str_of(&response, "EvalID").to_owned();
        if args.detach || eval_id.is_empty() {
            outln!("{eval_id}")?;
            return Ok(ExitCode::SUCCESS);
        }
        let code = monitor::monitor_eval(&client, &eval_id, MonitorConfig::default()).await?;
        Ok(ExitCode::from(code))
    })
}

fn check_task(alloc: &serde_json::Value, task: Option<&String>) -> anyhow::Result<()> {
    if let Some(task) = task
        && !task_names(alloc).contains(task)
    {
        anyhow::bail!("Could not find task named: {task}");
    }
    Ok(())
}

pub fn restart(args: &AllocTaskArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        check_task(&alloc, args.task.as_ref())?;
        let body = json!({ "TaskName": args.task.clone().unwrap_or_default() });
        client
            .post(
                &format!("/v1/client/allocation/{}/restart", str_of(&alloc, "ID")),
                &body,
            )
            .await
            .map_err(|err| anyhow::anyhow!("Failed to restart allocation:\n\n{err}"))?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn signal(args: &AllocSignalArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        check_task(&alloc, args.task.as_ref())?;
        let body = json!({
            "Task": args.task.clone().unwrap_or_default(),
            "Signal": args.signal,
        });
        client
            .post(
                &format!("/v1/client/allocation/{}/signal", str_of(&alloc, "ID")),
                &body,
            )
            .await
            .map_err(|err| anyhow::anyhow!("Error signalling allocation: {err}"))?;
        Ok(ExitCode::SUCCESS)
    })
}
