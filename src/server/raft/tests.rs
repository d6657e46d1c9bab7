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
    tokio::io::AsyncWriteExt::write_all(&mut *received, b"not a snapshot").await?;
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

/// `allocs` running allocations of 20 jobs over 50 nodes, each with the task events a client
/// reports, as a busy cluster's state holds them.
fn large_state(allocs: usize) -> crate::server::state::PersistedState {
    use crate::server::state::{PersistedAlloc, PersistedState};
    use crate::structs::{
        AllocClientStatus, AllocId, AllocatedCpu, AllocatedResources, AllocatedTaskResources,
        Allocation, EvalId, Job, JobId, Node, NodeId, SortedVecMap, TaskEvent, TaskGroup,
        TaskState, TaskStateValue,
    };

    let jobs: Vec<Arc<Job>> = (0..20)
        .map(|idx| {
            let mut job = Job {
                id: JobId::from(format!("web-{idx}")),
                task_groups: vec![TaskGroup {
                    name: "web".to_owned(),
                    count: 1,
                    ..TaskGroup::default()
                }],
                ..Job::default()
            };
            job.canonicalize();
            Arc::new(job)
        })
        .collect();
    let nodes: Vec<Arc<Node>> = (0..50)
        .map(|idx| {
            Arc::new(Node {
                id: NodeId::generate(),
                name: format!("client-{idx}"),
                ..Node::default()
            })
        })
        .collect();
    let allocs = (0..allocs)
        .map(|idx| {
            let (job, node) = (&jobs[idx % jobs.len()], &nodes[idx % nodes.len()]);
            let event = |event_type: &str| TaskEvent {
                event_type: event_type.to_owned(),
                time: 1_764_826_000_000_000_000 + idx as i64,
                ..TaskEvent::default()
            };
            PersistedAlloc {
                job_version: Some(job.version),
                alloc: Allocation {
                    id: AllocId::generate(),
                    namespace: job.namespace.clone(),
                    eval_id: EvalId::generate(),
                    name: Allocation::make_name(&job.id, "web", idx as u32),
                    node_id: node.id.clone(),
                    node_name: node.name.clone(),
                    job_id: job.id.clone(),
                    task_group: "web".to_owned(),
                    allocated_resources: AllocatedResources {
                        tasks: SortedVecMap::from([(
                            "server".to_owned(),
                            AllocatedTaskResources {
                                cpu: AllocatedCpu {
                                    cpu_shares: 100,
                                    ..AllocatedCpu::default()
                                },
                                ..AllocatedTaskResources::default()
                            },
                        )]),
                        ..AllocatedResources::default()
                    },
                    client_status: AllocClientStatus::Running,
                    task_states: SortedVecMap::from([(
                        "server".to_owned(),
                        TaskState {
                            state: TaskStateValue::Running,
                            events: vec![event("Received"), event("Started")],
                            ..TaskState::default()
                        },
                    )]),
                    create_index: 10 + idx as u64,
                    modify_index: 10 + idx as u64,
                    ..Allocation::default()
                },
            }
        })
        .collect();
    PersistedState {
        job_versions: jobs.clone(),
        jobs,
        nodes,
        allocs,
        ..PersistedState::default()
    }
}

/// Whether two stores hold the same state: every allocation (each pointing at the one stored
/// copy of its job version), what each node has in use, the indexes.
fn assert_same_state(expected: &StateStore, actual: &StateStore) {
    let (expected, actual) = (expected.snapshot(), actual.snapshot());
    let (expected, actual) = (expected.tables(), actual.tables());
    assert_eq!(actual.indexes, expected.indexes);
    assert_eq!(actual.allocs.len(), expected.allocs.len());
    assert_eq!(actual.jobs.len(), expected.jobs.len());
    assert_eq!(actual.nodes.len(), expected.nodes.len());
    for (id, alloc) in &expected.allocs {
        let restored = actual.allocs.get(id).expect("every allocation is restored");
        assert_eq!(**restored, **alloc);
        let job = restored.job.as_ref().expect("the job it runs");
        let stored = actual
            .job_versions
            .values()
            .find(|stored| stored.id == job.id && stored.version == job.version)
            .expect("its job version");
        assert!(Arc::ptr_eq(job, stored), "the job version is shared");
    }
    assert_eq!(actual.node_usage, expected.node_usage);
    assert_eq!(actual.allocs_by_node.len(), expected.allocs_by_node.len());
}

/// A snapshot of a realistic size goes through files both ways, as from a leader to a follower
/// that lags past the log: built a row at a time into the data dir, a fraction of the size of
/// the JSON document earlier builds wrote, installed from the received file, kept, and restored
/// again after a restart.
#[tokio::test]
async fn a_snapshot_of_30000_allocations_streams_through_files() -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;

    use crate::server::state::PersistedState;

    let dir = tempfile::tempdir()?;
    let leader_store = Arc::new(StateStore::new());
    leader_store.restore(large_state(30_000));
    let leader_path = dir.path().join("leader.bin");
    let mut leader = StateMachine::open(leader_store.clone(), Some(leader_path.clone()), None)?;
    let built = leader.get_snapshot_builder().await.build_snapshot().await?;
    let size = std::fs::metadata(&leader_path)?.len();
    let json = serde_json::to_vec(&PersistedState::from_snapshot(&leader_store.snapshot()))?;
    assert!(
        size * 10 < json.len() as u64,
        "the snapshot is {size} bytes, the JSON document {} bytes",
        json.len()
    );

    let follower_store = Arc::new(StateStore::new());
    let follower_path = dir.path().join("follower.bin");
    let mut follower =
        StateMachine::open(follower_store.clone(), Some(follower_path.clone()), None)?;
    let mut received = follower.begin_receiving_snapshot().await?;
    let mut sent = built.snapshot;
    tokio::io::copy(&mut *sent, &mut *received).await?;
    received.shutdown().await?;
    follower.install_snapshot(&built.meta, received).await?;
    assert_same_state(&leader_store, &follower_store);
    assert_eq!(std::fs::metadata(&follower_path)?.len(), size);

    let restarted_store = Arc::new(StateStore::new());
    StateMachine::open(restarted_store.clone(), Some(follower_path), None)?;
    assert_same_state(&leader_store, &restarted_store);
    let mut files: Vec<String> = std::fs::read_dir(dir.path())?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    files.sort();
    assert_eq!(
        files,
        ["follower.bin", "leader.bin"],
        "no file is left behind"
    );
    Ok(())
}

/// A data dir an earlier build left, with its snapshot as one JSON document, still starts: the
/// state is restored and the file rewritten in the current format.
#[tokio::test]
async fn a_json_snapshot_of_an_earlier_build_is_restored_and_rewritten() -> anyhow::Result<()> {
    use crate::server::state::PersistedState;
    use crate::structs::JobId;

    let dir = tempfile::tempdir()?;
    let source = StateStore::new();
    let mut machine = StateMachine::open(Arc::new(StateStore::new()), None, None)?;
    machine.apply([register_entry("legacy", 7)]).await?;
    let built = machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await?;
    source.restore(large_state(10));
    let path = dir.path().join("snapshot.bin");
    let legacy = serde_json::json!({
        "meta": built.meta,
        "state": PersistedState::from_snapshot(&source.snapshot()),
    });
    std::fs::write(&path, serde_json::to_vec(&legacy)?)?;

    let store = Arc::new(StateStore::new());
    let mut restored = StateMachine::open(store.clone(), Some(path.clone()), None)?;
    assert_eq!(restored.applied_state().await?.0, Some(log_id(7)));
    assert_same_state(&source, &store);
    assert!(crate::codec::is_stream(&std::fs::read(&path)?));
    let again = Arc::new(StateStore::new());
    StateMachine::open(again.clone(), Some(path), None)?;
    assert_same_state(&source, &again);
    assert!(
        again
            .snapshot()
            .job("default", &JobId::from("web-0"))
            .is_some()
    );
    Ok(())
}
