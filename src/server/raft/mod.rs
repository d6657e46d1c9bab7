//! Raft: every write to the cluster state is a [`Command`] in a replicated log.
//!
//! ```text
//!   endpoint ──► Raft::client_write(Command) ──► LogStore (redb, fsync) ──► replicate
//!                                                   │ committed
//!                                                   ▼
//!                          StateMachine::apply ──► StateStore::apply ──► ApplyObserver
//! ```
//!
//! Why openraft 0.9 and not 0.10: 0.9.25 is the newest *stable* release; 0.10 is still an alpha
//! (0.10.0-alpha.37 as of this writing) whose storage traits have changed between alphas and differ
//! from the published 0.9 documentation. The log store and state machine here follow 0.9's
//! `storage-v2` traits (`RaftLogStorage`, `RaftStateMachine`), which are the shape 0.10 keeps,
//! so moving on when 0.10 is released is a mechanical change, not a redesign.
//!
//! Invariant: one code path for `-dev` and real servers. `-dev` only swaps the redb file for
//! redb's in-memory backend and keeps snapshots in memory; a single server is a one-voter cluster.

// openraft's traits fix `StorageError` (224 bytes) as the error type of storage code.
mod command;
#[allow(clippy::result_large_err)]
mod log_store;
mod network;
mod snapshot_store;
#[allow(clippy::result_large_err)]
mod state_machine;
#[cfg(test)]
mod tests;
mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openraft::BasicNode;

pub use command::{
    AllocClientUpdate, Command, CommandResponse, PlanApplyRequest, ReapJob, ReapRequest,
};
pub use log_store::LogStore;
pub use network::{Network, router as rpc_router};
pub use snapshot_store::SnapshotGate;
pub use state_machine::{ApplyObserver, StateMachine};
pub use types::{Raft, ServerId, TypeConfig};

use crate::server::state::StateStore;

/// How the Raft node is set up.
#[derive(Clone, Debug)]
pub struct RaftOptions {
    /// `data_dir/server`, or `None` to keep everything in memory (`-dev`).
    pub dir: Option<PathBuf>,
    /// The address other servers reach this one's RPC port at.
    pub advertise_rpc: String,
    /// How many servers to wait for before bootstrapping; 1 bootstraps at once, 0 never
    /// bootstraps (the server only joins).
    pub bootstrap_expect: u32,
    /// Build a snapshot (and compact the log) after this many entries.
    pub snapshot_after_logs: u64,
    /// Entries kept in the log behind a snapshot, for followers that lag a little.
    pub trailing_logs: u64,
    /// How Raft messages reach the other servers (HTTPS with `tls.rpc`).
    pub dialer: crate::tls::Dialer,
}

/// How often a leader sends heartbeats, in milliseconds.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;

/// A running Raft node.
#[derive(Clone)]
pub struct RaftNode {
    pub raft: Raft,
    pub id: ServerId,
    pub advertise_rpc: String,
    /// When a leader last reached this server (append-entries or install-snapshot).
    pub last_leader_contact: LastContact,
}

/// When this server last heard from a leader; shared with the RPC routes that hear it.
#[derive(Clone, Debug, Default)]
pub struct LastContact(Arc<std::sync::Mutex<Option<std::time::Instant>>>);

impl LastContact {
    pub fn touch(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    }

    /// Milliseconds since the last contact; `None` if never.
    pub fn millis_since(&self) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|at| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.id)
            .field("advertise_rpc", &self.advertise_rpc)
            .finish_non_exhaustive()
    }
}

/// Opens the log and state, starts Raft and, for `bootstrap_expect = 1`, initialises a one-voter
/// cluster on first start.
pub async fn start(
    options: &RaftOptions,
    store: Arc<StateStore>,
    observer: ApplyObserver,
) -> anyhow::Result<RaftNode> {
    // The state machine first: the log store's purges wait at its snapshot gate.
    let snapshot_path = match &options.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("snapshot.bin");
            // An earlier build kept its snapshot as `snapshot.json`: the state machine reads it
            // there once and rewrites it in the current format.
            let legacy = dir.join("snapshot.json");
            if !path.exists() && legacy.exists() {
                std::fs::rename(&legacy, &path)
                    .with_context(|| format!("moving {} aside", legacy.display()))?;
            }
            Some(path)
        }
        None => None,
    };
    let state_machine = StateMachine::open(store, snapshot_path, Some(observer))
        .context("restoring the state snapshot")?;
    let gate = state_machine.snapshot_gate();
    let log_store = match &options.dir {
        Some(dir) => {
            let path = dir.join("raft.redb");
            LogStore::open(&path, gate)
                .with_context(|| format!("opening the raft log {}", path.display()))?
        }
        None => LogStore::in_memory(gate).context("creating the in-memory raft log")?,
    };
    let id = log_store
        .server_id(|| rand::random::<u64>() >> 1)
        .map_err(anyhow::Error::msg)
        .context("reading the server ID")?;
    // Timing for a LAN: a leader heartbeats every 100 ms and a follower stands for election after
    // 300-600 ms of silence, so a failover takes a second or two (Nomad's Raft defaults: 1 s
    // heartbeat timeout, 1 s election timeout).
    let config = openraft::Config {
        cluster_name: "caravan".to_owned(),
        heartbeat_interval: HEARTBEAT_INTERVAL_MS,
        election_timeout_min: 300,
        election_timeout_max: 600,
        install_snapshot_timeout: 10_000,
        snapshot_max_chunk_size: network::SNAPSHOT_CHUNK_BYTES,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(options.snapshot_after_logs),
        max_in_snapshot_log_to_keep: options.trailing_logs,
        max_payload_entries: 64,
        ..openraft::Config::default()
    }
    .validate()
    .context("raft configuration")?;
    let raft = Raft::new(
        id,
        Arc::new(config),
        Network::new(options.dialer.clone()),
        log_store,
        state_machine,
    )
    .await
    .context("starting raft")?;
    if options.bootstrap_expect == 1 && !raft.is_initialized().await.context("raft state")? {
        let members = BTreeMap::from([(id, BasicNode::new(options.advertise_rpc.clone()))]);
        raft.initialize(members)
            .await
            .context("bootstrapping a one-server raft cluster")?;
        tracing::info!(server_id = id, "bootstrapped a one-server cluster");
    }
    Ok(RaftNode {
        raft,
        id,
        advertise_rpc: options.advertise_rpc.clone(),
        last_leader_contact: LastContact::default(),
    })
}

/// Waits until some server is the leader, or `timeout` passes.
pub async fn wait_for_leader(raft: &Raft, timeout: Duration) -> Option<ServerId> {
    let mut metrics = raft.metrics();
    let wait = metrics.wait_for(|metrics| metrics.current_leader.is_some());
    match tokio::time::timeout(timeout, wait).await {
        Ok(Ok(metrics)) => metrics.current_leader,
        _ => None,
    }
}
