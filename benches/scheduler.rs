//! Placements per second through the whole server path, with simulated nodes.
//!
//! Every placement goes register → evaluation → broker → worker → scheduler → plan → plan applier
//! → Raft commit (redb on disk, fsync per append) → state store. Nodes are registered through the
//! same server endpoint clients use. Sizes come from the environment:
//!
//! - `CARAVAN_BENCH_ALLOCS` (default 1000000): allocations to place;
//! - `CARAVAN_BENCH_NODES` (default 5000): simulated nodes;
//! - `CARAVAN_BENCH_JOBS` (default allocs / 1000): jobs the allocations are split over;
//! - `CARAVAN_BENCH_DEV=1`: keep the Raft log in memory, as `-dev` does.
//!
//! The last line reads `allocs=N nodes=N seconds=S placements_per_sec=P peak_rss_mb=M`, peak RSS
//! being the process's `VmHWM`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use caravan::server::{Server, ServerOptions, worker::default_scheduler};
use caravan::structs::{Job, Node, NodeId};
use futures::StreamExt;

#[path = "fixtures/mod.rs"]
mod fixtures;
use fixtures::NodeSize;

/// The same allocator as the `caravan` binary, so the figures are the agent's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn node(idx: usize, id: NodeId) -> Node {
    let size = NodeSize {
        cores: 16,
        memory_mb: 32_768,
        disk_mb: 1_000_000,
    };
    fixtures::node("bench-node", idx, id, &size)
}

fn job(idx: usize, count: usize) -> Job {
    fixtures::wasm_job(format!("bench-{idx:06}"), count)
}

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

fn main() -> anyhow::Result<()> {
    let allocs = env_usize("CARAVAN_BENCH_ALLOCS", 1_000_000);
    let nodes = env_usize("CARAVAN_BENCH_NODES", 5_000);
    let jobs = env_usize("CARAVAN_BENCH_JOBS", (allocs / 1000).max(1)).max(1);
    let dev = std::env::var("CARAVAN_BENCH_DEV").is_ok_and(|value| value == "1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(allocs, nodes, jobs, dev))
}

async fn run(allocs: usize, nodes: usize, jobs: usize, dev: bool) -> anyhow::Result<()> {
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
            async move { server.job_register(job(idx, count)).await }
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
        "allocs={placed} nodes={nodes} seconds={seconds:.2} placements_per_sec={placements_per_sec:.0} peak_rss_mb={peak}"
    );
    Ok(())
}
