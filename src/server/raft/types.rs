//! The openraft type configuration of caravan's servers.

use super::command::{Command, CommandResponse};

openraft::declare_raft_types!(
    /// Raft over caravan's commands: servers are numbered, addressed by their RPC address.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotData,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A snapshot's bytes: a file in the data dir, or memory for `-dev` (see `snapshot_store`).
pub type SnapshotData = tokio_util::either::Either<tokio::fs::File, std::io::Cursor<Vec<u8>>>;

pub type Raft = openraft::Raft<TypeConfig>;
pub type ServerId = u64;
pub type LogId = openraft::LogId<ServerId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<ServerId>;
pub type Vote = openraft::Vote<ServerId>;
pub type StoredMembership = openraft::StoredMembership<ServerId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<ServerId, openraft::BasicNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;

/// Wraps any error as openraft's storage error about `subject`.
pub(crate) fn io_error(
    subject: openraft::ErrorSubject<ServerId>,
    verb: openraft::ErrorVerb,
    error: impl std::fmt::Display,
) -> StorageError {
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::error(error)).into()
}
