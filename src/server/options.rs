//! What a server is started with: a plain struct the agent's configuration maps onto.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::server::cluster::JoinOptions;
use crate::server::heartbeat::HeartbeatConfig;
use crate::server::limits::JobLimits;
use crate::structs::SchedulerConfiguration;

/// How to run a server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The agent's data dir; the server keeps `data_dir/server/`. Unused with `dev`.
    pub data_dir: Option<PathBuf>,
    /// Where the HTTP API listens (port 0 picks a free one).
    pub http_addr: SocketAddr,
    /// Where Raft traffic between servers arrives (port 0 picks a free one).
    pub rpc_addr: SocketAddr,
    /// How many servers form the cluster; 1 bootstraps a one-server cluster at once, 0 never
    /// bootstraps (the server joins a cluster through `join`).
    pub bootstrap_expect: u32,
    /// The other servers to find and join (`server_join`).
    pub join: JoinOptions,
    pub node_name: String,
    pub region: String,
    pub datacenter: String,
    /// Keep everything in memory (the Raft log in redb's in-memory backend).
    pub dev: bool,
    /// Scheduler workers; 0 means one per core.
    pub num_workers: usize,
    pub heartbeat: HeartbeatConfig,
    /// Build a Raft snapshot and compact the log after this many entries (Nomad's
    /// `raft_snapshot_threshold`).
    pub snapshot_after_logs: u64,
    /// Entries kept behind a snapshot (Nomad's `raft_trailing_logs`).
    pub trailing_logs: u64,
    /// Limits on the work one request can cause.
    pub limits: JobLimits,
    /// The scheduler configuration a new cluster starts with (`default_scheduler_config`).
    pub default_scheduler_config: SchedulerConfiguration,
    /// Enforce ACLs (`acl { enabled = true }`): every API call needs a token its route allows.
    pub acl_enabled: bool,
    /// How often and how old finished objects are garbage collected (`*_gc_threshold`).
    pub gc: crate::server::core_gc::GcConfig,
    /// The agent's `tls` block: HTTPS listeners, and how this server reaches the others.
    pub tls: Option<std::sync::Arc<crate::tls::AgentTls>>,
    /// The agent runs a client beside this server (`-dev`, or both blocks enabled): its
    /// `/v1/agent/health` answers for both.
    pub local_client: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            data_dir: None,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 4646)),
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 4647)),
            bootstrap_expect: 1,
            join: JoinOptions::default(),
            node_name: hostname(),
            region: "global".to_owned(),
            datacenter: "dc1".to_owned(),
            dev: false,
            num_workers: 0,
            heartbeat: HeartbeatConfig::default(),
            snapshot_after_logs: 20_000,
            trailing_logs: 1000,
            limits: JobLimits::default(),
            default_scheduler_config: SchedulerConfiguration::default(),
            acl_enabled: false,
            gc: crate::server::core_gc::GcConfig::default(),
            tls: None,
            local_client: false,
        }
    }
}

/// The machine's host name, as Nomad names an agent by default.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "caravan".to_owned())
}
