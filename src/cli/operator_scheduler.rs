//! `caravan operator scheduler get-config|set-config`: the cluster's scheduler configuration.
//!
//! Preemption is not implemented in caravan's scheduler, nor memory oversubscription: those
//! settings are stored and shown, and change no placement.
//!
//! Nomad: `command/operator_scheduler_get_config.go`, `operator_scheduler_set_config.go`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::block_on;
use super::format::kv;
use super::output::outln;
use super::{ApiArgs, OutputArgs};
use crate::api::types::scheduler::{
    SchedulerConfigurationResponse, SchedulerSetConfigurationResponse,
};
use crate::structs::SchedulerAlgorithm;

const PATH: &str = "/v1/operator/scheduler/configuration";

#[derive(Debug, Subcommand)]
pub enum SchedulerCommand {
    /// Displays the current scheduler configuration
    GetConfig(GetConfigArgs),
    /// Modifies the current scheduler configuration (only the settings given change)
    SetConfig(SetConfigArgs),
}

#[derive(Debug, Args)]
pub struct GetConfigArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct SetConfigArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Updates only if the configuration's modify index is still this one
    #[arg(long = "check-index", value_name = "INDEX")]
    pub check_index: Option<u64>,
    /// Whether the scheduler binpacks or spreads allocations over the nodes
    #[arg(long = "scheduler-algorithm", value_name = "binpack|spread")]
    pub scheduler_algorithm: Option<String>,
    /// Stored and shown only: caravan does not oversubscribe memory
    #[arg(long = "memory-oversubscription", value_name = "true|false")]
    pub memory_oversubscription: Option<bool>,
    /// When true, job registration, dispatch and scaling are refused
    #[arg(long = "reject-job-registration", value_name = "true|false")]
    pub reject_job_registration: Option<bool>,
    /// When true, the scheduler workers take no new evaluation
    #[arg(long = "pause-eval-broker", value_name = "true|false")]
    pub pause_eval_broker: Option<bool>,
    /// Stored and shown only: caravan's scheduler does not preempt
    #[arg(long = "preempt-batch-scheduler", value_name = "true|false")]
    pub preempt_batch_scheduler: Option<bool>,
    /// Stored and shown only: caravan's scheduler does not preempt
    #[arg(long = "preempt-service-scheduler", value_name = "true|false")]
    pub preempt_service_scheduler: Option<bool>,
    /// Stored and shown only: caravan's scheduler does not preempt
    #[arg(long = "preempt-sysbatch-scheduler", value_name = "true|false")]
    pub preempt_sysbatch_scheduler: Option<bool>,
    /// Stored and shown only: caravan's scheduler does not preempt
    #[arg(long = "preempt-system-scheduler", value_name = "true|false")]
    pub preempt_system_scheduler: Option<bool>,
}

pub fn run(command: &SchedulerCommand) -> anyhow::Result<ExitCode> {
    match command {
        SchedulerCommand::GetConfig(args) => get_config(args),
        SchedulerCommand::SetConfig(args) => set_config(args),
    }
}

fn get_config(args: &GetConfigArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let response: SchedulerConfigurationResponse = client
            .get(PATH)
            .await
            .map_err(|err| anyhow::anyhow!("Error querying scheduler configuration: {err}"))?;
        if args.output.printed(&response)? {
            return Ok(ExitCode::SUCCESS);
        }
        let config = response.scheduler_config.unwrap_or_default();
        let preemption = config.preemption_config;
        outln!(
            "{}",
            kv(&[
                (
                    "Scheduler Algorithm",
                    config.scheduler_algorithm.to_string()
                ),
                (
                    "Memory Oversubscription",
                    config.memory_oversubscription_enabled.to_string()
                ),
                (
                    "Reject Job Registration",
                    config.reject_job_registration.to_string()
                ),
                ("Pause Eval Broker", config.pause_eval_broker.to_string()),
                (
                    "Preemption System Scheduler",
                    preemption.system_scheduler_enabled.to_string()
                ),
                (
                    "Preemption Service Scheduler",
                    preemption.service_scheduler_enabled.to_string()
                ),
                (
                    "Preemption Batch Scheduler",
                    preemption.batch_scheduler_enabled.to_string()
                ),
                (
                    "Preemption SysBatch Scheduler",
                    preemption.sysbatch_scheduler_enabled.to_string()
                ),
                ("Modify Index", config.modify_index.to_string()),
            ])
        )?;
        Ok(ExitCode::SUCCESS)
    })
}

fn set_config(args: &SetConfigArgs) -> anyhow::Result<ExitCode> {
    // Checked before anything is sent.
    let algorithm = args
        .scheduler_algorithm
        .as_deref()
        .map(str::parse::<SchedulerAlgorithm>)
        .transpose()
        .map_err(|err| anyhow::anyhow!("Error parsing -scheduler-algorithm: {err}"))?;
    let client = args.api.client()?;
    block_on(async {
        let current: SchedulerConfigurationResponse = client
            .get(PATH)
            .await
            .map_err(|err| anyhow::anyhow!("Error querying for scheduler configuration: {err}"))?;
        let mut config = current.scheduler_config.unwrap_or_default();
        let check_index = args.check_index.filter(|index| *index > 0);
        if let Some(index) = check_index
            && config.modify_index != index
        {
            anyhow::bail!(
                "Error performing check index set: check-index {index} does not match does not match current state value {}",
                config.modify_index
            );
        }
        if let Some(algorithm) = algorithm {
            config.scheduler_algorithm = algorithm;
        }
        let merges = [
            (
                args.memory_oversubscription,
                &mut config.memory_oversubscription_enabled,
            ),
            (
                args.reject_job_registration,
                &mut config.reject_job_registration,
            ),
            (args.pause_eval_broker, &mut config.pause_eval_broker),
            (
                args.preempt_batch_scheduler,
                &mut config.preemption_config.batch_scheduler_enabled,
            ),
            (
                args.preempt_service_scheduler,
                &mut config.preemption_config.service_scheduler_enabled,
            ),
            (
                args.preempt_sysbatch_scheduler,
                &mut config.preemption_config.sysbatch_scheduler_enabled,
            ),
            (
                args.preempt_system_scheduler,
                &mut config.preemption_config.system_scheduler_enabled,
            ),
        ];
        for (flag, setting) in merges {
            if let Some(value) = flag {
                *setting = value;
            }
        }
        // Check-and-set against the index read (or the one given), as Nomad does.
        let cas = check_index.unwrap_or(config.modify_index);
        let result: SchedulerSetConfigurationResponse = client
            .put(&format!("{PATH}?cas={cas}"), &config)
            .await
            .map_err(|err| anyhow::anyhow!("Error setting scheduler configuration: {err}"))?;
        if result.updated {
            outln!("Scheduler configuration updated!")?;
            return Ok(ExitCode::SUCCESS);
        }
        outln!("Scheduler configuration could not be atomically updated, please try again")?;
        Ok(ExitCode::from(1))
    })
}
