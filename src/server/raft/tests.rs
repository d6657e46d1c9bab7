//! The storage conformance suite of openraft against caravan's log store and state machine, and
//! durability of the redb log across a reopen (Raft paper §5.3: a committed entry is durable).

use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{RaftLogReader, RaftSnapshotBuilder};

use super::types::{StorageError, TypeConfig};
use super::{LogStore, StateMachine};
use crate::server::state::StateStore;

/// Builds a fresh store on disk, in a temp dir the guard removes.
struct DiskStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for DiskStoreBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_store = LogStore::open(&dir.path().join("raft.redb")).expect("open redb");
        let state_machine = StateMachine::open(
            Arc::new(StateStore::new()),
            Some(dir.path().join("snapshot.json")),
            None,
        )?;
        Ok((dir, log_store, state_machine))
    }
}

/// The same, with redb's in-memory backend and in-memory snapshots (`-dev`).
struct MemoryStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for MemoryStoreBuilder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError> {
        let log_store = LogStore::in_memory().expect("in-memory redb");
        let state_machine = StateMachine::open(Arc::new(StateStore::new()), None, None)?;
        Ok(((), log_store, state_machine))
    }
}

#[test]
fn openraft_storage_suite_on_disk() -> anyhow::Result<()> {
    Ok(Suite::test_all(DiskStoreBuilder)?)
}

#[test]
fn openraft_storage_suite_in_memory() -> anyhow::Result<()> {
    Ok(Suite::test_all(MemoryStoreBuilder)?)
}

#[tokio::test]
async fn vote_and_entries_survive_reopen() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("raft.redb");
    let vote = openraft::Vote::new_committed(3, 7);
    {
        let mut store = LogStore::open(&path)?;
        store.save_vote(&vote).await?;
        let id = store.server_id(|| 42).map_err(anyhow::Error::msg)?;
        assert_eq!(id, 42);
    }
    let mut store = LogStore::open(&path)?;
    assert_eq!(store.read_vote().await?, Some(vote));
    // The ID is made once per data dir.
    assert_eq!(store.server_id(|| 99).map_err(anyhow::Error::msg)?, 42);
    assert!(store.try_get_log_entries(0..10).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn snapshot_file_restores_the_state() -> anyhow::Result<()> {
    use crate::server::raft::Command;
    use crate::structs::{Job, JobId, TaskGroup};

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("snapshot.json");
    let store = Arc::new(StateStore::new());
    let mut machine = StateMachine::open(store.clone(), Some(path.clone()), None)?;
    let mut job = Job {
        id: JobId::from("example"),
        task_groups: vec![TaskGroup {
            name: "cache".to_owned(),
            count: 1,
            ..TaskGroup::default()
        }],
        ..Job::default()
    };
    job.canonicalize();
    let entry = openraft::Entry::<TypeConfig> {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), 5),
        payload: openraft::EntryPayload::Normal(Command::JobRegister {
            job: Arc::new(job),
            enforce_index: None,
            eval: None,
        }),
    };
    machine.apply([entry]).await?;
    let snapshot = machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await?;
    assert_eq!(
        snapshot.meta.last_log_id.map(|log_id| log_id.index),
        Some(5)
    );
    assert!(path.exists());

    let restored_store = Arc::new(StateStore::new());
    let mut restored = StateMachine::open(restored_store.clone(), Some(path), None)?;
    let (last_applied, _) = restored.applied_state().await?;
    assert_eq!(last_applied.map(|log_id| log_id.index), Some(5));
    let job = restored_store
        .snapshot()
        .job("default", &JobId::from("example"))
        .expect("the job is restored");
    assert_eq!(job.create_index, 5);
    assert_eq!(restored_store.indexes().jobs, 5);
    Ok(())
}
