//! Placements per second through the whole server path, with simulated nodes.
//!
//! Every placement goes register → evaluation → broker → worker → scheduler → plan → plan applier
//! → Raft commit (redb on disk, fsync per append) → state store. Nodes are registered through the
//! same server endpoint clients use. Sizes and shapes come from the environment:
//!
//! - `CARAVAN_BENCH_SHAPE` (default `plain`): the jobs' shape.
//!   - `plain`: one group of small Wasm tasks (20 MHz, 32 MB), nothing else;
//!   - `c1m`: Nomad's C1M job (2016, 1,000,000 containers on 5,000 hosts): each group has a
//!     constraint (`${attr.kernel.name} = linux`), a spread over the nodes' `${meta.rack}` (ten
//!     racks) and a dynamic port, so every placement picks a host port on its node;
//!   - `c2m`: Nomad's C2M run (2020, 2,000,000 on 6,100 hosts): the C1M job at its size, 2,000,000
//!     allocations over 10,000 nodes unless the sizes below say otherwise;
//! - `CARAVAN_BENCH_ALLOCS` (default 1,000,000; `c2m` 2,000,000): allocations to place;
//! - `CARAVAN_BENCH_NODES` (default 5,000; `c2m` 10,000): simulated nodes;
//! - `CARAVAN_BENCH_JOBS` (default allocs / 1000): jobs the allocations are split over;
//! - `CARAVAN_BENCH_DEV=1`: keep the Raft log in memory, as `-dev` does;
//! - `CARAVAN_BENCH_SWEEP=1`: instead of one run, the same number of placements
//!   (`CARAVAN_BENCH_ALLOCS`, default 50,000 here) over 1,000, 10,000 and 50,000 nodes, one server
//!   each, one after the other: how the cost of a placement grows with the cluster.
//!
//! Each run ends with the line `shape=S allocs=N nodes=N seconds=S placements_per_sec=P
//! peak_rss_mb=M`: `seconds` from the first job registration to the last evaluation complete, peak
//! RSS being the process's `VmHWM` (reset before each run of a sweep, through
//! `/proc/self/clear_refs`). A sweep then prints `sweep nodes=N us_per_placement=U ratio=R` per size,
//! `ratio` against the smallest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use caravan::server::{Server, ServerOptions, worker::default_scheduler};
use caravan::structs::{Constraint, Job, NetworkResource, Node, NodeId, Port, Spread, TaskGroup};
use futures::StreamExt;

#[path = "fixtures/mod.rs"]
mod fixtures;
use fixtures::NodeSize;

/// The same allocator as the `caravan` binary, so the figures are the agent's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The node counts of a sweep.
const SWEEP_NODES: [usize; 3] = [1_000, 10_000, 50_000];

/// How many racks the simulated nodes sit in (`meta.rack`), for the C1M spread.
const RACKS: usize = 10;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The jobs a run places.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Plain,
    C1m,
    C2m,
}

impl Shape {
    fn from_env() -> anyhow::Result<Self> {
        match std::env::var("CARAVAN_BENCH_SHAPE").as_deref() {
            Err(_) | Ok("plain") => Ok(Self::Plain),
            Ok("c1m") => Ok(Self::C1m),
            Ok("c2m") => Ok(Self::C2m),
            Ok(other) => anyhow::bail!("CARAVAN_BENCH_SHAPE={other:?}: expected plain, c1m or c2m"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::C1m => "c1m",
            Self::C2m => "c2m",
        }
    }

    /// The record's size: (allocations, nodes).
    fn default_size(self) -> (usize, usize) {
        match self {
            Self::Plain | Self::C1m => (1_000_000, 5_000),
            Self::C2m => (2_000_000, 10_000),
        }
    }

    fn job(self, idx: usize, count: usize) -> Job {
        let mut job = fixtures::wasm_job(format!("bench-{idx:06}"), count);
        if self != Self::Plain {
            c1m_group(&mut job.task_groups[0]);
            job.canonicalize();
        }
        job
    }
}

/// Turns a plain group into C1M's: a constraint, a spread and a dynamic port.
fn c1m_group(group: &mut TaskGroup) {
    group.constraints.push(Constraint {
        l_target: "${attr.kernel.name}".to_owned(),
        r_target: "linux".to_owned(),
        operand: "=".to_owned(),
    });
    group.spreads.push(Spread {
        attribute: "${meta.rack}".to_owned(),
        weight: 50,
        spread_target: Vec::new(),
    });
    group.networks.push(NetworkResource {
        dynamic_ports: vec![Port {
            label: "db".to_owned(),
            ..Port::default()
        }],
        ..NetworkResource::default()
    });
}

fn node(idx: usize, id: NodeId) -> Node {
    let size = NodeSize {
        cores: 16,
        memory_mb: 32_768,
        disk_mb: 1_000_000,
    };
    let mut node = fixtures::node("bench-node", idx, id, &size);
    node.meta
        .insert("rack".to_owned(), format!("rack-{}", idx % RACKS));
    node.attributes.insert(
        "unique.network.ip-address".to_owned(),
        format!("10.{}.{}.{}", idx >> 16, (idx >> 8) & 0xff, idx & 0xff),
    );
    node
}

/// The resident memory's peak (`VmHWM`) in MiB.
fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// What one run asks for.
#[derive(Clone, Copy, Debug)]
struct RunSize {
    shape: Shape,
    allocs: usize,
    nodes: usize,
    jobs: usize,
    dev: bool,
}

fn main() -> anyhow::Result<()> {
    let shape = Shape::from_env()?;
    let sweep = std::env::var("CARAVAN_BENCH_SWEEP").is_ok_and(|value| value == "1");
    let dev = std::env::var("CARAVAN_BENCH_DEV").is_ok_and(|value| value == "1");
    let (default_allocs, default_nodes) = if sweep {
        (50_000, SWEEP_NODES[0])
    } else {
        shape.default_size()
    };
    let allocs = env_usize("CARAVAN_BENCH_ALLOCS", default_allocs);
    let jobs = env_usize("CARAVAN_BENCH_JOBS", (allocs / 1000).max(1)).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let size = RunSize {
        shape,
        allocs,
        nodes: env_usize("CARAVAN_BENCH_NODES", default_nodes),
        jobs,
        dev,
    };
    if !sweep {
        runtime.block_on(run(size))?;
        return Ok(());
    }
    let mut costs: Vec<(usize, f64)> = Vec::new();
    for nodes in SWEEP_NODES {
        // Each size's peak is its own: "5" resets VmHWM (Linux >= 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let size = RunSize { nodes, ..size };
        let (placed, seconds) = runtime.block_on(run(size))?;
        anyhow::ensure!(placed > 0, "nothing placed over {nodes} nodes");
        costs.push((nodes, seconds * 1e6 / placed as f64));
    }
    let smallest = costs[0].1;
    for (nodes, us_per_placement) in costs {
        println!(
            "sweep nodes={nodes} us_per_placement={us_per_placement:.1} ratio={:.2}",
            us_per_placement / smallest
        );
    }
    Ok(())
}

/// Places `size.allocs` allocations over `size.nodes` nodes on a fresh server and prints the
/// figures; returns the allocations placed and the seconds they took.
async fn run(size: RunSize) -> anyhow::Result<(usize, f64)> {
    let RunSize {
        shape,
        allocs,
        nodes,
        jobs,
        dev,
    } = size;
    let data_dir = tempfile::tempdir()?;
    let options = ServerOptions {
        data_dir: Some(data_dir.path().to_owned()),
        http_addr: "127.0.0.1:0".parse()?,
        rpc_addr: "127.0.0.1:0".parse()?,
        dev,
        node_name: "bench".to_owned(),
        // One job may carry every allocation (`CARAVAN_BENCH_JOBS=1`).
        limits: caravan::server::limits::JobLimits {
            max_placements: u64::MAX,
            ..Default::default()
        },
        ..ServerOptions::default()
    };
    let server = Server::start(options, default_scheduler()).await?;
    anyhow::ensure!(
        server.wait_for_leadership(Duration::from_secs(10)).await,
        "no leadership"
    );

    // Random UUIDs, as real clients make them.
    let node_ids: Vec<NodeId> = (0..nodes).map(|_| NodeId::generate()).collect();
    let heartbeat = fixtures::heartbeat(&server, &node_ids);

    let started_nodes = Instant::now();
    futures::stream::iter(node_ids.iter().cloned().enumerate())
        .map(|(idx, node_id)| {
            let server = server.clone();
            async move { server.node_register(node(idx, node_id)).await }
        })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "registered {nodes} nodes in {:.2}s",
        started_nodes.elapsed().as_secs_f64()
    );

    let per_job = allocs / jobs;
    let remainder = allocs % jobs;
    let started = Instant::now();
    let eval_ids = futures::stream::iter(0..jobs)
        .map(|idx| {
            let server = server.clone();
            let count = per_job + usize::from(idx < remainder);
            async move { server.job_register(shape.job(idx, count)).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|response| response.map(|response| response.eval_id))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "registered {jobs} jobs in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    let mut failed = 0;
    for eval_id in &eval_ids {
        let eval_id = caravan::structs::EvalId::from(eval_id.as_str());
        let wait = server.wait_for_eval(&eval_id, Duration::from_secs(900));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                eval = &mut wait => {
                    let eval = eval.ok_or_else(|| anyhow::anyhow!("evaluation {eval_id} vanished"))?;
                    if eval.status != caravan::structs::EvalStatus::Complete {
                        failed += 1;
                    }
                    break;
                }
                _ = progress.tick() => {
                    let snapshot = server.store.snapshot();
                    let placed = snapshot.tables().allocs.len();
                    let mut evals_by_kind: BTreeMap<(&str, String), usize> = BTreeMap::new();
                    for eval in snapshot.tables().evals.values() {
                        *evals_by_kind
                            .entry((eval.triggered_by.as_str(), eval.status.to_string()))
                            .or_default() += 1;
                    }
                    println!(
                        "{:>6.1}s placed {placed} broker {:?} evals {evals_by_kind:?}",
                        started.elapsed().as_secs_f64(),
                        server.broker.stats()
                    );
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let snapshot = server.store.snapshot();
    let placed = snapshot.tables().allocs.len();
    println!("evaluations not complete: {failed}; allocations in state: {placed}");
    let mut evals_by_kind: BTreeMap<(String, String), usize> = BTreeMap::new();
    for eval in snapshot.tables().evals.values() {
        *evals_by_kind
            .entry((eval.triggered_by.clone(), eval.status.to_string()))
            .or_default() += 1;
    }
    println!("evaluations by trigger and status: {evals_by_kind:?}");
    let placements_per_sec = placed as f64 / seconds;
    let peak = peak_rss_mb();
    heartbeat.abort();
    server.shutdown().await;
    drop(data_dir);
    println!(
        "shape={} allocs={placed} nodes={nodes} seconds={seconds:.2} placements_per_sec={placements_per_sec:.0} peak_rss_mb={peak}",
        shape.name()
    );
    Ok((placed, seconds))
}
