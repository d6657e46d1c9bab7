//! `caravan service list|info|delete`: the native service catalog.
//!
//! Nomad: `command/service_list.go`, `service_info.go`, `service_delete.go`. `service info`
//! adds a `Checks` column (the instance's checks: `success`, `pending`, `failure`, or `-`
//! without checks), which Nomad's lacks.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::block_on;
use super::format::{short_id, table};
use super::output::outln;
use super::{ApiArgs, OutputArgs};
use crate::api::client::encode;
use crate::api::types::client::EmptyResponse;
use crate::api::types::services::{ServiceRegistration, ServiceRegistrationListStub};

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Lists the registered services
    List(ServiceListArgs),
    /// Shows the instances of a service
    Info(ServiceInfoArgs),
    /// Deletes one registration of a service
    Delete(ServiceDeleteArgs),
}

#[derive(Debug, Args)]
pub struct ServiceListArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ServiceInfoArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The service's name
    pub service_name: String,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ServiceDeleteArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The service's name
    pub service_name: String,
    /// The registration's ID
    pub service_id: String,
}

pub fn run(command: &ServiceCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServiceCommand::List(args) => list(args),
        ServiceCommand::Info(args) => info(args),
        ServiceCommand::Delete(args) => delete(args),
    }
}

fn list(args: &ServiceListArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let namespaces: Vec<ServiceRegistrationListStub> =
        block_on(async { Ok(client.get("/v1/services").await?) })
            .map_err(|err: anyhow::Error| anyhow::anyhow!("Error listing services: {err:#}"))?;
    if args.output.printed(&namespaces)? {
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = namespaces
        .iter()
        .flat_map(|namespace| &namespace.services)
        .map(|service| vec![service.service_name.clone(), tags_of(&service.tags)])
        .collect();
    if rows.is_empty() {
        outln!("No service registrations found")?;
    } else {
        outln!("{}", table(&["Service Name", "Tags"], &rows))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn tags_of(tags: &[String]) -> String {
    format!("[{}]", tags.join(","))
}

/// The instance's checks as one word, `-` without any.
fn checks_of(registration: &ServiceRegistration) -> String {
    if registration.checks.is_empty() {
        "-".to_owned()
    } else {
        registration.checks_status().to_string()
    }
}

fn info(args: &ServiceInfoArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let path = format!("/v1/service/{}", encode(&args.service_name));
    let mut registrations: Vec<ServiceRegistration> =
        block_on(async { Ok(client.get(&path).await?) }).map_err(|err: anyhow::Error| {
            anyhow::anyhow!("Error listing service registrations: {err:#}")
        })?;
    if args.output.printed(&registrations)? {
        return Ok(ExitCode::SUCCESS);
    }
    if registrations.is_empty() {
        outln!("No service registrations found")?;
        return Ok(ExitCode::SUCCESS);
    }
    registrations.sort_by(|left, right| {
        (&left.job_id, &left.alloc_id).cmp(&(&right.job_id, &right.alloc_id))
    });
    let rows: Vec<Vec<String>> = registrations
        .iter()
        .map(|registration| {
            vec![
                registration.job_id.to_string(),
                format!("{}:{}", registration.address, registration.port),
                tags_of(&registration.tags),
                short_id(registration.node_id.as_str(), args.verbose),
                short_id(registration.alloc_id.as_str(), args.verbose),
                checks_of(registration),
            ]
        })
        .collect();
    outln!(
        "{}",
        table(
            &["Job ID", "Address", "Tags", "Node ID", "Alloc ID", "Checks"],
            &rows
        )
    )?;
    Ok(ExitCode::SUCCESS)
}

fn delete(args: &ServiceDeleteArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let path = format!(
        "/v1/service/{}/{}",
        encode(&args.service_name),
        encode(&args.service_id)
    );
    block_on(async {
        let _: EmptyResponse = client.delete(&path).await?;
        Ok(())
    })
    .map_err(|err: anyhow::Error| {
        anyhow::anyhow!("Error deleting service registration: {err:#}")
    })?;
    outln!("Successfully deleted service registration")?;
    Ok(ExitCode::SUCCESS)
}
