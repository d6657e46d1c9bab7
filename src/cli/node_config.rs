//! `caravan node config -servers | -update-servers ADDR...`: the servers the client agent at
//! `-address` calls, read or replaced over `/v1/agent/servers`.
//!
//! Nomad: `command/node_config.go` (the same flags, messages and exit codes).

use std::process::ExitCode;

use clap::Args;

use super::output::outln;
use super::{ApiArgs, block_on};
use crate::api::client::encode;

#[derive(Debug, Args)]
pub struct NodeConfigArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Lists the servers the client agent knows
    #[arg(long)]
    pub servers: bool,
    /// Replaces the client agent's servers with the addresses given
    #[arg(long = "update-servers")]
    pub update_servers: bool,
    /// Server addresses (`host:port`), with -update-servers
    pub addresses: Vec<String>,
}

pub fn run(args: &NodeConfigArgs) -> anyhow::Result<ExitCode> {
    if !args.servers && !args.update_servers {
        anyhow::bail!(
            "The '-servers' or '-update-servers' flag(s) must be set\n\
             For additional help try 'caravan node config -help'"
        );
    }
    if args.update_servers && args.addresses.is_empty() {
        anyhow::bail!(
            "If the '-update-servers' flag is set, at least one server argument must be provided\n\
             For additional help try 'caravan node config -help'"
        );
    }
    let client = args.api.client()?;
    block_on(async {
        if args.update_servers {
            let query: Vec<String> = args
                .addresses
                .iter()
                .map(|address| format!("address={}", encode(address)))
                .collect();
            client
                .put::<_, serde::de::IgnoredAny>(
                    &format!("/v1/agent/servers?{}", query.join("&")),
                    &(),
                )
                .await
                .map_err(|err| anyhow::anyhow!("Error updating server list: {err}"))?;
            outln!("Updated server list")?;
            return Ok(ExitCode::SUCCESS);
        }
        let servers: Vec<String> = client
            .get("/v1/agent/servers")
            .await
            .map_err(|err| anyhow::anyhow!("Error querying server list: {err}"))?;
        for server in servers {
            outln!("{server}")?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
