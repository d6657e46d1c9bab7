//! Running an agent from its configuration: maps [`AgentConfig`] onto the roles' options, starts
//! them, prints Nomad's start-up banner and waits for SIGINT or SIGTERM.
//!
//! ```text
//!  bind HTTP (and RPC for a server) ─► client (if enabled): link to the in-process server's HTTP
//!                                      address, or to client.servers
//!                                   ─► server (if enabled): Raft, workers...; HTTP serves the API
//!                                      plus the client's /v1/client routes
//!  client only: HTTP serves /v1/client itself and forwards everything else to the servers
//! ```
//!
//! With a `tls` block the files are read once ([`AgentTls`]) and every listener and outgoing
//! client is built from them: servers are reached over HTTPS when `tls.rpc` (a bare `host:port`
//! gets `https://`), nodes' HTTP APIs when `tls.http`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::config::{AgentConfig, duration_or};
use super::proxy::Forwarder;
use super::start::{bind, serve_port, server_options, start_server_on, wait_for_signal};
use crate::client::{
    Client, ClientHandle, ClientOptions, CollectorMode, HttpServerLink, TaskFilesConfig,
};
use crate::server::worker::default_scheduler;
use crate::structs::{HostVolume, NodeReservedResources};
use crate::tls::{AgentTls, Dial, Dialer, Port};

/// The client's options from the agent configuration. `servers` are the HTTP base URLs the client
/// talks to; `http_addr` is where this agent's HTTP API listens.
pub fn client_options(
    config: &AgentConfig,
    data_dir: PathBuf,
    servers: Vec<String>,
    http_addr: SocketAddr,
) -> anyhow::Result<ClientOptions> {
    let defaults = ClientOptions::default();
    let client = &config.client;
    let plugins = config
        .plugin
        .iter()
        .map(|(name, plugin)| {
            let value = plugin
                .config
                .clone()
                .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
            (name.clone(), value)
        })
        .collect();
    let mut reserved = NodeReservedResources::default();
    reserved.cpu.cpu_shares = i64::from(client.reserved.cpu.unwrap_or(0));
    reserved.memory.memory_mb = i64::from(client.reserved.memory.unwrap_or(0));
    reserved.disk.disk_mb = i64::from(client.reserved.disk.unwrap_or(0));
    reserved.reserved_host_ports = client.reserved.reserved_ports.clone().unwrap_or_default();
    let host_volumes = client
        .host_volume
        .iter()
        .map(|(name, volume)| {
            let path = volume
                .path
                .as_ref()
                .map(|path| path.display().to_string())
                .unwrap_or_default();
            (
                name.clone(),
                HostVolume {
                    path,
                    read_only: volume.read_only.unwrap_or(false),
                },
            )
        })
        .collect();
    let network_ip = match client.network_interface.as_deref() {
        Some(interface) => Some(interface_ipv4(interface)?),
        None => None,
    };
    Ok(ClientOptions {
        data_dir,
        node_name: config.name.clone().unwrap_or_default(),
        datacenter: config.datacenter().to_owned(),
        region: config.region().to_owned(),
        node_class: client.node_class.clone().unwrap_or_default(),
        node_pool: client
            .node_pool
            .clone()
            .unwrap_or_else(|| defaults.node_pool.clone()),
        meta: client.meta.clone(),
        options: client.options.clone(),
        plugins,
        plugin_dir: config.plugin_dir.clone(),
        http_advertise: advertise_addr(config, http_addr).to_string(),
        servers,
        state_dir: client.state_dir.clone(),
        alloc_dir: client.alloc_dir.clone(),
        cpu_total_compute: client.cpu_total_compute,
        memory_total_mb: client.memory_total_mb,
        disk_free_mb: client.disk_free_mb,
        min_dynamic_port: client.min_dynamic_port,
        max_dynamic_port: client.max_dynamic_port,
        reserved,
        host_volumes,
        max_kill_timeout: duration_or(
            client.max_kill_timeout.as_deref(),
            defaults.max_kill_timeout,
        ),
        network_ip,
        task_files: TaskFilesConfig {
            artifact_file_allowlist: client.artifact.file_allowlist.clone().unwrap_or_default(),
            artifact_limits: client.artifact.limits().map_err(anyhow::Error::msg)?,
            // `caravan logmon` processes when this is the caravan binary, else threads.
            log_collector: CollectorMode::default_for_agents(),
        },
        acl_enabled: config.acl.enabled.unwrap_or(false),
        acl_token_ttl: duration_or(config.acl.token_ttl.as_deref(), defaults.acl_token_ttl),
        ..defaults
    })
}

/// The first IPv4 address of the network interface `name` (`client.network_interface`, Nomad's
/// `network_interface`): the address the node advertises and binds its tasks' ports to.
fn interface_ipv4(name: &str) -> anyhow::Result<IpAddr> {
    let addresses = nix::ifaddrs::getifaddrs().context("listing the network interfaces")?;
    addresses
        .filter(|interface| interface.interface_name == name)
        .find_map(|interface| {
            let address = interface.address?;
            let ipv4 = address.as_sockaddr_in()?;
            Some(IpAddr::V4(ipv4.ip()))
        })
        .with_context(|| format!("network_interface {name:?} has no IPv4 address on this host"))
}

/// The HTTP address other agents reach this one at: `advertise.http`, else the bound address,
/// with an unspecified IP (0.0.0.0) read as loopback.
fn advertise_addr(config: &AgentConfig, http_addr: SocketAddr) -> SocketAddr {
    if let Some(advertised) = config.advertise.http.as_deref() {
        if let Ok(addr) = advertised.parse::<SocketAddr>() {
            return addr;
        }
        if let Ok(ip) = advertised.parse::<IpAddr>() {
            return SocketAddr::new(ip, http_addr.port());
        }
    }
    loopback_if_unspecified(http_addr)
}

/// `addr` with an unspecified IP (0.0.0.0) read as loopback: where this host reaches itself.
fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// Starts the roles the configuration enables and runs until a signal arrives.
pub async fn run_agent(
    config: AgentConfig,
    dev: bool,
    loaded_from: &[PathBuf],
) -> anyhow::Result<()> {
    for path in loaded_from {
        println!("==> Loaded configuration from {}", path.display());
    }
    println!("==> Starting caravan agent...");
    let agent = start_agent(config.clone(), dev).await?;
    println!("==> caravan agent configuration:");
    println!();
    println!(
        "       Bind Addrs: HTTP: {}; RPC: {}",
        agent.http_addr,
        agent
            .rpc_addr
            .map(|addr| addr.to_string())
            .unwrap_or_else(|| "-".to_owned())
    );
    println!("           Client: {}", config.client_enabled());
    println!(
        "        Log Level: {}",
        config.log_level.as_deref().unwrap_or("INFO")
    );
    if let Some(node_id) = &agent.node_id {
        println!("          Node Id: {node_id}");
    }
    println!(
        "           Region: {} (DC: {})",
        config.region(),
        config.datacenter()
    );
    println!("           Server: {}", config.server_enabled());
    println!("          Version: {}", env!("CARGO_PKG_VERSION"));
    if dev {
        println!(
            "         Data Dir: {} (removed on exit)",
            agent.data_dir.display()
        );
    }
    println!();
    println!("==> caravan agent started! Log data will stream in below:");
    println!();
    wait_for_signal().await?;
    println!("==> Caught signal, gracefully shutting down");
    agent.shutdown().await;
    Ok(())
}

/// An agent running in this process.
pub struct RunningAgent {
    pub http_addr: SocketAddr,
    pub rpc_addr: Option<SocketAddr>,
    pub node_id: Option<String>,
    pub data_dir: PathBuf,
    dev: bool,
    server: Option<super::start::RunningServer>,
    client: Option<crate::client::ClientHandle>,
    client_listener: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    /// A `-dev` agent's data dir, removed when the agent is dropped.
    _dev_dir: Option<tempfile::TempDir>,
}

impl RunningAgent {
    /// Stops the client (its tasks keep running unless the agent is in `-dev` mode, whose data
    /// dir goes away), then the listeners and the server.
    pub async fn shutdown(self) {
        if let Some(client) = self.client {
            if self.dev {
                client.shutdown_and_stop_tasks().await;
            } else {
                client.shutdown().await;
            }
        }
        if let Some((stop, listener)) = self.client_listener {
            let _ = stop.send(true);
            let _ = listener.await;
        }
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}

/// Starts the roles of `config`; returns once they serve.
pub async fn start_agent(config: AgentConfig, dev: bool) -> anyhow::Result<RunningAgent> {
    let dev_dir = if dev {
        Some(
            tempfile::Builder::new()
                .prefix("caravan-dev-")
                .tempdir()
                .context("creating the dev data dir")?,
        )
    } else {
        None
    };
    let data_dir = match (&dev_dir, &config.data_dir) {
        (Some(dir), _) => dir.path().to_owned(),
        (None, Some(dir)) => dir.clone(),
        (None, None) => anyhow::bail!(
            "must specify a data_dir for a non-dev agent (data_dir = \"/path\" or -data-dir)"
        ),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    let tls = match config.tls_settings() {
        Some(settings) => Some(AgentTls::load(settings).context("loading the tls block's files")?),
        None => None,
    };
    let to_servers = Dialer::new(tls.as_deref(), Dial::Servers, Duration::from_secs(5))?;
    let http_listener = bind(config.http_addr()?, "HTTP").await?;
    let http_addr = http_listener.local_addr()?;
    let rpc_listener = if config.server_enabled() {
        Some(bind(config.rpc_addr()?, "RPC").await?)
    } else {
        None
    };
    let client = if config.client_enabled() {
        let servers: Vec<String> = match &rpc_listener {
            // With TLS, the in-process server's RPC port: it speaks what the link to servers
            // speaks (HTTPS with `tls.rpc`), whatever the HTTP port does.
            Some(rpc_listener) if tls.is_some() => {
                vec![
                    to_servers
                        .base(&loopback_if_unspecified(rpc_listener.local_addr()?).to_string()),
                ]
            }
            Some(_) => vec![format!("http://{}", advertise_addr(&config, http_addr))],
            None => config
                .client
                .servers
                .iter()
                .flatten()
                .map(|server| to_servers.base(server))
                .collect(),
        };
        let options = client_options(&config, data_dir.clone(), servers, http_addr)?;
        let link = Arc::new(HttpServerLink::with_dialer(
            &options.servers,
            to_servers.clone(),
        ));
        Some(
            Client::start(options, link)
                .await
                .context("starting the client")?,
        )
    } else {
        None
    };
    let node_id = client.as_ref().map(|client| client.node_id().to_string());
    let mut agent = RunningAgent {
        http_addr,
        rpc_addr: None,
        node_id,
        data_dir: data_dir.clone(),
        dev,
        server: None,
        client,
        client_listener: None,
        _dev_dir: dev_dir,
    };
    match rpc_listener {
        Some(rpc_listener) => {
            let mut options = server_options(&config, dev)?;
            options.data_dir = Some(data_dir);
            options.tls = tls.clone();
            let server = start_server_on(
                http_listener,
                rpc_listener,
                options,
                default_scheduler(),
                agent.client.as_ref().map(ClientHandle::router),
            )
            .await
            .context("starting the server")?;
            agent.rpc_addr = Some(server.rpc_addr);
            agent.server = Some(server);
        }
        None => {
            let servers: crate::agent::proxy::ServerSource = match &agent.client {
                Some(client) => client.server_source(),
                None => {
                    let configured = config.client.servers.clone().unwrap_or_default();
                    Box::new(move || configured.clone())
                }
            };
            let router = agent
                .client
                .as_ref()
                .map(ClientHandle::standalone_router)
                .unwrap_or_default()
                .merge(crate::api::ui::router())
                .merge(Forwarder::new(servers, to_servers).router());
            let (stop, stopped) = watch::channel(false);
            let listener = serve_port(http_listener, router, Port::Http, tls.as_ref(), stopped)?;
            agent.client_listener = Some((stop, listener));
        }
    }
    Ok(agent)
}
