//! The server: Raft-replicated cluster state, evaluations, scheduler workers, the plan applier and
//! node heartbeats.
//!
//! ```text
//!  API ─► endpoints ─► Raft (Command) ─► StateMachine ─► StateStore ──► ApplyObserver
//!                                                                     │ (leader only)
//!             ┌───────────────────────────────────────────────────────┘
//!             ▼
//!   EvalBroker ─► workers (N threads) ─► scheduler::process_eval ─► PlanQueue ─► plan applier
//!        ▲                                                                      │ PlanApply
//!   BlockedEvals ◄── capacity changes                         Raft ◄────────────┘
//!   Heartbeats ── missed TTL ─► NodeUpdateStatus(down) + evaluations
//! ```
//!
//! Invariant: every write goes through Raft, on `-dev` too. Invariant: the broker, blocked
//! evaluations, heartbeat timers and the plan applier act only on the leader; followers only apply.
//!
//! Nomad: `nomad/server.go`, `nomad/leader.go`.

pub mod acl;
pub mod blocked_evals;
pub mod broker;
pub mod cluster;
pub mod core_gc;
mod deployment_watcher;
pub mod deployments;
pub mod disconnect;
pub mod dispatch;
mod drainer;
pub mod endpoints;
pub mod heartbeat;
pub mod job_plan;
pub mod keyring;
pub mod keyring_replication;
mod leader;
pub mod limits;
pub mod namespaces;
pub mod node_identity;
pub mod node_pools;
pub mod operator_snapshot;
mod options;
pub mod periodic;
pub mod plan_apply;
pub mod raft;
pub mod scaling;
pub mod scheduler_config;
pub mod services;
pub mod state;
pub mod variables;
pub mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

pub use endpoints::ServerError;
pub use options::ServerOptions;

use self::blocked_evals::BlockedEvals;
use self::broker::{BrokerConfig, EvalBroker};
use self::heartbeat::Heartbeats;
use self::plan_apply::PlanQueue;
use self::raft::{ApplyObserver, RaftNode};
use self::state::{ApplyEffects, StateStore};
use self::worker::SchedulerFn;
use crate::structs::EvalStatus;

/// Unix nanoseconds now: the one clock of the server, read outside Raft apply.
pub fn now_unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A running server.
pub struct Server {
    pub options: ServerOptions,
    pub store: Arc<StateStore>,
    pub raft: RaftNode,
    /// How this server reaches the others (their RPC ports): Raft, joining, forwarding.
    pub dialer: crate::tls::Dialer,
    pub broker: Arc<EvalBroker>,
    pub blocked: Arc<BlockedEvals>,
    pub heartbeats: Arc<Heartbeats>,
    pub plan_queue: PlanQueue,
    /// The scheduler entry point the workers and `job plan` run.
    pub scheduler: SchedulerFn,
    /// The root keys that seal variables ([`keyring`]).
    pub keyring: Arc<keyring::Keyring>,
    shutdown: Arc<AtomicBool>,
    shutdown_notify: Arc<tokio::sync::Notify>,
    workers: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("node_name", &self.options.node_name)
            .field("raft_id", &self.raft.id)
            .finish_non_exhaustive()
    }
}

/// Routes what an apply changed to the leader's machinery.
fn apply_observer(
    broker: Arc<EvalBroker>,
    blocked: Arc<BlockedEvals>,
    heartbeats: Arc<Heartbeats>,
) -> ApplyObserver {
    Arc::new(move |effects: ApplyEffects| {
        if let Some(config) = &effects.scheduler_config {
            broker.set_paused(config.pause_eval_broker);
        }
        if !broker.enabled() {
            return;
        }
        let now = now_unix_nanos();
        // Capacity first: an evaluation blocked by this same apply planned before it.
        if effects.capacity_changed {
            for eval in blocked.unblock_all(effects.index) {
                broker.enqueue(eval, now);
            }
        }
        for eval in effects.evals {
            match eval.status {
                EvalStatus::Pending => broker.enqueue(eval, now),
                EvalStatus::Blocked => {
                    if let Some(missed) = blocked.block(eval) {
                        broker.enqueue(missed, now);
                    }
                }
                _ => blocked.untrack(&eval),
            }
        }
        for node in effects.nodes {
            heartbeats.node_changed(&node);
        }
    })
}

impl Server {
    /// Starts Raft, the leader's machinery and `options.num_workers` scheduler workers.
    pub async fn start(
        options: ServerOptions,
        scheduler: SchedulerFn,
    ) -> anyhow::Result<Arc<Self>> {
        let store = Arc::new(StateStore::new());
        let broker = Arc::new(EvalBroker::new(BrokerConfig::default()));
        let blocked = Arc::new(BlockedEvals::default());
        let heartbeats = Arc::new(Heartbeats::new(options.heartbeat.clone()));
        let observer = apply_observer(broker.clone(), blocked.clone(), heartbeats.clone());
        let dialer = crate::tls::Dialer::new(
            options.tls.as_deref(),
            crate::tls::Dial::Servers,
            Duration::from_secs(1),
        )
        .context("building the client to the other servers")?;
        let raft_options = raft::RaftOptions {
            dir: if options.dev {
                None
            } else {
                Some(
                    options
                        .data_dir
                        .clone()
                        .context("a server needs a data_dir (or -dev)")?
                        .join("server"),
                )
            },
            advertise_rpc: options.rpc_addr.to_string(),
            bootstrap_expect: options.bootstrap_expect,
            snapshot_after_logs: options.snapshot_after_logs,
            trailing_logs: options.trailing_logs,
            dialer: dialer.clone(),
        };
        let keyring = match &raft_options.dir {
            Some(dir) => keyring::Keyring::open(&dir.join("keystore"))?,
            None => keyring::Keyring::in_memory(),
        };
        let raft_node = raft::start(&raft_options, store.clone(), observer).await?;
        let (plan_queue, plan_receiver) = PlanQueue::new();
        let server = Arc::new(Self {
            options,
            store,
            raft: raft_node,
            dialer,
            broker,
            blocked,
            heartbeats,
            plan_queue,
            scheduler,
            keyring: Arc::new(keyring),
            shutdown: Arc::new(AtomicBool::new(false)),
            shutdown_notify: Arc::new(tokio::sync::Notify::new()),
            workers: std::sync::Mutex::new(Vec::new()),
        });
        tokio::spawn(plan_apply::run(server.clone(), plan_receiver));
        tokio::spawn(leader::monitor_leadership(server.clone()));
        tokio::spawn(keyring_replication::replicate(server.clone()));
        if server.options.bootstrap_expect != 1 || !server.options.join.addresses.is_empty() {
            tokio::spawn(cluster::retry_join(
                server.clone(),
                server.options.join.clone(),
            ));
        }
        let num_workers = if server.options.num_workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            server.options.num_workers
        };
        let handles = worker::spawn_workers(&server, num_workers, scheduler)?;
        *server
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = handles;
        Ok(server)
    }

    /// True once shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Resolves when shutdown begins.
    pub async fn shutdown_requested(&self) {
        let notified = self.shutdown_notify.notified();
        if self.is_shutting_down() {
            return;
        }
        notified.await;
    }

    /// Stops the workers and Raft.
    pub async fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
        self.shutdown_notify.notify_waiters();
        self.broker.set_enabled(false);
        let handles = std::mem::take(
            &mut *self
                .workers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        // Workers poll the shutdown flag at least every dequeue timeout.
        let _ = tokio::task::spawn_blocking(move || {
            for handle in handles {
                let _ = handle.join();
            }
        })
        .await;
        if let Err(error) = self.raft.raft.shutdown().await {
            tracing::warn!(error = %error, "raft shutdown failed");
        }
    }

    /// True if this server is the Raft leader.
    pub fn is_leader(&self) -> bool {
        self.raft.raft.metrics().borrow().current_leader == Some(self.raft.id)
    }

    /// The leader's RPC address, if there is a leader.
    pub fn leader_addr(&self) -> Option<String> {
        let metrics = self.raft.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|node| node.addr.clone())
    }

    /// The RPC addresses of the voters.
    pub fn peers(&self) -> Vec<String> {
        let metrics = self.raft.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(|node| node.addr.clone()))
            .collect()
    }

    /// Milliseconds since a leader last reached this server (Nomad: `X-Nomad-LastContact`); 0 on
    /// the leader and on a server no leader has reached yet.
    pub fn last_contact_ms(&self) -> u64 {
        if self.is_leader() {
            return 0;
        }
        self.raft.last_leader_contact.millis_since().unwrap_or(0)
    }

    /// Waits until this server leads or `timeout` passes.
    pub async fn wait_for_leadership(&self, timeout: Duration) -> bool {
        let mut metrics = self.raft.raft.metrics();
        let id = self.raft.id;
        let wait = metrics.wait_for(|metrics| metrics.current_leader == Some(id));
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }
}
