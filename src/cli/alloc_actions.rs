//! `caravan alloc stop|restart|signal`: acting on one allocation.
//!
//! Nomad: `command/alloc_stop.go`, `alloc_restart.go`, `alloc_signal.go`.

use std::process::ExitCode;

use super::alloc_status::{read_alloc, task_names};
use super::block_on;
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{AllocIdArgs, AllocSignalArgs, AllocTaskArgs};
use crate::api::types::allocs::AllocStopResponse;
use crate::api::types::client::{AllocRestartRequest, AllocSignalRequest, EmptyResponse};
use crate::structs::Allocation;

pub fn stop(args: &AllocIdArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        let response: AllocStopResponse = client
            .post(
                &format!("/v1/allocation/{}/stop", alloc.id),
                &EmptyResponse {},
            )
            .await
            .map_err(|err| anyhow::anyhow!("Error stopping allocation: {err}"))?;
        let eval_id = response.eval_id;
        if args.detach || eval_id.is_empty() {
            outln!("{eval_id}")?;
            return Ok(ExitCode::SUCCESS);
        }
        let code = monitor::monitor_eval(&client, &eval_id, MonitorConfig::default()).await?;
        Ok(ExitCode::from(code))
    })
}

fn check_task(alloc: &Allocation, task: Option<&String>) -> anyhow::Result<()> {
    if let Some(task) = task
        && !task_names(alloc).contains(task)
    {
        anyhow::bail!("Could not find task named: {task}");
    }
    Ok(())
}

pub fn restart(args: &AllocTaskArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        check_task(&alloc, args.task.as_ref())?;
        let body = AllocRestartRequest {
            task_name: args.task.clone().unwrap_or_default(),
            all_tasks: false,
        };
        let _: EmptyResponse = client
            .post(
                &format!("/v1/client/allocation/{}/restart", alloc.id),
                &body,
            )
            .await
            .map_err(|err| anyhow::anyhow!("Failed to restart allocation:\n\n{err}"))?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn signal(args: &AllocSignalArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        check_task(&alloc, args.task.as_ref())?;
        let body = AllocSignalRequest {
            task: args.task.clone().unwrap_or_default(),
            signal: args.signal.clone(),
        };
        let _: EmptyResponse = client
            .post(&format!("/v1/client/allocation/{}/signal", alloc.id), &body)
            .await
            .map_err(|err| anyhow::anyhow!("Error signalling allocation: {err}"))?;
        Ok(ExitCode::SUCCESS)
    })
}
