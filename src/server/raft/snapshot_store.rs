//! Where the state machine keeps its latest snapshot, and the gate that holds a log purge back
//! until a durable snapshot covers it.
//!
//! openraft 0.9 leaves two orderings to storage, and getting either wrong leaves a data dir that
//! openraft refuses on the next start (its state check `purge_upto <= snapshot_last_log_id`
//! panics): the log was purged past what the kept snapshot restores.
//!
//! - A snapshot is *built* in a task of its own, beside the state machine worker, from a view
//!   taken when the build began. A build that began before a snapshot from the leader was
//!   installed can finish after it. So the store only ever moves forward: a built snapshot older
//!   than the kept one is discarded, and each writer writes its own temporary file, renamed over
//!   the kept one under the lock.
//! - A snapshot sent by the leader is *installed* by the state machine worker while the Raft core
//!   purges the log it covers at once, in another task. So [`SnapshotGate::covered`], which
//!   `LogStore::purge` awaits, holds a purge back while a snapshot is being received, until a
//!   snapshot covering the purge is durable (or the install failed: then the purge fails too).
//!
//! ```text
//!  leader ─► begin_receiving ─► receiving = true
//!            install_snapshot ─► file written, fsynced, renamed ─► durable = X, receiving = false
//!  Raft core: purge(X) ─── waits while receiving && durable < X ───┘ then deletes the log ≤ X
//! ```
//!
//! Invariant: a purge recorded in the log store is never ahead of the snapshot kept here.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio_util::either::Either;

use super::types::{LogId, SnapshotData, SnapshotMeta};

/// Where the kept snapshot's bytes are.
#[derive(Clone)]
enum Location {
    Memory(Arc<Vec<u8>>),
    File(PathBuf),
}

#[derive(Clone)]
struct Kept {
    meta: SnapshotMeta,
    location: Location,
}

/// A snapshot written in full (and synced, when in a file), not kept yet.
pub(super) enum Written {
    Memory(Arc<Vec<u8>>),
    /// A file beside the kept one, removed unless it is kept.
    File(tempfile::TempPath),
}

/// What the kept snapshot covers, as the gate sees it.
#[derive(Clone, Debug, Default)]
struct Coverage {
    /// The last log ID the kept snapshot covers; durable once set.
    durable: Option<LogId>,
    /// A snapshot is being received from the leader and is not installed yet.
    receiving: bool,
    /// Installing a received snapshot failed: a waiting purge fails with this.
    failed: Option<String>,
}

/// Whether a new snapshot replaces the kept one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Replace {
    /// Only if it covers more of the log (a snapshot this server built).
    IfNewer,
    /// Always (a snapshot from the leader, which openraft decided to install).
    Always,
}

/// The latest snapshot: in a file (`data_dir/server/snapshot.bin`) or in memory (`-dev`).
pub(super) struct SnapshotStore {
    path: Option<PathBuf>,
    kept: Mutex<Option<Kept>>,
    /// The file a snapshot from the leader is being received into (a new stream replaces it).
    receiving: Mutex<Option<tempfile::TempPath>>,
    coverage: watch::Sender<Coverage>,
}

impl SnapshotStore {
    pub(super) fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            kept: Mutex::new(None),
            receiving: Mutex::new(None),
            coverage: watch::Sender::new(Coverage::default()),
        }
    }

    /// The gate the log store's purges wait at.
    pub(super) fn gate(&self) -> SnapshotGate {
        SnapshotGate(self.coverage.subscribe())
    }

    fn kept_lock(&self) -> MutexGuard<'_, Option<Kept>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The snapshot file left by a previous run, if any.
    pub(super) fn open_existing(&self) -> std::io::Result<Option<std::fs::File>> {
        match &self.path {
            Some(path) if path.exists() => std::fs::File::open(path).map(Some),
            _ => Ok(None),
        }
    }

    /// A new file beside the kept one to write a snapshot into; `None` when kept in memory.
    pub(super) fn new_file(
        &self,
        purpose: &str,
    ) -> std::io::Result<Option<tempfile::NamedTempFile>> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
        tempfile::Builder::new()
            .prefix("snapshot.")
            .suffix(&format!(".{purpose}.tmp"))
            .tempfile_in(dir)
            .map(Some)
    }

    /// Records that the file [`Self::read_existing`] returned holds the snapshot `meta`.
    pub(super) fn adopt_existing(&self, meta: SnapshotMeta) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let last_log_id = meta.last_log_id;
        *self.kept_lock() = Some(Kept {
            meta,
            location: Location::File(path),
        });
        self.coverage
            .send_modify(|coverage| coverage.durable = coverage.durable.max(last_log_id));
    }

    /// Marks a snapshot from the leader as being received (purges wait until it is installed),
    /// and returns where to write it: a new file beside the kept one, or memory.
    pub(super) fn begin_receiving(&self) -> std::io::Result<SnapshotData> {
        self.coverage.send_modify(|coverage| {
            coverage.receiving = true;
            coverage.failed = None;
        });
        let Some(file) = self.new_file("receiving")? else {
            return Ok(Either::Right(Cursor::new(Vec::new())));
        };
        let (file, path) = file.into_parts();
        // A stream begun before is abandoned: its file goes.
        *self
            .receiving
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(path);
        Ok(Either::Left(tokio::fs::File::from_std(file)))
    }

    /// `file`, a received snapshot, synced, to be kept: the file [`Self::begin_receiving`] made,
    /// or a copy of any other (openraft's storage suite hands over another store's snapshot).
    pub(super) fn received(&self, file: &mut std::fs::File) -> std::io::Result<Written> {
        use std::os::unix::fs::MetadataExt;

        let receiving = self
            .receiving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(path) = receiving {
            let (received, begun) = (file.metadata()?, std::fs::metadata(&path)?);
            if (received.dev(), received.ino()) == (begun.dev(), begun.ino()) {
                file.sync_all()?;
                return Ok(Written::File(path));
            }
        }
        std::io::Seek::rewind(file)?;
        match self.new_file("receiving")? {
            Some(mut copy) => {
                std::io::copy(file, &mut copy)?;
                copy.as_file().sync_all()?;
                Ok(Written::File(copy.into_temp_path()))
            }
            None => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(file, &mut bytes)?;
                Ok(Written::Memory(Arc::new(bytes)))
            }
        }
    }

    /// Marks the install of a received snapshot as failed: waiting purges fail.
    pub(super) fn install_failed(&self, error: &str) {
        self.coverage
            .send_modify(|coverage| coverage.failed = Some(error.to_owned()));
    }

    /// `bytes` of a snapshot, written where this store keeps snapshots (a synced file, or memory).
    pub(super) fn write_bytes(&self, bytes: Vec<u8>) -> std::io::Result<Written> {
        match self.new_file("receiving")? {
            Some(mut file) => {
                std::io::Write::write_all(&mut file, &bytes)?;
                file.as_file().sync_all()?;
                Ok(Written::File(file.into_temp_path()))
            }
            None => Ok(Written::Memory(Arc::new(bytes))),
        }
    }

    /// Makes `written`, the snapshot `meta`, the kept snapshot (durably: a file is synced by
    /// whoever wrote it, and renamed into place here), unless `replace` is [`Replace::IfNewer`]
    /// and the kept one covers as much. Blocking: file I/O. Returns whether it was kept.
    pub(super) fn keep(
        &self,
        meta: &SnapshotMeta,
        written: Written,
        replace: Replace,
    ) -> std::io::Result<bool> {
        let mut kept = self.kept_lock();
        if replace == Replace::IfNewer
            && let Some(current) = kept.as_ref()
            && current.meta.last_log_id >= meta.last_log_id
        {
            tracing::debug!(
                built = ?meta.last_log_id,
                kept = ?current.meta.last_log_id,
                "a snapshot built from an older state is discarded"
            );
            return Ok(false);
        }
        let location = match (&self.path, written) {
            (Some(path), Written::File(temporary)) => {
                temporary.persist(path).map_err(|error| error.error)?;
                if let Some(dir) = path.parent() {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Location::File(path.clone())
            }
            (None, Written::Memory(bytes)) => Location::Memory(bytes),
            _ => {
                return Err(std::io::Error::other(
                    "a snapshot written to memory for a store on disk, or the other way round",
                ));
            }
        };
        *kept = Some(Kept {
            meta: meta.clone(),
            location,
        });
        let last_log_id = meta.last_log_id;
        self.coverage.send_modify(|coverage| {
            coverage.durable = if replace == Replace::Always {
                last_log_id
            } else {
                coverage.durable.max(last_log_id)
            };
            if replace == Replace::Always {
                coverage.receiving = false;
            }
        });
        Ok(true)
    }

    /// The kept snapshot: its metadata and its data to read.
    pub(super) fn current(&self) -> std::io::Result<Option<(SnapshotMeta, SnapshotData)>> {
        // The file is opened under the lock, so what is read is the snapshot `meta` describes
        // even if a newer one is renamed over it meanwhile.
        let (meta, source) = {
            let kept = self.kept_lock();
            let Some(kept) = kept.as_ref() else {
                return Ok(None);
            };
            let source = match &kept.location {
                Location::Memory(bytes) => Err(bytes.clone()),
                Location::File(path) => Ok(std::fs::File::open(path)?),
            };
            (kept.meta.clone(), source)
        };
        let data = match source {
            Err(bytes) => Either::Right(Cursor::new((*bytes).clone())),
            Ok(file) => Either::Left(tokio::fs::File::from_std(file)),
        };
        Ok(Some((meta, data)))
    }
}

/// Where the log store waits before purging: see the module docs.
#[derive(Clone, Debug)]
pub struct SnapshotGate(watch::Receiver<Coverage>);

impl SnapshotGate {
    /// A gate that never holds a purge back: for a log store without a state machine beside it.
    #[cfg(test)]
    pub fn open() -> Self {
        SnapshotGate(watch::Sender::new(Coverage::default()).subscribe())
    }

    /// Waits until purging the log up to `upto` leaves no entry the kept snapshot lacks.
    pub async fn covered(&self, upto: LogId) -> Result<(), String> {
        let mut receiver = self.0.clone();
        let coverage = receiver
            .wait_for(|coverage| {
                coverage.failed.is_some() || !coverage.receiving || coverage.durable >= Some(upto)
            })
            .await
            .map_err(|_| "the state machine is gone while a snapshot was being installed")?;
        match &coverage.failed {
            Some(error) if coverage.durable < Some(upto) => Err(format!(
                "not purging the log up to {upto}: installing the snapshot covering it failed: {error}"
            )),
            _ => Ok(()),
        }
    }
}
