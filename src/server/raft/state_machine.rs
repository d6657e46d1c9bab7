//! The Raft state machine: applies committed commands to the [`StateStore`], builds and installs
//! snapshots.
//!
//! The state lives in memory; what makes it durable is the log plus the latest snapshot, kept by
//! the [`SnapshotStore`] in `data_dir/server/snapshot.json` (fsynced, renamed into place) before
//! openraft is told it exists and may purge the log up to it; a snapshot from the leader is kept
//! before the log store's purge of what it covers may proceed (see `snapshot_store`). On start the
//! snapshot is restored, and openraft re-applies the committed log after it.
//!
//! Invariant: `apply` hands every command to [`StateStore::apply`], which is deterministic; what
//! the leader's machinery must react to (new evaluations, freed capacity, nodes) leaves through
//! the [`ApplyObserver`] after the state changed.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};

use super::command::CommandResponse;
use super::snapshot_store::{Replace, SnapshotGate, SnapshotStore};
use super::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig, io_error,
};
use crate::server::state::{ApplyEffects, PersistedState, StateSnapshot, StateStore};

/// Receives what each apply changed, after the state changed.
pub type ApplyObserver = Arc<dyn Fn(ApplyEffects) + Send + Sync>;

/// The content of a snapshot: its metadata and the state.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    state: PersistedState,
}

pub struct StateMachine {
    store: Arc<StateStore>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    /// The latest snapshot, in `data_dir/server/snapshot.json` or in memory.
    snapshots: Arc<SnapshotStore>,
    observer: Option<ApplyObserver>,
}

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine")
            .field("last_applied", &self.last_applied)
            .finish_non_exhaustive()
    }
}

fn sm_error(verb: ErrorVerb, error: impl std::fmt::Display) -> StorageError {
    io_error(ErrorSubject::StateMachine, verb, error)
}

fn snapshot_error(verb: ErrorVerb, error: impl std::fmt::Display) -> StorageError {
    io_error(ErrorSubject::Snapshot(None), verb, error)
}

impl StateMachine {
    /// A state machine over `store`, restored from the snapshot at `snapshot_path` if there is
    /// one.
    pub fn open(
        store: Arc<StateStore>,
        snapshot_path: Option<PathBuf>,
        observer: Option<ApplyObserver>,
    ) -> Result<Self, StorageError> {
        let mut machine = Self {
            store,
            last_applied: None,
            last_membership: StoredMembership::default(),
            snapshots: Arc::new(SnapshotStore::new(snapshot_path)),
            observer,
        };
        let existing = machine
            .snapshots
            .read_existing()
            .map_err(|error| snapshot_error(ErrorVerb::Read, error))?;
        if let Some(bytes) = existing {
            let file: SnapshotFile = serde_json::from_slice(&bytes)
                .map_err(|error| snapshot_error(ErrorVerb::Read, error))?;
            tracing::info!(last_log_id = ?file.meta.last_log_id, "restoring state from snapshot");
            machine.last_applied = file.meta.last_log_id;
            machine.last_membership = file.meta.last_membership.clone();
            machine.snapshots.adopt_existing(file.meta);
            machine.store.restore(file.state);
        }
        Ok(machine)
    }

    /// The gate the log store's purges wait at, so none runs ahead of a durable snapshot.
    pub fn snapshot_gate(&self) -> SnapshotGate {
        self.snapshots.gate()
    }
}

/// Builds a snapshot from a state view taken between two applies.
pub struct SnapshotBuilder {
    view: StateSnapshot,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    snapshots: Arc<SnapshotStore>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let snapshot_id = match &self.last_applied {
            Some(log_id) => format!(
                "{}-{}-{}",
                log_id.leader_id.term,
                log_id.index,
                uuid::Uuid::new_v4()
            ),
            None => format!("0-0-{}", uuid::Uuid::new_v4()),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        let view = self.view.clone();
        let snapshots = self.snapshots.clone();
        let file_meta = meta.clone();
        // Serialising the whole state is long, CPU-bound work: keep it off the async workers.
        let (bytes, kept) = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let file = SnapshotFile {
                meta: file_meta,
                state: PersistedState::from_snapshot(&view),
            };
            let bytes = Arc::new(serde_json::to_vec(&file).map_err(|error| error.to_string())?);
            let kept = snapshots
                .keep(&file.meta, bytes.clone(), Replace::IfNewer)
                .map_err(|error| error.to_string())?;
            Ok((bytes, kept))
        })
        .await
        .map_err(|error| snapshot_error(ErrorVerb::Write, error))?
        .map_err(|error| snapshot_error(ErrorVerb::Write, error))?;
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = bytes.len(), kept, "built state snapshot");
        let bytes = Arc::try_unwrap(bytes).unwrap_or_else(|bytes| (*bytes).clone());
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut responses = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            self.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {
                    self.store.advance_index(index);
                    responses.push(CommandResponse { index, error: None });
                }
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    self.store.advance_index(index);
                    responses.push(CommandResponse { index, error: None });
                }
                EntryPayload::Normal(command) => {
                    let (response, effects) = self.store.apply(index, &command);
                    if let Some(error) = &response.error {
                        tracing::debug!(command = command.name(), index, error = %error, "command changed nothing");
                    }
                    if let Some(observer) = &self.observer {
                        observer(effects);
                    }
                    responses.push(response);
                }
            }
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            view: self.store.snapshot(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        self.snapshots.begin_receiving();
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = Arc::new(snapshot.into_inner());
        let installed = serde_json::from_slice::<SnapshotFile>(&bytes)
            .map_err(|error| error.to_string())
            .and_then(|file| {
                self.snapshots
                    .keep(meta, bytes.clone(), Replace::Always)
                    .map(|_| file)
                    .map_err(|error| error.to_string())
            });
        let file = match installed {
            Ok(file) => file,
            Err(error) => {
                self.snapshots.install_failed(&error);
                return Err(snapshot_error(ErrorVerb::Write, error));
            }
        };
        self.store.restore(file.state);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let current = self
            .snapshots
            .current()
            .map_err(|error| sm_error(ErrorVerb::Read, error))?;
        Ok(current.map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
