//! A Raft snapshot of a large state, built by one state machine and installed by another, as a
//! leader and a follower that lags past the log do: `CARAVAN_BENCH_SNAPSHOT_ALLOCS` running
//! allocations (default 1,000,000) of 1,000 jobs over 5,000 nodes. The baseline is the one JSON
//! document of earlier builds, encoded and decoded the way they did, in the same run.
//!
//! This process makes the state and builds both: the streaming snapshot into a file of a temp
//! dir, fsynced, as a server's data dir keeps it, then the JSON document, written and fsynced.
//! `build_peak_mb` is how far the resident memory peaked above where each build began (VmHWM,
//! reset through `/proc/self/clear_refs`). Each file is then installed by a fresh process (this
//! bench run again), as a follower that receives it would: `install_peak_mb` is that process's
//! peak resident memory, the installed state included. Prints one line per path,
//! `path=P bytes=B build_s=S build_peak_mb=M install_s=S install_peak_mb=M`, then the ratios.

use std::sync::Arc;
use std::time::Instant;

use caravan::codec::{StreamKind, StreamReader};
use caravan::server::raft::StateMachine;
use caravan::server::state::{PersistedState, StateStore};
use caravan::structs::{
    AllocClientStatus, AllocDesiredStatus, AllocId, AllocatedCpu, AllocatedMemory,
    AllocatedResources, AllocatedTaskResources, Allocation, EvalId, Job, JobId, JobType, Node,
    NodeId, NodeStatus, Resources, SortedVecMap, Task, TaskEvent, TaskGroup, TaskState,
    TaskStateValue,
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
            tasks: SortedVecMap::from([(
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
        task_states: SortedVecMap::from([(
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

/// Set in the process that installs a file: which path (`stream` or `json`) and the file.
const INSTALL_ENV: &str = "CARAVAN_BENCH_SNAPSHOT_INSTALL";
const FILE_ENV: &str = "CARAVAN_BENCH_SNAPSHOT_FILE";

fn main() -> anyhow::Result<()> {
    let allocs = env_number("CARAVAN_BENCH_SNAPSHOT_ALLOCS", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match std::env::var(INSTALL_ENV) {
        Ok(path) => {
            let file = std::path::PathBuf::from(std::env::var(FILE_ENV)?);
            runtime.block_on(install(&path, &file, allocs))
        }
        Err(_) => runtime.block_on(run(allocs)),
    }
}

/// Installs `file` (of `path`) into a fresh state, as a follower does, and prints the figures.
async fn install(path: &str, file: &std::path::Path, allocs: usize) -> anyhow::Result<()> {
    let store = Arc::new(StateStore::new());
    let began = Instant::now();
    if path == "stream" {
        let dir = tempfile::tempdir_in(file.parent().unwrap_or(std::path::Path::new(".")))?;
        let mut follower =
            StateMachine::open(store.clone(), Some(dir.path().join("snapshot.bin")), None)?;
        // The leader's chunks land in the file `begin_receiving_snapshot` made.
        let mut received = follower.begin_receiving_snapshot().await?;
        let mut sent = tokio::fs::File::open(file).await?;
        tokio::io::copy(&mut sent, &mut *received).await?;
        tokio::io::AsyncWriteExt::shutdown(&mut *received).await?;
        // The meta openraft sends with the chunks: the stream's first item.
        let mut stream = StreamReader::new(std::fs::File::open(file)?, StreamKind::RaftSnapshot)?;
        let meta: openraft::SnapshotMeta<u64, openraft::BasicNode> = stream.item()?;
        follower.install_snapshot(&meta, received).await?;
    } else {
        let read = std::fs::read(file)?;
        let state: PersistedState = serde_json::from_slice(&read)?;
        drop(read);
        store.restore(state);
    }
    let install_s = began.elapsed().as_secs_f64();
    let installed = store.snapshot().tables().allocs.len();
    anyhow::ensure!(
        installed == allocs,
        "{path}: installed {installed} allocations, not {allocs}"
    );
    println!("install_s={install_s:.2} install_peak_mb={}", rss_mb().1);
    Ok(())
}

/// Runs this bench again to install `file` of `path`: its `install_s` and `install_peak_mb`.
fn install_in_fresh_process(
    path: &str,
    file: &std::path::Path,
    allocs: usize,
) -> anyhow::Result<(f64, u64)> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .env(INSTALL_ENV, path)
        .env(FILE_ENV, file)
        .env("CARAVAN_BENCH_SNAPSHOT_ALLOCS", allocs.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "installing {path}: {}",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = |key: &str| {
        stdout
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(key))
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no {key} in {stdout:?}"))
    };
    Ok((
        value("install_s=")?.parse()?,
        value("install_peak_mb=")?.parse()?,
    ))
}

struct Figures {
    bytes: u64,
    build_s: f64,
    build_peak_mb: u64,
    install_s: f64,
    install_peak_mb: u64,
}

impl Figures {
    fn print(&self, path: &str) {
        println!(
            "path={path} bytes={} build_s={:.2} build_peak_mb={} install_s={:.2} install_peak_mb={}",
            self.bytes, self.build_s, self.build_peak_mb, self.install_s, self.install_peak_mb
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

    // The streaming snapshot: built into a file by the leader's state machine.
    let stream_file = dir.path().join("snapshot.bin");
    let mut leader = StateMachine::open(leader_store.clone(), Some(stream_file.clone()), None)?;
    let start = begin_phase();
    let began = Instant::now();
    leader.get_snapshot_builder().await.build_snapshot().await?;
    let stream_build = (began.elapsed().as_secs_f64(), phase_peak(start));

    // The baseline: one JSON document of the whole state, written and fsynced.
    let json_file = dir.path().join("snapshot.json");
    let start = begin_phase();
    let began = Instant::now();
    let json = serde_json::to_vec(&PersistedState::from_snapshot(&leader_store.snapshot()))?;
    std::fs::write(&json_file, &json)?;
    std::fs::File::open(&json_file)?.sync_all()?;
    let json_build = (began.elapsed().as_secs_f64(), phase_peak(start));
    drop(json);
    drop((leader, leader_store));

    let (install_s, install_peak_mb) = install_in_fresh_process("stream", &stream_file, allocs)?;
    let streaming = Figures {
        bytes: std::fs::metadata(&stream_file)?.len(),
        build_s: stream_build.0,
        build_peak_mb: stream_build.1,
        install_s,
        install_peak_mb,
    };
    streaming.print("cbor-zstd-stream");
    let (install_s, install_peak_mb) = install_in_fresh_process("json", &json_file, allocs)?;
    let json = Figures {
        bytes: std::fs::metadata(&json_file)?.len(),
        build_s: json_build.0,
        build_peak_mb: json_build.1,
        install_s,
        install_peak_mb,
    };
    json.print("json-document");

    let ratio = |old: f64, new: f64| if new > 0.0 { old / new } else { 0.0 };
    println!(
        "json/stream: bytes={:.1}x build_time={:.2}x install_time={:.2}x build_peak={:.0}x install_peak={:.2}x",
        ratio(json.bytes as f64, streaming.bytes as f64),
        ratio(json.build_s, streaming.build_s),
        ratio(json.install_s, streaming.install_s),
        ratio(
            json.build_peak_mb as f64,
            streaming.build_peak_mb.max(1) as f64
        ),
        ratio(
            json.install_peak_mb as f64,
            streaming.install_peak_mb as f64
        ),
    );
    Ok(())
}
