//! The state store: the cluster state the Raft state machine applies commands to.
//!
//! ```text
//!   Raft apply ──► StateStore::apply(index, command) ──► Tables (imbl persistent maps)
//!                        │                                   │ snapshot(): O(1) clone
//!                        ├─► watch<TableIndexes>  (blocking queries wake)
//!                        ├─► broadcast<EventBatch> (event stream)
//!                        └─► ApplyEffects (evals for the broker, capacity freed, node changes)
//! ```
//!
//! Invariant: `apply` is deterministic — no clock, no randomness, no I/O; everything it needs is in
//! the command. Invariant: readers never block writers for longer than an `Arc` clone: a
//! [`StateSnapshot`] is a copy of the tables that later writes do not disturb.
//!
//! Nomad: `nomad/state/state_store.go` (one file per resource here, as `state_store_<r>.go`).

mod acl;
mod allocs;
mod apply;
mod deployments;
pub mod error;
mod evals;
pub mod events;
mod jobs;
mod namespaces;
mod node_pools;
mod nodes;
mod persist;
mod scaling;
mod scheduler_config;
mod services;
mod snapshot;
mod tables;
#[cfg(test)]
mod tests;
mod variables;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{broadcast, watch};

use crate::structs::{Evaluation, Node, NodeId};

pub use acl::secret_hash;
pub use apply::ApplyEffects;
#[cfg(test)]
pub(crate) use deployments::rfc3339_of;
pub use error::{ApplyError, ObjectKind};
pub use events::{Event, EventBatch, EventPayload, Topic};
pub use persist::{PersistedAlloc, PersistedState, read_state, write_state};
pub use services::alloc_service_prefix;
pub use snapshot::StateSnapshot;
pub use tables::{JobKey, Table, TableIndexes, Tables, job_key};

/// An error of a state read or restore.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state snapshot is malformed: {0}")]
    MalformedSnapshot(#[from] serde_json::Error),
}

/// The server's state: the tables and the channels that announce their changes.
pub struct StateStore {
    tables: RwLock<Tables>,
    indexes: watch::Sender<TableIndexes>,
    events: broadcast::Sender<Arc<EventBatch>>,
    /// Per node with a client watching, its allocation index: an apply wakes only the watches
    /// of the nodes whose allocations it changed.
    node_allocs: Mutex<HashMap<NodeId, watch::Sender<u64>>>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("indexes", &*self.indexes.borrow())
            .finish_non_exhaustive()
    }
}

impl Default for StateStore {
    fn default() -> Self {
        Self::new()
    }
}

impl StateStore {
    pub fn new() -> Self {
        let (indexes, _) = watch::channel(TableIndexes::default());
        let (events, _) = broadcast::channel(1024);
        Self {
            tables: RwLock::new(Tables::default()),
            indexes,
            events,
            node_allocs: Mutex::new(HashMap::new()),
        }
    }

    /// A consistent, immutable view of every table at the latest applied index.
    pub fn snapshot(&self) -> StateSnapshot {
        let tables = self
            .tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        StateSnapshot::new(tables)
    }

    /// The per-table indexes now.
    pub fn indexes(&self) -> TableIndexes {
        *self.indexes.borrow()
    }

    /// A receiver that sees every change of the per-table indexes.
    pub fn watch_indexes(&self) -> watch::Receiver<TableIndexes> {
        self.indexes.subscribe()
    }

    /// A receiver of `node_id`'s allocation index ([`Tables::node_alloc_index`]): it changes
    /// only when an apply changes that node's allocations on the servers' side.
    pub fn watch_node_allocs(&self, node_id: &NodeId) -> watch::Receiver<u64> {
        // The read lock keeps applies out until the sender is registered, so none is missed.
        let tables = self
            .tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = tables.node_alloc_index(node_id);
        let mut watchers = self
            .node_allocs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sender = watchers
            .entry(node_id.clone())
            .or_insert_with(|| watch::channel(current).0);
        sender.send_if_modified(|index| std::mem::replace(index, current) != current);
        sender.subscribe()
    }

    fn wake_node_watches(&self, tables: &Tables, nodes: &std::collections::BTreeSet<NodeId>) {
        if nodes.is_empty() {
            return;
        }
        let mut watchers = self
            .node_allocs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for node_id in nodes {
            let Some(sender) = watchers.get(node_id) else {
                continue;
            };
            if sender.receiver_count() == 0 {
                watchers.remove(node_id);
                continue;
            }
            sender.send_replace(tables.node_alloc_index(node_id));
        }
    }

    /// Subscribes to the change events of every later write.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<EventBatch>> {
        self.events.subscribe()
    }

    /// Waits until the state has applied at least `index`, or `timeout` passes; returns the
    /// latest applied index.
    pub async fn wait_for_index(&self, index: u64, timeout: std::time::Duration) -> u64 {
        let mut receiver = self.indexes.subscribe();
        let wait = receiver.wait_for(|indexes| indexes.latest >= index);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(indexes)) => indexes.latest,
            _ => self.indexes().latest,
        }
    }

    /// Applies one command at Raft `index`. See [`apply`](self::apply) for each command.
    pub fn apply(
        &self,
        index: u64,
        command: &crate::server::raft::Command,
    ) -> (crate::server::raft::CommandResponse, ApplyEffects) {
        let want_events = self.events.receiver_count() > 0;
        let (response, effects, indexes) = {
            let mut tables = self
                .tables
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut effects = ApplyEffects::new(want_events);
            effects.index = index;
            let response = tables.apply(index, command, &mut effects);
            // Under the write lock, so a watch registered meanwhile cannot miss this index.
            self.wake_node_watches(&tables, &effects.alloc_nodes);
            (response, effects, tables.indexes)
        };
        self.indexes.send_replace(indexes);
        if want_events && !effects.events.is_empty() {
            let batch = EventBatch {
                index,
                events: effects.events.clone(),
            };
            // No subscriber left is not an error: the stream simply has no reader now.
            let _ = self.events.send(Arc::new(batch));
        }
        (response, effects)
    }

    /// Records that Raft applied `index` without a state change (blank and membership entries),
    /// so waiters for that index wake.
    pub fn advance_index(&self, index: u64) {
        let indexes = {
            let mut tables = self
                .tables
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tables.indexes.latest = tables.indexes.latest.max(index);
            tables.indexes
        };
        self.indexes.send_replace(indexes);
    }

    /// The state in its persisted form, for a Raft snapshot.
    pub fn persist(&self) -> PersistedState {
        PersistedState::from_tables(&self.snapshot().tables)
    }

    /// Replaces the whole state with a restored snapshot.
    pub fn restore(&self, persisted: PersistedState) {
        self.restore_tables(persisted.into_tables());
    }

    /// Replaces the whole state with tables read from a snapshot ([`read_state`]).
    pub fn restore_tables(&self, restored: Tables) {
        let indexes = restored.indexes;
        let mut tables = self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *tables = restored;
        let watched: std::collections::BTreeSet<NodeId> = self
            .node_allocs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        self.wake_node_watches(&tables, &watched);
        drop(tables);
        self.indexes.send_replace(indexes);
    }
}

/// Non-terminal evaluations and nodes, as a new leader needs them to restore its broker and its
/// heartbeat timers.
pub fn leader_restore_view(snapshot: &StateSnapshot) -> (Vec<Arc<Evaluation>>, Vec<Arc<Node>>) {
    let evals = snapshot
        .tables
        .evals
        .values()
        .filter(|eval| !eval.status.is_terminal())
        .cloned()
        .collect();
    let nodes = snapshot.tables.nodes.values().cloned().collect();
    (evals, nodes)
}
