//! The storage conformance suite of openraft against caravan's log store and state machine, and
//! durability of the redb log across a reopen (Raft paper §5.3: a committed entry is durable).

use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{RaftLogReader, RaftSnapshotBuilder};

use super::types::{StorageError, TypeConfig};
use super::{LogStore, SnapshotGate, StateMachine};
use crate::server::state::StateStore;

/// Builds a fresh store on disk, in a temp dir the guard removes.
struct DiskStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for DiskStoreBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let state_machine = StateMachine::open(
            Arc::new(StateStore::new()),
            Some(dir.path().join("snapshot.json")),
            None,
        )?;
        let log_store =
            LogStore::open(&dir.path().join("raft.redb"), state_machine.snapshot_gate())
                .expect("open redb");
        Ok((dir, log_store, state_machine))
    }
}

/// The same, with redb's in-memory backend and in-memory snapshots (`-dev`).
struct MemoryStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for MemoryStoreBuilder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError> {
        let state_machine = StateMachine::open(Arc::new(StateStore::new()), None, None)?;
        let log_store = LogStore::in_memory(state_machine.snapshot_gate()).expect("in-memory redb");
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
        let mut store = LogStore::open(&path, SnapshotGate::open())?;
        store.save_vote(&vote).await?;
        let id = store.server_id(|| 42).map_err(anyhow::Error::msg)?;
        assert_eq!(id, 42);
    }
    let mut store = LogStore::open(&path, SnapshotGate::open())?;
    assert_eq!(store.read_vote().await?, Some(vote));
    // The ID is made once per data dir.
    assert_eq!(store.server_id(|| 99).map_err(anyhow::Error::msg)?, 42);
    assert!(store.try_get_log_entries(0..10).await?.is_empty());
    Ok(())
}

/// A log entry registering job `id`, at `index` of term 1.
fn register_entry(id: &str, index: u64) -> openraft::Entry<TypeConfig> {
    use crate::server::raft::Command;
    use crate::structs::{Job, JobId, TaskGroup};

    let mut job = Job {
        id: JobId::from(id),
        task_groups: vec![TaskGroup {
            name: "cache".to_owned(),
            count: 1,
            ..TaskGroup::default()
        }],
        ..Job::default()
    };
    job.canonicalize();
    openraft::Entry::<TypeConfig> {
        log_id: log_id(index),
        payload: openraft::EntryPayload::Normal(Command::JobRegister {
            job: Arc::new(job),
            enforce_index: None,
            eval: None,
        }),
    }
}

fn log_id(index: u64) -> super::types::LogId {
    openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index)
}

/// A snapshot, as a leader would send it, of a state with job `id` registered at `index`.
async fn leader_snapshot(id: &str, index: u64) -> anyhow::Result<super::types::Snapshot> {
    let mut leader = StateMachine::open(Arc::new(StateStore::new()), None, None)?;
    leader.apply([register_entry(id, index)]).await?;
    Ok(leader.get_snapshot_builder().await.build_snapshot().await?)
}

#[tokio::test]
async fn snapshot_file_restores_the_state() -> anyhow::Result<()> {
    use crate::structs::JobId;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("snapshot.json");
    let store = Arc::new(StateStore::new());
    let mut machine = StateMachine::open(store.clone(), Some(path.clone()), None)?;
    machine.apply([register_entry("example", 5)]).await?;
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

/// openraft builds a snapshot in a task of its own, from a view taken when the build began; a
/// snapshot from the leader can be installed meanwhile, and the log it covers purged. The late
/// build must not replace it: after a restart the kept snapshot would restore less than the log
/// was purged to, a state openraft refuses (it panicked the flaky `ha::three_servers` restart).
#[tokio::test]
async fn a_build_older_than_an_installed_snapshot_does_not_replace_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("snapshot.json");
    let mut follower = StateMachine::open(Arc::new(StateStore::new()), Some(path.clone()), None)?;
    follower.apply([register_entry("early", 5)]).await?;
    let mut late_build = follower.get_snapshot_builder().await;

    let from_leader = leader_snapshot("later", 10).await?;
    let mut received = follower.begin_receiving_snapshot().await?;
    *received = *from_leader.snapshot;
    follower
        .install_snapshot(&from_leader.meta, received)
        .await?;
    let built = late_build.build_snapshot().await?;
    assert_eq!(built.meta.last_log_id, Some(log_id(5)));

    let current = follower
        .get_current_snapshot()
        .await?
        .expect("a snapshot is kept");
    assert_eq!(current.meta.last_log_id, Some(log_id(10)));
    let mut restarted = StateMachine::open(Arc::new(StateStore::new()), Some(path), None)?;
    assert_eq!(restarted.applied_state().await?.0, Some(log_id(10)));
    Ok(())
}

/// The Raft core purges the log a received snapshot covers as soon as it hands the snapshot to
/// the state machine worker. The purge must wait until the snapshot is durable: a crash between
/// the two would otherwise leave a log purged past anything the data dir can restore.
#[tokio::test]
async fn a_purge_waits_until_the_received_snapshot_is_kept() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut follower = StateMachine::open(
        Arc::new(StateStore::new()),
        Some(dir.path().join("snapshot.json")),
        None,
    )?;
    let mut log = LogStore::open(&dir.path().join("raft.redb"), follower.snapshot_gate())?;
    // With no snapshot being received, a purge proceeds at once (openraft purges only what a
    // snapshot it built covers, and those are kept before it hears of them).
    log.purge(log_id(1)).await?;

    let from_leader = leader_snapshot("later", 10).await?;
    let mut received = follower.begin_receiving_snapshot().await?;
    *received = *from_leader.snapshot;
    let mut purging = log.clone();
    let mut purge = std::pin::pin!(purging.purge(log_id(10)));
    assert!(
        futures::poll!(purge.as_mut()).is_pending(),
        "the purge waits for the snapshot"
    );
    assert_eq!(
        log.get_log_state().await?.last_purged_log_id,
        Some(log_id(1))
    );
    follower
        .install_snapshot(&from_leader.meta, received)
        .await?;
    purge.await?;
    assert_eq!(
        log.get_log_state().await?.last_purged_log_id,
        Some(log_id(10))
    );

    // A snapshot that cannot be installed: the purge it would cover fails instead.
    let mut received = follower.begin_receiving_snapshot().await?;
    received.get_mut().extend_from_slice(b"not a snapshot");
    let mut meta = from_leader.meta.clone();
    meta.last_log_id = Some(log_id(20));
    let mut purging = log.clone();
    let mut purge = std::pin::pin!(purging.purge(log_id(20)));
    assert!(futures::poll!(purge.as_mut()).is_pending());
    assert!(follower.install_snapshot(&meta, received).await.is_err());
    let error = purge.await.expect_err("the purge fails");
    assert!(
        error.to_string().contains("installing the snapshot"),
        "{error}"
    );
    assert_eq!(
        log.get_log_state().await?.last_purged_log_id,
        Some(log_id(10))
    );
    Ok(())
}
