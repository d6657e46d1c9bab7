//! `caravan monitor`: streams the log lines of the agent at `-address` (or of the node or server
//! it names) as they are written, at the level asked for, until interrupted.
//!
//! Nomad: `command/agent_monitor.go` (`-log-level`, `-log-json`/`-json`, `-node-id`,
//! `-server-id`).

use std::io::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::{ApiArgs, block_on};
use crate::api::client::encode;

#[derive(Debug, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The lowest level shown: trace, debug, info, warn or error
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
    /// Log lines as JSON objects
    #[arg(long = "log-json", visible_alias = "json")]
    pub log_json: bool,
    /// The lines of this client node's agent
    #[arg(long = "node-id")]
    pub node_id: Option<String>,
    /// The lines of this server (its name, or `leader`)
    #[arg(long = "server-id")]
    pub server_id: Option<String>,
}

pub fn run(args: &MonitorArgs) -> anyhow::Result<ExitCode> {
    if args.node_id.is_some() && args.server_id.is_some() {
        anyhow::bail!("Cannot target node and server simultaneously");
    }
    let client = args.api.client()?;
    let mut path = format!(
        "/v1/agent/monitor?plain=true&log_level={}&log_json={}",
        encode(&args.log_level),
        args.log_json
    );
    if let Some(node_id) = &args.node_id {
        path.push_str(&format!("&node_id={}", encode(node_id)));
    }
    if let Some(server_id) = &args.server_id {
        path.push_str(&format!("&server_id={}", encode(server_id)));
    }
    block_on(async {
        let mut response = client
            .get_stream(&path)
            .await
            .map_err(|err| anyhow::anyhow!("Error starting monitor: {err}"))?;
        let mut stdout = std::io::stdout().lock();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| anyhow::anyhow!("Error reading the agent's logs: {err}"))?
        {
            stdout.write_all(&chunk)?;
            stdout.flush()?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
