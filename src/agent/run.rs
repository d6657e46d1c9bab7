//! Running an agent from its configuration: maps [`AgentConfig`] onto the roles' options, starts
//! them, prints Nomad's start-up banner and waits for SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;

use super::config::AgentConfig;
use super::start::{server_options, start_server, wait_for_signal};

/// Starts the roles the configuration enables and runs until a signal arrives.
pub async fn run_agent(
    config: AgentConfig,
    dev: bool,
    loaded_from: &[PathBuf],
) -> anyhow::Result<()> {
    if !dev && config.data_dir.is_none() {
        anyhow::bail!(
            "must specify a data_dir for a non-dev agent (data_dir = \"/path\" or -data-dir)"
        );
    }
    for path in loaded_from {
        println!("==> Loaded configuration from {}", path.display());
    }
    println!("==> Starting caravan agent...");
    let server = if config.server_enabled() {
        let options = server_options(&config, dev)?;
        Some(start_server(options).await.context("starting the server")?)
    } else {
        None
    };
    if config.client_enabled() && !config.server_enabled() {
        anyhow::bail!("the client role is not available in this build yet");
    }
    let http = server
        .as_ref()
        .map(|server| server.http_addr.to_string())
        .unwrap_or_default();
    let rpc = server
        .as_ref()
        .map(|server| server.rpc_addr.to_string())
        .unwrap_or_default();
    println!("==> caravan agent configuration:");
    println!();
    println!("       Bind Addrs: HTTP: {http}; RPC: {rpc}");
    println!("           Client: {}", config.client_enabled());
    println!(
        "        Log Level: {}",
        config.log_level.as_deref().unwrap_or("INFO")
    );
    println!(
        "           Region: {} (DC: {})",
        config.region(),
        config.datacenter()
    );
    println!("           Server: {}", config.server_enabled());
    println!("          Version: {}", env!("CARGO_PKG_VERSION"));
    println!();
    println!("==> caravan agent started! Log data will stream in below:");
    println!();
    wait_for_signal().await?;
    println!("==> Caught signal, gracefully shutting down");
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
