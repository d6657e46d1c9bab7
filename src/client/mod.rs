//! The client agent: fingerprints this node, registers it with the servers and keeps it alive
//! with heartbeats, watches the node's allocations with a blocking query, runs one alloc runner
//! per allocation, and reports their status back in batches (Nomad: `client/client.go`).
//!
//! ```text
//!                 ┌── fingerprint loop: every driver at once, each under its deadline; every 30 s
//!                 │     └─► first round done, or a driver's health changed ─► (re-)register
//!                 ├── heartbeat loop: every TTL/2..3TTL/4; 404 → register again
//!  start ─ restore persisted allocs (recover running tasks) ─ register ─┤
//!                 └── watch loop: GET allocations?index=N (blocking) ─► reconcile runners
//!  alloc runners ─► status updates ─► batcher (first at once, then at most every 200 ms)
//! ```
//!
//! Code map: `node.rs` fingerprint; `server_link.rs` the [`ServerLink`] trait and
//! `http_link.rs` its HTTP implementation; `alloc_runner/` and `task_runner/` run the work;
//! `state.rs` persists it; `api.rs` the `/v1/client/...` routes.
//!
//! Wiring, as the agent does it:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use caravan::client::{Client, ClientOptions, HttpServerLink};
//!
//! # async fn example() -> Result<(), caravan::client::ClientError> {
//! let options = ClientOptions {
//!     data_dir: "/var/lib/caravan".into(),
//!     servers: vec![String::from("http://10.0.0.1:4646")],
//!     ..ClientOptions::default()
//! };
//! let link = Arc::new(HttpServerLink::new(&options.servers));
//! let client = Client::start(options, link).await?;
//! let client_routes: axum::Router = client.router(); // merged into the agent's HTTP server
//! # drop(client_routes);
//! client.shutdown().await; // tasks keep running; the next start recovers them
//! # Ok(())
//! # }
//! ```
//!
//! Where it differs from Nomad: rotated logs are numbered newest-first (`.0` is live, see
//! `task_runner/logs_hook.rs`); templates render only `env`; artifacts come over http(s),
//! `file://` (allowlisted) and git only (no S3, GCS, Mercurial), `.tar.bz2`/`.tar.xz`/`.zst`
//! are not unpacked, and no getter sandbox process runs (writes are confined by `allocfs`);
//! exec runs a command to completion (no stdin or TTY).
//!
//! **Invariant:** shutting the client down never stops a task: runners detach, and the next
//! client on the same data dir re-attaches through `recover-task`.
//! **Boundary:** drivers are reached only through `driver_host`; servers only through
//! [`ServerLink`].

pub(crate) mod acl;
pub(crate) mod alloc_runner;
pub mod http_link;
pub mod node;
pub mod server_link;
mod service_sync;
pub mod state;
pub mod state_writer;
pub(crate) mod task_runner;

pub use alloc_runner::alloc_dir::TaskFilesConfig;
/// The task runner's hook interfaces: one trait per lifecycle phase.
pub use task_runner::hooks as task_hooks;
pub use task_runner::log_collector::CollectorMode;

#[cfg(test)]
mod fake_link;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::driver_host::{DriverHost, DriverHostConfig, DriverLimits};
use crate::structs::{AllocDesiredStatus, AllocId, Allocation, Node, NodeId};
use alloc_runner::AllocRunnerConfig;
pub use alloc_runner::AllocRunnerHandle;
pub use http_link::HttpServerLink;
pub use server_link::{AllocUpdate, HeartbeatResponse, LinkError, NodeClientAllocs, ServerLink};
use state::StateDb;
use task_runner::env_hook::NodeFacts;

/// How the agent configures its client (mapped from the agent config's `client` block).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub data_dir: PathBuf,
    /// The node's name; empty for the hostname.
    pub node_name: String,
    pub datacenter: String,
    pub region: String,
    pub node_class: String,
    pub node_pool: String,
    pub meta: BTreeMap<String, String>,
    /// The `client { options { ... } }` map (kept for fingerprinters that read it).
    pub options: BTreeMap<String, String>,
    /// `plugin "NAME" { config { ... } }` as JSON, by driver name.
    pub plugins: BTreeMap<String, serde_json::Value>,
    pub plugin_dir: Option<PathBuf>,
    /// The agent's advertised HTTP address (`Node.HTTPAddr`), e.g. `10.0.0.5:4646`.
    pub http_advertise: String,
    /// Server HTTP addresses (used by the agent to build an [`HttpServerLink`]).
    pub servers: Vec<String>,
    /// The IP tasks' ports are advertised on; detected when `None`.
    pub network_ip: Option<IpAddr>,
    pub driver_limits: DriverLimits,
    /// Least time between two status batches to the servers (Nomad: 200 ms).
    pub update_interval: Duration,
    /// `client { state_dir }`; `<data_dir>/client` when `None`.
    pub state_dir: Option<PathBuf>,
    /// `client { alloc_dir }`; `<data_dir>/alloc` when `None`.
    pub alloc_dir: Option<PathBuf>,
    /// `client { cpu_total_compute }`: overrides the fingerprinted MHz total.
    pub cpu_total_compute: Option<u32>,
    /// `client { memory_total_mb }`: overrides the fingerprinted memory.
    pub memory_total_mb: Option<u32>,
    /// `client { disk_free_mb }`: overrides the fingerprinted free disk (Nomad's option).
    pub disk_free_mb: Option<u32>,
    pub min_dynamic_port: Option<u16>,
    pub max_dynamic_port: Option<u16>,
    /// `client { reserved { ... } }`: what allocations may not use.
    pub reserved: crate::structs::NodeReservedResources,
    /// `client { host_volume "NAME" { ... } }`.
    pub host_volumes: BTreeMap<String, crate::structs::HostVolume>,
    /// `client { max_kill_timeout }` (Nomad: 30s).
    pub max_kill_timeout: Duration,
    /// What the host may do with files for tasks: `file://` artifact sources, log collectors.
    pub task_files: alloc_runner::alloc_dir::TaskFilesConfig,
    /// How often drivers are fingerprinted again (Nomad: each driver's fingerprint period, 30 s).
    pub driver_fingerprint_interval: Duration,
    /// `acl { enabled = true }`: calls to the client's own routes need a token the servers
    /// grant the route's capability ([`acl`]).
    pub acl_enabled: bool,
    /// `acl { token_ttl }`: how long a token the servers resolved is trusted.
    pub acl_token_ttl: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            data_dir: PathBuf::from("/var/lib/caravan"),
            node_name: String::new(),
            datacenter: "dc1".to_owned(),
            region: "global".to_owned(),
            node_class: String::new(),
            node_pool: "default".to_owned(),
            meta: BTreeMap::new(),
            options: BTreeMap::new(),
            plugins: BTreeMap::new(),
            plugin_dir: None,
            http_advertise: "127.0.0.1:4646".to_owned(),
            servers: Vec::new(),
            network_ip: None,
            driver_limits: DriverLimits::default(),
            update_interval: Duration::from_millis(200),
            state_dir: None,
            alloc_dir: None,
            cpu_total_compute: None,
            memory_total_mb: None,
            disk_free_mb: None,
            min_dynamic_port: None,
            max_dynamic_port: None,
            reserved: crate::structs::NodeReservedResources::default(),
            host_volumes: BTreeMap::new(),
            max_kill_timeout: Duration::from_secs(30),
            task_files: alloc_runner::alloc_dir::TaskFilesConfig::default(),
            driver_fingerprint_interval: Duration::from_secs(30),
            acl_enabled: false,
            acl_token_ttl: acl::TOKEN_TTL,
        }
    }
}

/// `caravan logmon`: runs one task stream's log collector in this process until the client
/// removes the stream's FIFO (see `task_runner/log_collector.rs`).
pub fn run_log_collector(
    alloc_dir: PathBuf,
    task: String,
    stream: String,
    max_files: usize,
    max_file_size: u64,
) -> std::io::Result<()> {
    if !task_runner::logs_hook::STREAMS.contains(&stream.as_str())
        || max_files == 0
        || max_file_size == 0
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "invalid log collector arguments: stream {stream:?}, max_files {max_files}, max_file_size {max_file_size}"
            ),
        ));
    }
    task_runner::log_collector::run_process(&task_runner::log_collector::CollectorArgs {
        alloc_dir,
        task,
        stream,
        config: task_runner::logs_hook::RotationConfig {
            max_files,
            max_file_size,
        },
    })
}

/// Why the client could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("client state in {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("driver host: {0}")]
    DriverHost(#[from] crate::driver_host::Error),
    #[error("client option {key:?} = {value:?}: {reason}")]
    Option {
        key: &'static str,
        value: String,
        reason: String,
    },
}

/// `client { options { "fingerprint.driver_timeout" = "10s" } }`: each driver's fingerprint
/// deadline.
pub const FINGERPRINT_TIMEOUT_OPTION: &str = "fingerprint.driver_timeout";

/// The driver limits with the `client { options }` that adjust them.
fn driver_limits(options: &ClientOptions) -> Result<DriverLimits, ClientError> {
    let mut limits = options.driver_limits;
    if let Some(value) = options.options.get(FINGERPRINT_TIMEOUT_OPTION) {
        let timeout = humantime::parse_duration(value).map_err(|err| ClientError::Option {
            key: FINGERPRINT_TIMEOUT_OPTION,
            value: value.clone(),
            reason: err.to_string(),
        })?;
        if timeout.is_zero() {
            return Err(ClientError::Option {
                key: FINGERPRINT_TIMEOUT_OPTION,
                value: value.clone(),
                reason: String::from("must be more than zero"),
            });
        }
        limits.fingerprint_timeout = timeout;
    }
    Ok(limits)
}

/// What the loops, the runners and the API share.
pub(crate) struct Shared {
    pub(crate) data_dir: PathBuf,
    pub(crate) alloc_root: PathBuf,
    pub(crate) max_kill_timeout: Duration,
    pub(crate) task_files: Arc<alloc_runner::alloc_dir::TaskFilesConfig>,
    pub(crate) node: Mutex<Node>,
    /// The node as tasks see it (`${attr.*}`...), replaced when the drivers' fingerprints change.
    pub(crate) facts: Mutex<Arc<NodeFacts>>,
    pub(crate) driver_host: DriverHost,
    pub(crate) state_db: StateDb,
    pub(crate) runners: Mutex<HashMap<AllocId, AllocRunnerHandle>>,
    pub(crate) updates: mpsc::UnboundedSender<AllocUpdate>,
    pub(crate) services: mpsc::UnboundedSender<alloc_runner::services::ServiceSync>,
    pub(crate) link: Arc<dyn ServerLink>,
    /// Each device plugin's last fingerprint error, logged once until it changes.
    pub(crate) device_errors: Mutex<BTreeMap<String, String>>,
    /// Whether the client's routes check the caller's token.
    pub(crate) acl_enabled: bool,
    /// Tokens the servers resolved lately.
    pub(crate) tokens: acl::TokenCache,
}

impl Shared {
    pub(crate) fn node_id(&self) -> NodeId {
        self.lock_node().id.clone()
    }

    fn lock_node(&self) -> std::sync::MutexGuard<'_, Node> {
        self.node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn lock_runners(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<AllocId, AllocRunnerHandle>> {
        self.runners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn runner(&self, alloc_id: &str) -> Option<AllocRunnerHandle> {
        self.lock_runners().get(&AllocId::from(alloc_id)).cloned()
    }

    fn spawn_runner(
        self: &Arc<Self>,
        alloc: Arc<Allocation>,
        restored: BTreeMap<String, state::TaskRunnerState>,
    ) {
        let handle = alloc_runner::spawn(AllocRunnerConfig {
            alloc: Arc::clone(&alloc),
            alloc_root: self.alloc_root.clone(),
            max_kill_timeout: self.max_kill_timeout,
            task_files: Arc::clone(&self.task_files),
            node_id: self.node_id(),
            driver_host: self.driver_host.clone(),
            facts: Arc::clone(
                &self
                    .facts
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            ),
            state_db: self.state_db.clone(),
            restored_tasks: restored,
            updates: self.updates.clone(),
            services: self.services.clone(),
            link: Arc::clone(&self.link),
        });
        self.lock_runners().insert(alloc.id.clone(), handle);
    }
}

/// The client entry point.
#[derive(Debug)]
pub struct Client;

/// A running client. Dropping it without [`ClientHandle::shutdown`] leaves its loops running.
pub struct ClientHandle {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle")
            .field("node_id", &self.shared.node_id())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Fingerprints the node, restores persisted allocations (re-attaching to their running
    /// tasks), then registers, heartbeats and watches allocations in the background.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn start(
        options: ClientOptions,
        link: Arc<dyn ServerLink>,
    ) -> Result<ClientHandle, ClientError> {
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(|| options.data_dir.join("client"));
        let alloc_root = options
            .alloc_dir
            .clone()
            .unwrap_or_else(|| options.data_dir.join("alloc"));
        let state_db = StateDb::open(&state_dir).map_err(|source| ClientError::State {
            path: state_dir.clone(),
            source,
        })?;
        let state_error = |source| ClientError::State {
            path: state_db.root().to_path_buf(),
            source,
        };
        let node_id = state_db.node_id().map_err(state_error)?;
        let secret_id = state_db.secret_id().map_err(state_error)?;
        let driver_host = DriverHost::new(DriverHostConfig {
            cache_dir: Some(options.data_dir.join("cache")),
            plugin_dir: options.plugin_dir.clone(),
            plugins: options.plugins.clone(),
            limits: driver_limits(&options)?,
            device_probe_path: None,
        })?;
        let mut facts = node::HostFacts::gather(&options.data_dir, options.network_ip);
        if let Some(total) = options.cpu_total_compute.filter(|total| *total > 0) {
            facts.cpu_total_compute = Some(u64::from(total));
        }
        if let Some(memory_mb) = options.memory_total_mb.filter(|memory| *memory > 0) {
            facts.memory_bytes = u64::from(memory_mb) << 20;
        }
        if let Some(disk_mb) = options.disk_free_mb.filter(|disk| *disk > 0) {
            facts.disk_free_bytes = u64::from(disk_mb) << 20;
        }
        let identity = node::NodeIdentity {
            id: node_id,
            secret_id,
            name: if options.node_name.is_empty() {
                facts.hostname.clone()
            } else {
                options.node_name.clone()
            },
            datacenter: options.datacenter.clone(),
            node_class: options.node_class.clone(),
            node_pool: options.node_pool.clone(),
            http_addr: options.http_advertise.clone(),
            meta: options.meta.clone(),
        };
        // Drivers are fingerprinted by the fingerprint loop: a slow or hung driver delays neither
        // the start-up (so the agent's API answers at once) nor the heartbeats.
        let mut node = node::fingerprint_node(&identity, &facts);
        if let Some(port) = options.min_dynamic_port {
            node.node_resources.min_dynamic_port = i32::from(port);
        }
        if let Some(port) = options.max_dynamic_port {
            node.node_resources.max_dynamic_port = i32::from(port);
        }
        node.reserved_resources = options.reserved.clone();
        node.host_volumes = options.host_volumes.clone();
        tracing::info!(node_id = %node.id, name = %node.name, "node fingerprinted");
        let (updates_tx, updates_rx) = mpsc::unbounded_channel();
        let (services_tx, services_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            data_dir: options.data_dir.clone(),
            alloc_root,
            max_kill_timeout: options.max_kill_timeout,
            task_files: Arc::new(options.task_files.clone()),
            facts: Mutex::new(Arc::new(NodeFacts {
                node: node.clone(),
                region: options.region.clone(),
            })),
            node: Mutex::new(node),
            driver_host,
            state_db: state_db.clone(),
            runners: Mutex::new(HashMap::new()),
            updates: updates_tx,
            services: services_tx,
            link,
            device_errors: Mutex::new(BTreeMap::new()),
            acl_enabled: options.acl_enabled,
            tokens: acl::TokenCache::new(options.acl_token_ttl),
        });
        for persisted in state_db.load_allocs() {
            tracing::info!(alloc_id = %persisted.alloc.id, "restoring allocation");
            shared.spawn_runner(
                Arc::new(persisted.alloc),
                persisted.tasks.into_iter().collect(),
            );
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (registered_tx, registered_rx) = watch::channel(None::<Duration>);
        let (drivers_tx, drivers_rx) = watch::channel(0u64);
        let loops = vec![
            tokio::spawn(fingerprint_drivers_loop(
                Arc::clone(&shared),
                drivers_tx,
                options.driver_fingerprint_interval,
                shutdown_rx.clone(),
            )),
            tokio::spawn(register_and_heartbeat(
                Arc::clone(&shared),
                drivers_rx,
                registered_tx,
                shutdown_rx.clone(),
            )),
            tokio::spawn(watch_allocations(
                Arc::clone(&shared),
                registered_rx,
                shutdown_rx.clone(),
            )),
            tokio::spawn(service_sync::sync_services(
                Arc::clone(&shared),
                services_rx,
                shutdown_rx.clone(),
            )),
            tokio::spawn(send_updates(
                Arc::clone(&shared),
                updates_rx,
                options.update_interval,
                shutdown_rx,
            )),
        ];
        Ok(ClientHandle {
            shared,
            shutdown: shutdown_tx,
            loops,
        })
    }
}

impl ClientHandle {
    pub fn node_id(&self) -> NodeId {
        self.shared.node_id()
    }

    /// The node as registered.
    pub fn node(&self) -> Node {
        self.shared.lock_node().clone()
    }

    /// The runner of an allocation on this node.
    pub fn alloc_runner(&self, alloc_id: &str) -> Option<AllocRunnerHandle> {
        self.shared.runner(alloc_id)
    }

    /// The `/v1/client/...` routes, to mount into the agent's HTTP server.
    /// The servers the client's link calls now (`host:port`), read at each call: what an agent
    /// forwards API requests to.
    pub fn server_source(&self) -> Box<dyn Fn() -> Vec<String> + Send + Sync> {
        let shared = Arc::clone(&self.shared);
        Box::new(move || shared.link.servers())
    }

    /// The client's routes, for an agent whose server serves the rest of the API.
    pub fn router(&self) -> axum::Router {
        crate::api::routes::client::router(Arc::clone(&self.shared), false)
    }

    /// The client's routes with the agent's own (`/v1/agent/monitor`), for a client-only agent.
    pub fn standalone_router(&self) -> axum::Router {
        crate::api::routes::client::router(Arc::clone(&self.shared), true)
    }

    /// Stops every allocation's tasks (kill signal, then SIGKILL after the kill timeout), waits
    /// for them, then stops the loops. For `-dev` agents, whose data dir goes away with them
    /// (Nomad: dev mode destroys allocations on shutdown).
    pub async fn shutdown_and_stop_tasks(self) {
        let runners: Vec<AllocRunnerHandle> =
            self.shared.lock_runners().values().cloned().collect();
        for runner in &runners {
            runner.stop();
        }
        for runner in &runners {
            runner.wait_done().await;
        }
        self.shutdown().await;
    }

    /// Stops the loops and detaches every runner; the tasks keep running.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        for runner in self.shared.lock_runners().values() {
            runner.detach();
        }
        for join in self.loops {
            let _ = join.await;
        }
        // The next client on this data dir reads what the runners last asked for.
        self.shared.state_db.flushed().wait().await;
    }
}

/// The delay before the next heartbeat: between half and three quarters of the TTL, so a late
/// or retried heartbeat still arrives in time (Nomad adds a grace period on the server side).
fn heartbeat_delay(ttl: Duration) -> Duration {
    let ttl = if ttl.is_zero() {
        Duration::from_secs(10)
    } else {
        ttl
    };
    ttl / 2 + ttl.mul_f64(rand::random::<f64>() / 4.0)
}

fn retry_delay(attempt: u32) -> Duration {
    let base = Duration::from_millis(250) * 2u32.saturating_pow(attempt.min(5));
    base.min(Duration::from_secs(10)) + Duration::from_millis(rand::random::<u64>() % 250)
}

/// Sleeps `delay`; false if the client shut down meanwhile.
async fn sleep_or_shutdown(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}

async fn register(shared: &Shared, shutdown: &mut watch::Receiver<bool>) -> Option<Duration> {
    let mut attempt = 0;
    loop {
        let node = shared.lock_node().clone();
        match shared.link.register(&node).await {
            Ok(response) => {
                tracing::info!(node_id = %node.id, ttl = ?response.heartbeat_ttl, "node registered");
                return Some(response.heartbeat_ttl);
            }
            Err(err) => {
                tracing::warn!(error = %err, "node registration failed");
                if !sleep_or_shutdown(retry_delay(attempt), shutdown).await {
                    return None;
                }
                attempt += 1;
            }
        }
    }
}

#[tracing::instrument(level = "debug", skip_all)]
async fn register_and_heartbeat(
    shared: Arc<Shared>,
    mut drivers: watch::Receiver<u64>,
    registered: watch::Sender<Option<Duration>>,
    mut shutdown: watch::Receiver<bool>,
) {
    // The first registration carries the drivers' first fingerprints (as Nomad waits for its
    // first driver fingerprints): one round, each driver under its own deadline.
    tokio::select! {
        result = drivers.wait_for(|round| *round > 0) => if result.is_err() { return },
        _ = shutdown.wait_for(|stop| *stop) => return,
    }
    drivers.mark_unchanged();
    let Some(mut ttl) = register(&shared, &mut shutdown).await else {
        return;
    };
    registered.send_replace(Some(ttl));
    let node_id = shared.node_id();
    let mut failures = 0;
    let mut drivers_open = true;
    loop {
        let delay = if failures == 0 {
            heartbeat_delay(ttl)
        } else {
            retry_delay(failures)
        };
        let drivers_changed = tokio::select! {
            () = tokio::time::sleep(delay) => false,
            result = drivers.changed(), if drivers_open => {
                drivers_open = result.is_ok();
                drivers_open
            }
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        if drivers_changed {
            tracing::info!("driver health or devices changed; updating the node");
            let Some(new_ttl) = register(&shared, &mut shutdown).await else {
                return;
            };
            ttl = new_ttl;
            continue;
        }
        match shared.link.heartbeat(&node_id).await {
            Ok(response) => {
                ttl = response.heartbeat_ttl;
                failures = 0;
            }
            Err(LinkError::NodeUnknown(_)) => {
                tracing::warn!("servers do not know this node; registering again");
                let Some(new_ttl) = register(&shared, &mut shutdown).await else {
                    return;
                };
                ttl = new_ttl;
                failures = 0;
            }
            Err(err) => {
                tracing::warn!(error = %err, "heartbeat failed");
                failures += 1;
            }
        }
    }
}

/// Fingerprints the drivers now and every `interval`, apart from the
/// heartbeats; bumps `rounds` after the first round and after each round that changed a driver.
#[tracing::instrument(level = "debug", skip_all)]
async fn fingerprint_drivers_loop(
    shared: Arc<Shared>,
    rounds: watch::Sender<u64>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut first = true;
    loop {
        let changed = tokio::select! {
            changed = refresh_drivers(&shared) => changed,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        if changed || first {
            rounds.send_modify(|round| *round += 1);
        }
        first = false;
        if !sleep_or_shutdown(interval, &mut shutdown).await {
            return;
        }
    }
}

/// Fingerprints the drivers and device plugins again; true if any driver's detection or health
/// or the devices changed, in which case the node (drivers, `driver.*` attributes, devices) is
/// updated.
async fn refresh_drivers(shared: &Shared) -> bool {
    let (drivers, devices) = tokio::join!(
        node::fingerprint_drivers(&shared.driver_host),
        node::fingerprint_devices(&shared.driver_host, &shared.device_errors),
    );
    let mut node = shared.lock_node();
    let same = |a: &crate::structs::DriverInfo, b: &crate::structs::DriverInfo| {
        a.detected == b.detected
            && a.healthy == b.healthy
            && a.health_description == b.health_description
            && a.attributes == b.attributes
    };
    let changed = drivers.len() != node.drivers.len()
        || drivers.iter().any(|(name, info)| {
            node.drivers
                .get(name)
                .is_none_or(|known| !same(known, info))
        });
    let devices_changed = node.node_resources.devices != devices;
    if devices_changed {
        node.node_resources.devices = devices;
    }
    if changed || devices_changed {
        node::set_driver_attributes(&mut node.attributes, &drivers);
        node.drivers = drivers;
        let mut facts = shared
            .facts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *facts = Arc::new(NodeFacts {
            node: node.clone(),
            region: facts.region.clone(),
        });
    }
    changed || devices_changed
}

/// Watches the node's allocations as Nomad's client does (`client.watchAllocations`): a blocking
/// query on the node's own index answers with IDs and `AllocModifyIndex`es, and only the
/// allocations whose index moved since they were last seen are pulled in full.
#[tracing::instrument(level = "debug", skip_all)]
async fn watch_allocations(
    shared: Arc<Shared>,
    mut registered: watch::Receiver<Option<Duration>>,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::select! {
        result = registered.wait_for(Option::is_some) => if result.is_err() { return },
        _ = shutdown.wait_for(|stop| *stop) => return,
    }
    let node_id = shared.node_id();
    let mut index = 0u64;
    let mut first = true;
    let mut failures = 0;
    // The AllocModifyIndex of every allocation as last pulled.
    let mut seen: HashMap<AllocId, u64> = HashMap::new();
    loop {
        let asked = Instant::now();
        let result = tokio::select! {
            result = pull_changed(&shared, &node_id, index, &seen) => result,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match result {
            Ok((listed, changed)) => {
                failures = 0;
                // An index that went backwards means the servers lost their state: their answer
                // is the truth to reconcile with.
                if !first && listed.index == index && changed.is_empty() {
                    // The server's wait elapsed without a change. A server that does not block
                    // would make this a hot loop: pace it.
                    if asked.elapsed() < Duration::from_millis(50)
                        && !sleep_or_shutdown(Duration::from_secs(1), &mut shutdown).await
                    {
                        return;
                    }
                    continue;
                }
                first = false;
                index = listed.index.max(1);
                seen.retain(|alloc_id, _| listed.allocs.contains_key(alloc_id));
                for alloc in &changed {
                    seen.insert(alloc.id.clone(), alloc.alloc_modify_index);
                }
                reconcile(&shared, &listed.allocs, changed);
            }
            Err(err) => {
                tracing::warn!(error = %err, "watching allocations failed");
                failures += 1;
                if !sleep_or_shutdown(retry_delay(failures), &mut shutdown).await {
                    return;
                }
            }
        }
    }
}

/// One round of the watch: the node's allocation IDs past `index`, and those of them whose
/// `AllocModifyIndex` differs from what was `seen`, pulled in full.
async fn pull_changed(
    shared: &Shared,
    node_id: &NodeId,
    index: u64,
    seen: &HashMap<AllocId, u64>,
) -> Result<(NodeClientAllocs, Vec<Allocation>), LinkError> {
    let listed = shared.link.watch_allocs(node_id, index).await?;
    let stale: Vec<AllocId> = listed
        .allocs
        .iter()
        .filter(|(alloc_id, modify_index)| seen.get(*alloc_id) != Some(*modify_index))
        .map(|(alloc_id, _)| alloc_id.clone())
        .collect();
    let changed = if stale.is_empty() {
        Vec::new()
    } else {
        shared.link.pull_allocs(node_id, &stale).await?
    };
    Ok((listed, changed))
}

/// Starts runners for new allocations, hands updates to existing ones, and stops and removes
/// the runners of allocations the servers no longer list (Nomad: `client.runAllocs`).
/// `listed` is every allocation of the node; `changed` those pulled because they changed.
fn reconcile(shared: &Arc<Shared>, listed: &BTreeMap<AllocId, u64>, changed: Vec<Allocation>) {
    for alloc in changed {
        let existing = shared.runner(alloc.id.as_str());
        match existing {
            Some(runner) => {
                let current = runner.alloc();
                if current.desired_status != alloc.desired_status
                    || current.alloc_modify_index != alloc.alloc_modify_index
                {
                    let mut alloc = alloc;
                    // Servers may leave the job out of allocations that did not change job
                    // version (Nomad does); the runner keeps the one it has.
                    if alloc.job.is_none() {
                        alloc.job = current.job.clone();
                    }
                    runner.update(Arc::new(alloc));
                }
            }
            None => {
                if alloc.desired_status == AllocDesiredStatus::Run
                    && !alloc.client_status.is_terminal()
                {
                    tracing::info!(alloc_id = %alloc.id, "starting allocation");
                    shared.spawn_runner(Arc::new(alloc), BTreeMap::new());
                }
            }
        }
    }
    let removed: Vec<(AllocId, AllocRunnerHandle)> = shared
        .lock_runners()
        .iter()
        .filter(|(id, _)| !listed.contains_key(*id))
        .map(|(id, runner)| (id.clone(), runner.clone()))
        .collect();
    for (alloc_id, runner) in removed {
        tracing::info!(alloc_id = %alloc_id, "allocation removed by the servers; destroying it");
        runner.stop();
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            runner.wait_done().await;
            alloc_runner::destroy(&runner, &shared.state_db).await;
            shared.lock_runners().remove(&alloc_id);
        });
    }
}

/// Sends status updates in batches, each allocation's latest update only (Nomad:
/// `client.allocSync`, every 200 ms). A batch leaves at once when the channel was quiet or an
/// allocation's client status changed (pending → running → complete/failed), so the servers learn
/// of transitions without waiting; task-event chatter in between is coalesced for `interval`.
#[tracing::instrument(level = "debug", skip_all)]
async fn send_updates(
    shared: Arc<Shared>,
    mut updates: mpsc::UnboundedReceiver<AllocUpdate>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut pending: BTreeMap<AllocId, AllocUpdate> = BTreeMap::new();
    let mut sent_status: HashMap<AllocId, crate::structs::AllocClientStatus> = HashMap::new();
    let mut failures = 0;
    let mut stopping = false;
    loop {
        if stopping {
            flush(&shared, &mut updates, &mut pending).await;
            return;
        }
        if pending.is_empty() {
            tokio::select! {
                update = updates.recv() => match update {
                    Some(update) => { pending.insert(update.id.clone(), update); }
                    None => return,
                },
                _ = shutdown.wait_for(|stop| *stop) => stopping = true,
            }
            if stopping {
                flush(&shared, &mut updates, &mut pending).await;
                return;
            }
        }
        while let Ok(update) = updates.try_recv() {
            pending.insert(update.id.clone(), update);
        }
        let batch = next_batch(&pending);
        match shared.link.update_allocs(&batch).await {
            Ok(()) => {
                failures = 0;
                if sent_status.len() > 100_000 {
                    sent_status.clear();
                }
                for update in &batch {
                    pending.remove(&update.id);
                    sent_status.insert(update.id.clone(), update.client_status);
                }
                // More than one request's worth was pending (a stop of thousands): the rest now.
                if !pending.is_empty() {
                    continue;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, n_allocs = batch.len(), "failed to send allocation updates");
                failures += 1;
                if !sleep_or_shutdown(retry_delay(failures), &mut shutdown).await {
                    return;
                }
                continue;
            }
        }
        // Coalesce until the interval ends, unless a status transition arrives.
        let window_end = tokio::time::Instant::now() + interval;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(window_end) => break,
                _ = shutdown.wait_for(|stop| *stop) => {
                    stopping = true;
                    break;
                }
                update = updates.recv() => match update {
                    Some(update) => {
                        let transition = sent_status.get(&update.id) != Some(&update.client_status);
                        pending.insert(update.id.clone(), update);
                        if transition {
                            break;
                        }
                    }
                    None => return,
                },
            }
        }
    }
}

/// One last attempt, bounded in time, to send what is pending when the client shuts down.
async fn flush(
    shared: &Shared,
    updates: &mut mpsc::UnboundedReceiver<AllocUpdate>,
    pending: &mut BTreeMap<AllocId, AllocUpdate>,
) {
    while let Ok(update) = updates.try_recv() {
        pending.insert(update.id.clone(), update);
    }
    if pending.is_empty() {
        return;
    }
    let send_all = async {
        while !pending.is_empty() {
            let batch = next_batch(pending);
            shared.link.update_allocs(&batch).await?;
            for update in &batch {
                pending.remove(&update.id);
            }
        }
        Ok::<(), LinkError>(())
    };
    match tokio::time::timeout(Duration::from_secs(2), send_all).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "failed to send final allocation updates"),
        Err(_) => tracing::warn!("timed out sending final allocation updates"),
    }
}

/// Status updates sent in one request at most: each is about 1 KB (task states and their
/// events), so a stop of 10,000 allocations in one request would pass the servers' body limit
/// (`server.max_request_body_size`, 8 MiB by default) and be refused every time.
const MAX_UPDATES_PER_REQUEST: usize = 1_000;

/// The next request's worth of pending updates, in allocation ID order.
fn next_batch(pending: &BTreeMap<AllocId, AllocUpdate>) -> Vec<AllocUpdate> {
    pending
        .values()
        .take(MAX_UPDATES_PER_REQUEST)
        .cloned()
        .collect()
}
