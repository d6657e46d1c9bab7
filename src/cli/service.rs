//! `caravan service list|info|delete`: the native service catalog.
//!
//! Nomad: `command/service_list.go`, `service_info.go`, `service_delete.go`. `service info`
//! adds a `Checks` column (the instance's checks: `success`, `pending`, `failure`, or `-`
//! without checks), which Nomad's lacks.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::ApiArgs;
use super::api_client::{ApiClient, block_on, encode, i64_of, str_of};
use super::format::{short_id, table};
use super::output::outln;

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
    let client = ApiClient::new(&args.api)?;
    let namespaces = block_on(client.get("/v1/services"))
        .map_err(|err| anyhow::anyhow!("Error listing services: {err:#}"))?;
    let rows: Vec<Vec<String>> = namespaces
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|namespace| {
            namespace["Services"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|service| vec![str_of(service, "ServiceName").to_owned(), tags_of(service)])
        })
        .collect();
    if rows.is_empty() {
        outln!("No service registrations found")?;
    } else {
        outln!("{}", table(&["Service Name", "Tags"], &rows))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn tags_of(value: &Value) -> String {
    let tags: Vec<&str> = value["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!("[{}]", tags.join(","))
}

fn checks_of(registration: &Value) -> String {
    let statuses: Vec<&str> = registration["Checks"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, status)| status.as_str())
        .collect();
    if statuses.is_empty() {
        "-".to_owned()
    } else if statuses.contains(&"failure") {
        "failure".to_owned()
    } else if statuses.contains(&"pending") {
        "pending".to_owned()
    } else {
        "success".to_owned()
    }
}

fn info(args: &ServiceInfoArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    let path = format!("/v1/service/{}", encode(&args.service_name));
    let registrations = block_on(client.get(&path))
        .map_err(|err| anyhow::anyhow!("Error listing service registrations: {err:#}"))?;
    let mut registrations: Vec<&Value> = registrations.as_array().into_iter().flatten().collect();
    if registrations.is_empty() {
        outln!("No service registrations found")?;
        return Ok(ExitCode::SUCCESS);
    }
    registrations.sort_by_key(|registration| {
        (
            str_of(registration, "JobID").to_owned(),
            str_of(registration, "AllocID").to_owned(),
        )
    });
    let rows: Vec<Vec<String>> = registrations
        .iter()
        .map(|registration| {
            vec![
                str_of(registration, "JobID").to_owned(),
                format!(
                    "{}:{}",
                    str_of(registration, "Address"),
                    i64_of(registration, "Port")
                ),
                tags_of(registration),
                short_id(str_of(registration, "NodeID"), args.verbose),
                short_id(str_of(registration, "AllocID"), args.verbose),
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
    let client = ApiClient::new(&args.api)?;
    let path = format!(
        "/v1/service/{}/{}",
        encode(&args.service_name),
        encode(&args.service_id)
    );
    block_on(client.delete(&path))
        .map_err(|err| anyhow::anyhow!("Error deleting service registration: {err:#}"))?;
    outln!("Successfully deleted service registration")?;
    Ok(ExitCode::SUCCESS)
}
