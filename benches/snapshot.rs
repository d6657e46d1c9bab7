//! A Raft snapshot of a large state, built by one state machine and installed by another, as a
//! leader and a follower that lags past the log do: `CARAVAN_BENCH_SNAPSHOT_ALLOCS` running
//! allocations (default 1,000,000) of 1,000 jobs over 5,000 nodes. Then the baseline in the same
//! process: the one JSON document of earlier builds, encoded and decoded the way they did.
//!
//! The snapshot is built into a file of a temp dir and fsynced, as a server's data dir keeps it;
//! the follower receives the file's bytes as openraft's chunks would write them, then installs.
//! Prints per path `path=P bytes=B build_s=S install_s=S build_peak_mb=M install_peak_mb=M`:
//! each peak is the most the process's resident memory grew above where the phase began (VmHWM,
//! reset before each phase through `/proc/self/clear_refs`), then the ratios.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use caravan::server::raft::StateMachine;
use caravan::server::state::{PersistedState, StateStore};
use caravan::structs::{
    AllocClientStatus, AllocDesiredStatus, AllocId, AllocatedCpu, AllocatedMemory,
    AllocatedResources, AllocatedTaskResources, Allocation, EvalId, Job, JobId, JobType, Node,
    NodeId, NodeStatus, Resources, Task, TaskEvent, TaskGroup, TaskState, TaskStateValue,
};
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;

/// The same allocator as the `caravan` binary, so the figures are the agent's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The resident memory now and its peak since the last reset, in MiB.
fn rss_mb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts a phase: resets the peak to the resident memory now, and returns that.
fn begin_phase() -> u64 {
    // "5" resets VmHWM (Linux ≥ 4.0); without it the peak is the process's since it began.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    rss_mb().0
}

/// How far the resident memory peaked above `start` during the phase.
fn phase_peak(start: u64) -> u64 {
    rss_mb().1.saturating_sub(start)
}

fn job(idx: usize, count: usize) -> Arc<Job> {
    let mut job = Job {
        id: JobId::from(format!("service-{idx:04}")),
        job_type: JobType::Service,
        datacenters: vec!["dc1".to_owned()],
        task_groups: vec![TaskGroup {
            name: "work".to_owned(),
            count: i32::try_from(count).unwrap_or(i32::MAX),
            tasks: vec![Task {
                name: "wasm".to_owned(),
                driver: "wasm".to_owned(),
                resources: Some(Resources {
                    cpu: 20,
                    memory_mb: 32,
                    ..Resources::default()
                }),
                ..Task::default()
            }],
            ..Default::default()
        }],
        ..Job::default()
    };
    job.canonicalize();
    Arc::new(job)
}

fn node(idx: usize) -> Arc<Node> {
    Arc::new(Node {
        id: NodeId::generate(),
        name: format!("client-{idx}"),
        datacenter: "dc1".to_owned(),
        node_pool: "default".to_owned(),
        status: NodeStatus::Ready,
        ..Node::default()
    })
}

/// A running allocation of `job` on `node`, as a client reports it: three task events.
fn running_alloc(job: &Arc<Job>, index: usize, node: &Node, at: u64) -> Allocation {
    let time = 1_764_826_000_000_000_000 + i64::try_from(at).unwrap_or(0);
    let event = |event_type: &str, message: &str| TaskEvent {
        event_type: event_type.to_owned(),
        time,
        display_message: message.to_owned(),
        ..TaskEvent::default()
    };
    Allocation {
        id: AllocId::generate(),
        namespace: "default".to_owned(),
        eval_id: EvalId::generate(),
        name: Allocation::make_name(&job.id, "work", u32::try_from(index).unwrap_or(0)),
        node_id: node.id.clone(),
        node_name: node.name.clone(),
        job_id: job.id.clone(),
        job: Some(job.clone()),
        task_group: "work".to_owned(),
        allocated_resources: AllocatedResources {
            tasks: BTreeMap::from([(
                "wasm".to_owned(),
                AllocatedTaskResources {
                    cpu: AllocatedCpu {
                        cpu_shares: 20,
                        ..AllocatedCpu::default()
                    },
                    memory: AllocatedMemory {
                        memory_mb: 32,
                        memory_max_mb: 0,
                    },
                    ..AllocatedTaskResources::default()
                },
            )]),
            ..AllocatedResources::default()
        },
        desired_status: AllocDesiredStatus::Run,
        client_status: AllocClientStatus::Running,
        task_states: BTreeMap::from([(
            "wasm".to_owned(),
            TaskState {
                state: TaskStateValue::Running,
                started_at: Some("2025-12-04T05:26:40Z".to_owned()),
                events: vec![
                    event("Received", "Task received by client"),
                    event("Task Setup", "Building Task Directory"),
                    event("Started", "Task started by client"),
                ],
                ..TaskState::default()
            },
        )]),
        create_index: at,
        modify_index: at + 1,
        alloc_modify_index: at,
        create_time: time,
        modify_time: time,
        ..Allocation::default()
    }
}

/// `allocs` running allocations of 1,000 jobs over 5,000 nodes.
fn large_state(allocs: usize) -> PersistedState {
    let jobs_count = 1000.min(allocs.max(1));
    let per_job = allocs.div_ceil(jobs_count);
    let jobs: Vec<Arc<Job>> = (0..jobs_count).map(|idx| job(idx, per_job)).collect();
    let nodes: Vec<Arc<Node>> = (0..5000).map(node).collect();
    let allocs = (0..allocs)
        .map(|idx| caravan::server::state::PersistedAlloc {
            job_version: Some(0),
            alloc: {
                let mut alloc = running_alloc(
                    &jobs[idx / per_job],
                    idx % per_job,
                    &nodes[idx % nodes.len()],
                    10 + idx as u64,
                );
                alloc.job = None;
                alloc
            },
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

fn main() -> anyhow::Result<()> {
    let allocs = env_number("CARAVAN_BENCH_SNAPSHOT_ALLOCS", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(allocs))
}

struct Figures {
    bytes: u64,
    build_s: f64,
    install_s: f64,
    build_peak_mb: u64,
    install_peak_mb: u64,
}

impl Figures {
    fn print(&self, path: &str) {
        println!(
            "path={path} bytes={} build_s={:.2} install_s={:.2} build_peak_mb={} install_peak_mb={}",
            self.bytes, self.build_s, self.install_s, self.build_peak_mb, self.install_peak_mb
        );
    }
}

async fn run(allocs: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let leader_store = Arc::new(StateStore::new());
    leader_store.restore(large_state(allocs));
    println!(
        "state of {allocs} allocations made in {:.1}s, rss_mb={}",
        started.elapsed().as_secs_f64(),
        rss_mb().0
    );
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("leader"))?;
    std::fs::create_dir_all(dir.path().join("follower"))?;

    // The streaming snapshot: built into a file by the leader's state machine.
    let mut leader = StateMachine::open(
        leader_store.clone(),
        Some(dir.path().join("leader/snapshot.bin")),
        None,
    )?;
    let start = begin_phase();
    let began = Instant::now();
    let mut snapshot = leader.get_snapshot_builder().await.build_snapshot().await?;
    let build_s = began.elapsed().as_secs_f64();
    let build_peak_mb = phase_peak(start);
    let bytes = std::fs::metadata(dir.path().join("leader/snapshot.bin"))?.len();

    // Received by a follower, then installed.
    let follower_store = Arc::new(StateStore::new());
    let mut follower = StateMachine::open(
        follower_store.clone(),
        Some(dir.path().join("follower/snapshot.bin")),
        None,
    )?;
    let mut received = follower.begin_receiving_snapshot().await?;
    tokio::io::copy(&mut *snapshot.snapshot, &mut *received).await?;
    tokio::io::AsyncWriteExt::shutdown(&mut *received).await?;
    let start = begin_phase();
    let began = Instant::now();
    follower.install_snapshot(&snapshot.meta, received).await?;
    let install_s = began.elapsed().as_secs_f64();
    let install_peak_mb = phase_peak(start);
    let installed = follower_store.snapshot().tables().allocs.len();
    anyhow::ensure!(
        installed == allocs,
        "the follower has {installed} allocations, not {allocs}"
    );
    drop((follower, follower_store, snapshot));
    let streaming = Figures {
        bytes,
        build_s,
        install_s,
        build_peak_mb,
        install_peak_mb,
    };
    streaming.print("cbor-zstd-stream");

    // The baseline: one JSON document of the whole state, written and fsynced, read back whole.
    let start = begin_phase();
    let began = Instant::now();
    let json = serde_json::to_vec(&PersistedState::from_snapshot(&leader_store.snapshot()))?;
    let path = dir.path().join("leader/snapshot.json");
    std::fs::write(&path, &json)?;
    std::fs::File::open(&path)?.sync_all()?;
    let build_s = began.elapsed().as_secs_f64();
    let build_peak_mb = phase_peak(start);
    let bytes = json.len() as u64;
    drop(json);

    let json_store = StateStore::new();
    let start = begin_phase();
    let began = Instant::now();
    let read = std::fs::read(&path)?;
    let state: PersistedState = serde_json::from_slice(&read)?;
    drop(read);
    json_store.restore(state);
    let install_s = began.elapsed().as_secs_f64();
    let install_peak_mb = phase_peak(start);
    anyhow::ensure!(json_store.snapshot().tables().allocs.len() == allocs);
    let json = Figures {
        bytes,
        build_s,
        install_s,
        build_peak_mb,
        install_peak_mb,
    };
    json.print("json-document");

    let ratio = |old: f64, new: f64| if new > 0.0 { old / new } else { 0.0 };
    println!(
        "json/stream: bytes={:.1}x build_time={:.1}x install_time={:.1}x build_peak={:.1}x install_peak={:.1}x",
        ratio(json.bytes as f64, streaming.bytes as f64),
        ratio(json.build_s, streaming.build_s),
        ratio(json.install_s, streaming.install_s),
        ratio(json.build_peak_mb as f64, streaming.build_peak_mb as f64),
        ratio(
            json.install_peak_mb as f64,
            streaming.install_peak_mb as f64
        ),
    );
    Ok(())
}
