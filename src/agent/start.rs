//! Starting a server agent: Raft, the state store, the broker, workers, the plan applier and
//! heartbeats, the RPC listener for Raft traffic, and the HTTP API.
//!
//! ```text
//!   run_server(options) ─► start_server ─► bind HTTP + RPC listeners (port 0 → a free port)
//!                                          Server::start (Raft on the RPC address)
//!                                          serve api::router on HTTP, raft::rpc_router on RPC
//!                       ─► wait for SIGINT / SIGTERM ─► graceful shutdown
//! ```
//!
//! The agent's HCL configuration maps onto [`ServerOptions`]; `-dev` is the same path with
//! `dev = true` (the Raft log in memory). With a `tls` block a port serves HTTPS (`tls.http`,
//! `tls.rpc`) and the internal routes answer only callers with a cluster certificate
//! ([`crate::tls::listener`]).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::Server;
pub use crate::server::ServerOptions;
use crate::server::worker::{SchedulerFn, default_scheduler};
use crate::tls::{AgentTls, Port, TlsListener, TlsPeer};

/// A server agent running in this process.
#[derive(Debug)]
pub struct RunningServer {
    pub server: Arc<Server>,
    /// The bound HTTP address (the real port when 0 was asked for).
    pub http_addr: SocketAddr,
    pub rpc_addr: SocketAddr,
    stop: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// `http://<http_addr>`, `https://` with `tls.http`.
    pub fn http_url(&self) -> String {
        let https = self
            .server
            .options
            .tls
            .as_ref()
            .is_some_and(|tls| tls.listener(Port::Http).is_some());
        format!(
            "{}://{}",
            if https { "https" } else { "http" },
            self.http_addr
        )
    }

    /// Stops the listeners, the workers and Raft.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for listener in self.listeners {
            let _ = listener.await;
        }
        self.server.shutdown().await;
    }
}

/// Binds `addr`, naming what it is for in the error.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} address {addr}"))
}

/// Serves `router` on `listener` until `stopped` turns true: HTTPS when `tls` has a configuration
/// for `port`, the internal routes then gated on the caller's certificate.
pub fn serve_port(
    listener: TcpListener,
    router: axum::Router,
    port: Port,
    tls: Option<&Arc<AgentTls>>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let name = match port {
        Port::Http => "http",
        Port::Rpc => "rpc",
    };
    let Some(tls) = tls else {
        return Ok(serve(listener, router, name, stopped));
    };
    let router = router.layer(axum::middleware::from_fn_with_state(
        tls.clone(),
        crate::tls::require_cluster_cert,
    ));
    let Some(config) = tls.listener(port) else {
        return Ok(serve(listener, router, name, stopped));
    };
    let listener = TlsListener::new(listener, config, tls.clone())
        .with_context(|| format!("serving https on the {name} port"))?;
    Ok(tokio::spawn(async move {
        let mut stopped = stopped;
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<TlsPeer>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        {
            tracing::error!(listener = name, error = %error, "listener failed");
        }
    }))
}

/// Serves `router` on `listener` (plain HTTP) until `stopped` turns true.
pub fn serve(
    listener: TcpListener,
    router: axum::Router,
    name: &'static str,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(listener = name, error = %error, "listener failed");
        }
    })
}

/// Binds the listeners and starts a server with the given scheduler; returns once it is serving.
pub async fn start_server_with(
    options: ServerOptions,
    scheduler: SchedulerFn,
) -> anyhow::Result<RunningServer> {
    let http_listener = bind(options.http_addr, "HTTP").await?;
    let rpc_listener = bind(options.rpc_addr, "RPC").await?;
    start_server_on(http_listener, rpc_listener, options, scheduler, None).await
}

/// Starts a server on listeners bound already. The HTTP port serves the API (and `extra_routes`,
/// the in-process client's `/v1/client/...`); the RPC port serves Raft between servers and the
/// same API, so clients that name servers by their RPC address (`servers = ["10.0.0.1:4647"]`,
/// as in Nomad's configs) reach them.
pub async fn start_server_on(
    http_listener: TcpListener,
    rpc_listener: TcpListener,
    mut options: ServerOptions,
    scheduler: SchedulerFn,
    extra_routes: Option<axum::Router>,
) -> anyhow::Result<RunningServer> {
    options.http_addr = http_listener.local_addr()?;
    options.rpc_addr = rpc_listener.local_addr()?;
    let http_addr = options.http_addr;
    let rpc_addr = options.rpc_addr;
    let server = Server::start(options, scheduler).await?;
    let (stop, stopped) = watch::channel(false);
    // An in-process client answers for its own allocations; a server-only agent forwards client
    // calls to the node that runs the allocation.
    let client_routes = match extra_routes {
        Some(routes) => routes,
        None => crate::agent::client_forward::router(server.clone())?,
    };
    let http_router = crate::api::with_identity(
        crate::api::router(server.clone()).merge(client_routes),
        server.clone(),
    );
    let rpc_router = crate::api::with_identity(
        crate::server::raft::rpc_router(
            server.raft.raft.clone(),
            server.raft.last_leader_contact.clone(),
        )
        .merge(crate::api::router(server.clone())),
        server.clone(),
    );
    let tls = server.options.tls.clone();
    let listeners = vec![
        serve_port(
            http_listener,
            http_router,
            Port::Http,
            tls.as_ref(),
            stopped.clone(),
        )?,
        serve_port(rpc_listener, rpc_router, Port::Rpc, tls.as_ref(), stopped)?,
    ];
    tracing::info!(http = %http_addr, rpc = %rpc_addr, dev = server.options.dev, "server started");
    Ok(RunningServer {
        server,
        http_addr,
        rpc_addr,
        stop,
        listeners,
    })
}

/// Starts a server with caravan's schedulers.
pub async fn start_server(options: ServerOptions) -> anyhow::Result<RunningServer> {
    start_server_with(options, default_scheduler()).await
}

/// Runs a server until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn run_server(options: ServerOptions) -> anyhow::Result<()> {
    let running = start_server(options).await?;
    println!(
        "==> caravan server started! HTTP: {}, RPC: {}",
        running.http_addr, running.rpc_addr
    );
    wait_for_signal().await?;
    println!("==> Caught signal, gracefully shutting down");
    running.shutdown().await;
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// Maps the agent's configuration onto a server's options (`-dev` keeps state in memory).
pub fn server_options(
    config: &crate::agent::config::AgentConfig,
    dev: bool,
) -> anyhow::Result<ServerOptions> {
    use crate::agent::config::duration_or;
    let defaults = ServerOptions::default();
    let heartbeat = crate::server::heartbeat::HeartbeatConfig {
        min_ttl: duration_or(
            config.server.min_heartbeat_ttl.as_deref(),
            defaults.heartbeat.min_ttl,
        ),
        max_heartbeats_per_second: config
            .server
            .max_heartbeats_per_second
            .unwrap_or(defaults.heartbeat.max_heartbeats_per_second),
        grace: duration_or(
            config.server.heartbeat_grace.as_deref(),
            defaults.heartbeat.grace,
        ),
    };
    let server_join = &config.server.server_join;
    let addresses: Vec<String> = [
        &server_join.retry_join,
        &server_join.start_join,
        &config.server.retry_join,
        &config.server.start_join,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .cloned()
    .collect();
    let join = crate::server::cluster::JoinOptions {
        addresses,
        retry_interval: duration_or(
            server_join.retry_interval.as_deref(),
            defaults.join.retry_interval,
        ),
        retry_max: server_join.retry_max.unwrap_or(defaults.join.retry_max),
    };
    let gc = {
        let server = &config.server;
        let defaults = &defaults.gc;
        crate::server::core_gc::GcConfig {
            interval: duration_or(server.job_gc_interval.as_deref(), defaults.interval),
            eval_threshold: duration_or(
                server.eval_gc_threshold.as_deref(),
                defaults.eval_threshold,
            ),
            batch_eval_threshold: duration_or(
                server.batch_eval_gc_threshold.as_deref(),
                defaults.batch_eval_threshold,
            ),
            job_threshold: duration_or(server.job_gc_threshold.as_deref(), defaults.job_threshold),
            deployment_threshold: duration_or(
                server.deployment_gc_threshold.as_deref(),
                defaults.deployment_threshold,
            ),
            node_threshold: duration_or(
                server.node_gc_threshold.as_deref(),
                defaults.node_threshold,
            ),
        }
    };
    Ok(ServerOptions {
        gc,
        // The server keeps `data_dir/server/`; `server.data_dir` is not honoured yet.
        data_dir: config.data_dir.clone(),
        http_addr: config.http_addr()?,
        rpc_addr: config.rpc_addr()?,
        // A server told whom to join but not how many to expect only joins (Nomad: servers
        // without `bootstrap_expect` never bootstrap).
        bootstrap_expect: config
            .server
            .bootstrap_expect
            .unwrap_or(if join.addresses.is_empty() { 1 } else { 0 }),
        join,
        node_name: config.name.clone().unwrap_or(defaults.node_name),
        region: config.region().to_owned(),
        datacenter: config.datacenter().to_owned(),
        dev,
        num_workers: config
            .server
            .num_schedulers
            .map_or(0, |count| count as usize),
        heartbeat,
        snapshot_after_logs: config
            .server
            .raft_snapshot_threshold
            .unwrap_or(defaults.snapshot_after_logs),
        trailing_logs: config
            .server
            .raft_trailing_logs
            .unwrap_or(defaults.trailing_logs),
        limits: job_limits(&config.server, defaults.limits),
        default_scheduler_config: config.server.default_scheduler_config.to_config().map_err(
            |err| anyhow::anyhow!("server.default_scheduler_config.scheduler_algorithm: {err}"),
        )?,
        acl_enabled: config.acl.enabled.unwrap_or(false),
        tls: None,
        local_client: dev || config.client_enabled(),
    })
}

/// The server block's request limits over the defaults.
fn job_limits(
    server: &crate::agent::config::ServerConfig,
    defaults: crate::server::limits::JobLimits,
) -> crate::server::limits::JobLimits {
    let size = |value: Option<u64>, default: usize| {
        value.map_or(default, |value| {
            usize::try_from(value).unwrap_or(usize::MAX)
        })
    };
    crate::server::limits::JobLimits {
        max_task_groups: size(server.job_max_task_groups, defaults.max_task_groups),
        max_tasks_per_group: size(server.job_max_tasks_per_group, defaults.max_tasks_per_group),
        max_placements: server.job_max_placements.unwrap_or(defaults.max_placements),
        max_job_bytes: size(server.job_max_size, defaults.max_job_bytes),
        max_request_body_bytes: size(
            server.max_request_body_size,
            defaults.max_request_body_bytes,
        ),
    }
}
