//! The durable Raft log and vote, in redb.
//!
//! One redb file, `data_dir/server/raft.redb` (an in-memory redb backend for `-dev` and tests: the
//! same code either way), with two tables: `logs` (index → entry) and `meta` (vote, committed log
//! ID, last purged log ID, this server's ID). Every value is a [`codec`](crate::codec) record
//! (CBOR); the JSON values of earlier builds are still read. Every append is committed with
//! `Durability::Immediate` before openraft is told the entries are flushed, so an acknowledged write
//! survives SIGKILL. A purge waits until the state machine's kept snapshot covers it
//! (`snapshot_store`), so the log never starts past what the snapshot restores.
//!
//! Recently appended entries are also kept in memory: openraft reads each entry back right after
//! appending it to apply it, and decoding it again would double the cost of a write.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, RaftLogId, RaftLogReader};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::snapshot_store::SnapshotGate;
use super::types::{Entry, LogId, ServerId, StorageError, TypeConfig, Vote, io_error};

const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const META_VOTE: &str = "vote";
const META_COMMITTED: &str = "committed";
const META_LAST_PURGED: &str = "last_purged";
const META_SERVER_ID: &str = "server_id";

/// redb's page cache. The log is written once and read back only on restart or by a lagging
/// follower (recent entries come from [`CACHE_ENTRIES`]), so redb's default of a gigabyte would
/// only hold pages nobody reads again.
const LOG_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// How many recent entries the in-memory cache keeps.
const CACHE_ENTRIES: usize = 32;

/// The Raft log store; clones share the database.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
    /// Purges wait here until the state machine's durable snapshot covers them.
    gate: SnapshotGate,
}

struct Inner {
    db: Database,
    cache: Mutex<BTreeMap<u64, Entry>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

/// Turns any error into its message, the error type of the redb calls here.
trait OrMessage<T> {
    fn s(self) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> OrMessage<T> for Result<T, E> {
    fn s(self) -> Result<T, String> {
        self.map_err(|error| error.to_string())
    }
}

fn log_error(verb: ErrorVerb, error: impl std::fmt::Display) -> StorageError {
    io_error(ErrorSubject::Logs, verb, error)
}

impl LogStore {
    /// Opens (or creates) the log store at `path`; its purges wait at `gate` (the state machine's
    /// [`StateMachine::snapshot_gate`](super::StateMachine::snapshot_gate)).
    pub fn open(path: &Path, gate: SnapshotGate) -> Result<Self, redb::DatabaseError> {
        Self::from_db(
            Database::builder()
                .set_cache_size(LOG_CACHE_BYTES)
                .create(path)?,
            gate,
        )
    }

    /// A log store in memory only: for `-dev` and tests.
    pub fn in_memory(gate: SnapshotGate) -> Result<Self, redb::DatabaseError> {
        Self::from_db(
            Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?,
            gate,
        )
    }

    fn from_db(db: Database, gate: SnapshotGate) -> Result<Self, redb::DatabaseError> {
        let store = Self {
            inner: Arc::new(Inner {
                db,
                cache: Mutex::new(BTreeMap::new()),
            }),
            gate,
        };
        // Create both tables up front, so reads never meet a missing table.
        let created = (|| -> Result<(), String> {
            let txn = store.inner.db.begin_write().s()?;
            txn.open_table(LOGS).s()?;
            txn.open_table(META).s()?;
            txn.commit().s()
        })();
        created.map_err(|error| {
            redb::DatabaseError::Storage(redb::StorageError::Io(std::io::Error::other(error)))
        })?;
        Ok(store)
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        let txn = self.inner.db.begin_read().s()?;
        let table = txn.open_table(META).s()?;
        let Some(value) = table.get(key).s()? else {
            return Ok(None);
        };
        crate::codec::decode_record(value.value()).map(Some).s()
    }

    fn write_meta<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), String> {
        let bytes = crate::codec::encode_record(value).s()?;
        let txn = self.inner.db.begin_write().s()?;
        {
            let mut table = txn.open_table(META).s()?;
            table.insert(key, bytes.as_slice()).s()?;
        }
        txn.commit().s()
    }

    /// This server's Raft ID: made once, kept in the store for the life of the data dir.
    pub fn server_id(&self, fresh: impl FnOnce() -> ServerId) -> Result<ServerId, String> {
        if let Some(id) = self.read_meta::<ServerId>(META_SERVER_ID)? {
            return Ok(id);
        }
        let id = fresh();
        self.write_meta(META_SERVER_ID, &id)?;
        Ok(id)
    }

    fn last_purged(&self) -> Result<Option<LogId>, StorageError> {
        self.read_meta(META_LAST_PURGED)
            .map_err(|error| log_error(ErrorVerb::Read, error))
    }

    fn read_range(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry>, StorageError> {
        let cached: Option<Vec<Entry>> = {
            let cache = self
                .inner
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let first_cached = cache.keys().next().copied();
            match (first_cached, end) {
                (Some(first), _) if first <= start => Some(
                    cache
                        .range(start..end.unwrap_or(u64::MAX))
                        .map(|(_, entry)| entry.clone())
                        .collect(),
                ),
                _ => None,
            }
        };
        if let Some(entries) = cached {
            // The cache holds a suffix of the log: what it has from `start` is all there is,
            // unless the range reaches past what it holds (never: appends go through it).
            return Ok(entries);
        }
        let txn = self
            .inner
            .db
            .begin_read()
            .map_err(|error| log_error(ErrorVerb::Read, error))?;
        let table = txn
            .open_table(LOGS)
            .map_err(|error| log_error(ErrorVerb::Read, error))?;
        let range = match end {
            Some(end) => table.range(start..end),
            None => table.range(start..),
        }
        .map_err(|error| log_error(ErrorVerb::Read, error))?;
        let mut entries = Vec::new();
        for item in range {
            let (_, value) = item.map_err(|error| log_error(ErrorVerb::Read, error))?;
            let entry: Entry = crate::codec::decode_record(value.value())
                .map_err(|error| log_error(ErrorVerb::Read, error))?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(start) => *start,
            Bound::Excluded(start) => start + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(end) => Some(end + 1),
            Bound::Excluded(end) => Some(*end),
            Bound::Unbounded => None,
        };
        self.read_range(start, end)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.last_purged()?;
        let last = {
            let txn = self
                .inner
                .db
                .begin_read()
                .map_err(|error| log_error(ErrorVerb::Read, error))?;
            let table = txn
                .open_table(LOGS)
                .map_err(|error| log_error(ErrorVerb::Read, error))?;
            match table
                .last()
                .map_err(|error| log_error(ErrorVerb::Read, error))?
            {
                Some((_, value)) => {
                    let entry: Entry = crate::codec::decode_record(value.value())
                        .map_err(|error| log_error(ErrorVerb::Read, error))?;
                    Some(*entry.get_log_id())
                }
                None => None,
            }
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(META_VOTE, vote)
            .map_err(|error| io_error(ErrorSubject::Vote, ErrorVerb::Write, error))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(META_VOTE)
            .map_err(|error| io_error(ErrorSubject::Vote, ErrorVerb::Read, error))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_meta(META_COMMITTED, &committed)
            .map_err(|error| io_error(ErrorSubject::Store, ErrorVerb::Write, error))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .read_meta::<Option<LogId>>(META_COMMITTED)
            .map_err(|error| io_error(ErrorSubject::Store, ErrorVerb::Read, error))?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let result = (|| -> Result<(), String> {
            let txn = self.inner.db.begin_write().s()?;
            {
                let mut table = txn.open_table(LOGS).s()?;
                for entry in &entries {
                    let bytes = crate::codec::encode_record(entry).s()?;
                    table
                        .insert(entry.get_log_id().index, bytes.as_slice())
                        .s()?;
                }
            }
            txn.commit().s()
        })();
        match result {
            Ok(()) => {
                {
                    let mut cache = self
                        .inner
                        .cache
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for entry in entries {
                        cache.insert(entry.get_log_id().index, entry);
                    }
                    while cache.len() > CACHE_ENTRIES {
                        cache.pop_first();
                    }
                }
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                callback.log_io_completed(Err(std::io::Error::other(error.clone())));
                Err(log_error(ErrorVerb::Write, error))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut cache = self
                .inner
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cache.retain(|index, _| *index < log_id.index);
        }
        (|| -> Result<(), String> {
            let txn = self.inner.db.begin_write().s()?;
            {
                let mut table = txn.open_table(LOGS).s()?;
                table.retain_in(log_id.index.., |_, _| false).s()?;
            }
            txn.commit().s()
        })()
        .map_err(|error| log_error(ErrorVerb::Delete, error))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Recorded before the snapshot covering it is durable, a purge would leave, after a
        // crash, a log that starts past what the snapshot restores.
        self.gate
            .covered(log_id)
            .await
            .map_err(|error| log_error(ErrorVerb::Delete, error))?;
        {
            let mut cache = self
                .inner
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cache.retain(|index, _| *index > log_id.index);
        }
        (|| -> Result<(), String> {
            let bytes = crate::codec::encode_record(&Some(log_id)).s()?;
            let txn = self.inner.db.begin_write().s()?;
            {
                let mut meta = txn.open_table(META).s()?;
                meta.insert(META_LAST_PURGED, bytes.as_slice()).s()?;
                let mut table = txn.open_table(LOGS).s()?;
                table.retain_in(..=log_id.index, |_, _| false).s()?;
            }
            txn.commit().s()
        })()
        .map_err(|error| log_error(ErrorVerb::Delete, error))
    }
}
