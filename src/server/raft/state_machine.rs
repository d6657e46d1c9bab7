//! The Raft state machine: applies committed commands to the [`StateStore`], builds and installs
//! snapshots.
//!
//! The state lives in memory; what makes it durable is the log plus the latest snapshot, kept by
//! the [`SnapshotStore`] in `data_dir/server/snapshot.bin` (fsynced, renamed into place) before
//! openraft is told it exists and may purge the log up to it; a snapshot from the leader is kept
//! before the log store's purge of what it covers may proceed (see `snapshot_store`). On start the
//! snapshot is restored, and openraft re-applies the committed log after it.
//!
//! A snapshot is a [`codec`](crate::codec) stream: its [`SnapshotMeta`], then the state table by
//! table (`state::write_state`). It is built from a view of the state straight into a file,
//! one row at a time, and installed by reading the received file back the same way: neither
//! holds the state as one document. A `snapshot.json` of an earlier build (one JSON document) is
//! read once on start and rewritten in the new format.
//!
//! Invariant: `apply` hands every command to [`StateStore::apply`], which is deterministic; what
//! the leader's machinery must react to (new evaluations, freed capacity, nodes) leaves through
//! the [`ApplyObserver`] after the state changed.

use std::io::{BufRead, BufReader, Cursor, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use serde::Deserialize;
use tokio_util::either::Either;

use super::command::CommandResponse;
use super::snapshot_store::{Replace, SnapshotGate, SnapshotStore, Written};
use super::types::{
    Entry, LogId, Snapshot, SnapshotData, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
    io_error,
};
use crate::codec::{CodecError, StreamKind, StreamReader, StreamWriter};
use crate::server::state::{
    ApplyEffects, PersistedState, StateSnapshot, StateStore, Tables, read_state, write_state,
};

/// Receives what each apply changed, after the state changed.
pub type ApplyObserver = Arc<dyn Fn(ApplyEffects) + Send + Sync>;

/// A snapshot as earlier builds wrote it: one JSON document.
#[derive(Deserialize)]
struct LegacySnapshotFile {
    meta: SnapshotMeta,
    state: PersistedState,
}

/// Writes the snapshot `meta` of `tables` to `writer`, a row at a time.
fn write_snapshot<W: Write>(
    writer: W,
    meta: &SnapshotMeta,
    tables: &Tables,
) -> Result<W, CodecError> {
    let mut stream = StreamWriter::new(writer, StreamKind::RaftSnapshot)?;
    stream.item(meta)?;
    write_state(tables, &mut stream)?;
    stream.finish()
}

/// Reads a snapshot [`write_snapshot`] wrote: its metadata and the tables.
fn read_snapshot<R: Read>(reader: R) -> Result<(SnapshotMeta, Tables), CodecError> {
    let mut stream = StreamReader::new(reader, StreamKind::RaftSnapshot)?;
    let meta: SnapshotMeta = stream.item()?;
    let tables = read_state(&mut stream)?;
    Ok((meta, tables))
}

/// Writes the snapshot `meta` of `tables` where `snapshots` keeps it (a synced file beside the
/// kept one, or memory), and returns it with its size. Blocking.
fn write_to_store(
    snapshots: &SnapshotStore,
    meta: &SnapshotMeta,
    tables: &Tables,
) -> Result<(Written, SnapshotData, u64), CodecError> {
    match snapshots.new_file("building")? {
        Some(mut file) => {
            write_snapshot(file.as_file_mut(), meta, tables)?;
            file.as_file().sync_all()?;
            let size = file.as_file().metadata()?.len();
            // Its own handle (and offset) to the same file, readable even if it is not kept.
            let data = Either::Left(tokio::fs::File::from_std(file.reopen()?));
            Ok((Written::File(file.into_temp_path()), data, size))
        }
        None => {
            let bytes = write_snapshot(Vec::new(), meta, tables)?;
            let size = bytes.len() as u64;
            let data = Either::Right(Cursor::new(bytes.clone()));
            Ok((Written::Memory(Arc::new(bytes)), data, size))
        }
    }
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
            .open_existing()
            .map_err(|error| snapshot_error(ErrorVerb::Read, error))?;
        if let Some(file) = existing {
            machine
                .restore_existing(file)
                .map_err(|error| snapshot_error(ErrorVerb::Read, error))?;
        }
        Ok(machine)
    }

    /// Restores the snapshot file a previous run left; one in the JSON of earlier builds is
    /// rewritten in the current format.
    fn restore_existing(&mut self, file: std::fs::File) -> Result<(), String> {
        let mut reader = BufReader::new(file);
        let head = reader.fill_buf().map_err(|error| error.to_string())?;
        let current_format = !head.starts_with(b"{");
        let meta = if current_format {
            let (meta, tables) =
                read_snapshot(reader).map_err(|error| format!("the snapshot file: {error}"))?;
            tracing::info!(last_log_id = ?meta.last_log_id, "restoring state from snapshot");
            self.snapshots.adopt_existing(meta.clone());
            self.store.restore_tables(tables);
            meta
        } else {
            let legacy: LegacySnapshotFile = serde_json::from_reader(reader)
                .map_err(|error| format!("the JSON snapshot file of an earlier build: {error}"))?;
            tracing::info!(last_log_id = ?legacy.meta.last_log_id, "restoring state from an earlier build's JSON snapshot, and rewriting it");
            self.store.restore(legacy.state);
            let (written, _, _) = write_to_store(
                &self.snapshots,
                &legacy.meta,
                self.store.snapshot().tables(),
            )
            .map_err(|error| format!("rewriting the snapshot: {error}"))?;
            self.snapshots
                .keep(&legacy.meta, written, Replace::Always)
                .map_err(|error| format!("rewriting the snapshot: {error}"))?;
            legacy.meta
        };
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership;
        Ok(())
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
        // Encoding the whole state is long, CPU-bound work: keep it off the async workers.
        let (data, size, kept) = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let (written, data, size) = write_to_store(&snapshots, &file_meta, view.tables())
                .map_err(|error| error.to_string())?;
            let kept = snapshots
                .keep(&file_meta, written, Replace::IfNewer)
                .map_err(|error| error.to_string())?;
            Ok((data, size, kept))
        })
        .await
        .map_err(|error| snapshot_error(ErrorVerb::Write, error))?
        .map_err(|error| snapshot_error(ErrorVerb::Write, error))?;
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = size, kept, "built state snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(data),
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

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        let data = self
            .snapshots
            .begin_receiving()
            .map_err(|error| snapshot_error(ErrorVerb::Write, error))?;
        Ok(Box::new(data))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let received = match *snapshot {
            Either::Left(file) => Either::Left(file.into_std().await),
            Either::Right(cursor) => Either::Right(cursor.into_inner()),
        };
        let snapshots = self.snapshots.clone();
        let kept_meta = meta.clone();
        // Decoded before it is kept: a snapshot that does not decode replaces nothing.
        let installed = tokio::task::spawn_blocking(move || -> Result<Tables, String> {
            let (tables, written) = match received {
                Either::Left(mut file) => {
                    file.rewind().map_err(|error| error.to_string())?;
                    let (_, tables) = read_snapshot(&file).map_err(|error| error.to_string())?;
                    let written = snapshots
                        .received(&mut file)
                        .map_err(|error| error.to_string())?;
                    (tables, written)
                }
                Either::Right(bytes) => {
                    let (_, tables) =
                        read_snapshot(bytes.as_slice()).map_err(|error| error.to_string())?;
                    let written = snapshots
                        .write_bytes(bytes)
                        .map_err(|error| error.to_string())?;
                    (tables, written)
                }
            };
            snapshots
                .keep(&kept_meta, written, Replace::Always)
                .map_err(|error| error.to_string())?;
            Ok(tables)
        })
        .await
        .map_err(|error| error.to_string())
        .and_then(|result| result);
        let tables = match installed {
            Ok(tables) => tables,
            Err(error) => {
                self.snapshots.install_failed(&error);
                return Err(snapshot_error(ErrorVerb::Write, error));
            }
        };
        self.store.restore_tables(tables);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let current = self
            .snapshots
            .current()
            .map_err(|error| sm_error(ErrorVerb::Read, error))?;
        Ok(current.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(data),
        }))
    }
}
