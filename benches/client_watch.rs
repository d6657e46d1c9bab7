//! What the servers send to clients while allocations are placed, and how long until every
//! client has seen all of its allocations: the allocation watch of Nomad's protocol (a blocking
//! query on the node's own index answering with IDs and `AllocModifyIndex`es, then a pull of the
//! changed allocations) against the watch caravan had before (a blocking query on the
//! cluster-wide allocation index answering with every allocation of the node and its job).
//!
//! Both run in one process, one after the other, each on a fresh server with the same workload:
//! `CARAVAN_BENCH_CLIENTS` simulated clients (default 1000) registered and heartbeating, each
//! watching over real HTTP (one `reqwest` client per simulated node, in a child process of this
//! bench so the server's CPU time is measured alone), while `CARAVAN_BENCH_ALLOCS` allocations
//! (default 100000) in `CARAVAN_BENCH_JOBS` jobs (default allocs / 1000) are placed across them.
//! `CARAVAN_BENCH_MODES` picks the watches to run (default `legacy,node`).
//!
//! Per mode it prints `mode=M allocs=N clients=N seconds_to_seen=S server_cpu_s=C
//! client_bytes=B bytes_per_placement=P responses=R`, then the ratios of the second mode to the
//! first. `seconds_to_seen` runs from the first job registration until every client has seen all
//! of its allocations; `server_cpu_s` is this process's CPU time over the same span.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caravan::agent::start::{ServerOptions, start_server};
use caravan::api::types::node::{NodeClientAllocs, PullAllocsRequest, PullAllocsResponse};
use caravan::structs::{AllocId, Allocation, EvalId, EvalStatus, Job, Node, NodeId};
use futures::StreamExt;

#[path = "fixtures/mod.rs"]
mod fixtures;
use fixtures::NodeSize;

/// The same allocator as the `caravan` binary, so the figures are the agent's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_ENV: &str = "CARAVAN_BENCH_WATCH_CHILD";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return runtime.block_on(watchers::run(&spec));
    }
    let clients = env_usize("CARAVAN_BENCH_CLIENTS", 1000);
    let allocs = env_usize("CARAVAN_BENCH_ALLOCS", 100_000);
    let jobs = env_usize("CARAVAN_BENCH_JOBS", (allocs / 1000).max(1)).max(1);
    let modes = std::env::var("CARAVAN_BENCH_MODES").unwrap_or_else(|_| "legacy,node".to_owned());
    let mut results = Vec::new();
    for mode in modes
        .split(',')
        .map(str::trim)
        .filter(|mode| !mode.is_empty())
    {
        anyhow::ensure!(
            matches!(mode, "legacy" | "node"),
            "unknown mode {mode:?}: legacy or node"
        );
        let result = runtime.block_on(run_mode(mode, clients, allocs, jobs))?;
        println!("{result}");
        results.push(result);
    }
    if let [before, after] = results.as_slice() {
        println!(
            "{} vs {}: bytes_per_placement {:.3}x server_cpu_s {:.3}x seconds_to_seen {:.3}x",
            after.mode,
            before.mode,
            after.bytes_per_placement() / before.bytes_per_placement(),
            after.server_cpu_s / before.server_cpu_s,
            after.seconds_to_seen / before.seconds_to_seen,
        );
    }
    Ok(())
}

struct ModeResult {
    mode: String,
    allocs: usize,
    clients: usize,
    seconds_to_seen: f64,
    server_cpu_s: f64,
    client_bytes: u64,
    responses: u64,
}

impl ModeResult {
    fn bytes_per_placement(&self) -> f64 {
        self.client_bytes as f64 / self.allocs.max(1) as f64
    }
}

impl std::fmt::Display for ModeResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mode={} allocs={} clients={} seconds_to_seen={:.2} server_cpu_s={:.2} \
             client_bytes={} bytes_per_placement={:.0} responses={}",
            self.mode,
            self.allocs,
            self.clients,
            self.seconds_to_seen,
            self.server_cpu_s,
            self.client_bytes,
            self.bytes_per_placement(),
            self.responses
        )
    }
}

/// CPU time (user + system) this process has used so far.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |idx: usize| {
        fields
            .get(idx)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat(5): 11 and 12 after the state field.
    (ticks(11) + ticks(12)) / 100.0
}

fn node(idx: usize, id: NodeId) -> Node {
    let size = NodeSize {
        cores: 64,
        memory_mb: 262_144,
        disk_mb: 10_000_000,
    };
    fixtures::node("watch-node", idx, id, &size)
}

fn job(idx: usize, count: usize) -> Job {
    fixtures::wasm_job(format!("watch-{idx:05}"), count)
}

async fn run_mode(
    mode: &str,
    clients: usize,
    allocs: usize,
    jobs: usize,
) -> anyhow::Result<ModeResult> {
    let data_dir = tempfile::tempdir()?;
    let running = start_server(ServerOptions {
        data_dir: Some(data_dir.path().to_owned()),
        http_addr: "127.0.0.1:0".parse()?,
        rpc_addr: "127.0.0.1:0".parse()?,
        node_name: "watch-bench".to_owned(),
        ..ServerOptions::default()
    })
    .await?;
    let server = running.server.clone();
    anyhow::ensure!(
        server.wait_for_leadership(Duration::from_secs(10)).await,
        "no leadership"
    );
    let node_ids: Vec<NodeId> = (0..clients).map(|_| NodeId::generate()).collect();
    let heartbeat = fixtures::heartbeat(&server, &node_ids);
    for (idx, node_id) in node_ids.iter().enumerate() {
        server.node_register(node(idx, node_id.clone())).await?;
    }

    // The watchers: a child process, one watch loop per node, reporting on stdout.
    let spec = format!(
        "{mode} {} {}",
        running.http_url(),
        node_ids
            .iter()
            .map(NodeId::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel::<watchers::Report>();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("the watchers' stdout is not piped"))?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(report) = watchers::Report::parse(&line)
                && reports_tx.send(report).is_err()
            {
                return;
            }
        }
    });
    // Every watcher has made its first round before the clock starts.
    let mut last = wait_report(&mut reports, |report| report.ready == clients as u64).await?;

    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let per_job = allocs / jobs;
    let remainder = allocs % jobs;
    let eval_ids = futures::stream::iter(0..jobs)
        .map(|idx| {
            let server = server.clone();
            let count = per_job + usize::from(idx < remainder);
            async move { server.job_register(job(idx, count)).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|response| response.map(|response| response.eval_id))
        .collect::<Result<Vec<_>, _>>()?;
    for eval_id in &eval_ids {
        let eval = server
            .wait_for_eval(&EvalId::from(eval_id.as_str()), Duration::from_secs(900))
            .await
            .ok_or_else(|| anyhow::anyhow!("evaluation {eval_id} vanished"))?;
        anyhow::ensure!(
            eval.status == EvalStatus::Complete,
            "evaluation {eval_id} ended {}",
            eval.status
        );
    }
    let placed = server.store.snapshot().tables().allocs.len() as u64;
    while last.seen < placed {
        last = wait_report(&mut reports, |report| report.seen >= placed).await?;
    }
    let seconds_to_seen = started.elapsed().as_secs_f64();
    let server_cpu_s = process_cpu_seconds() - cpu_before;
    // Closing the child's stdin stops it.
    drop(child.stdin.take());
    let _ = child.wait();
    heartbeat.abort();
    running.shutdown().await;
    Ok(ModeResult {
        mode: mode.to_owned(),
        allocs: usize::try_from(placed).unwrap_or(usize::MAX),
        clients,
        seconds_to_seen,
        server_cpu_s,
        client_bytes: last.bytes,
        responses: last.responses,
    })
}

async fn wait_report(
    reports: &mut tokio::sync::mpsc::UnboundedReceiver<watchers::Report>,
    done: impl Fn(&watchers::Report) -> bool,
) -> anyhow::Result<watchers::Report> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1800);
    loop {
        let report = tokio::time::timeout_at(deadline, reports.recv())
            .await
            .map_err(|_| anyhow::anyhow!("the watchers did not report in time"))?
            .ok_or_else(|| anyhow::anyhow!("the watchers exited"))?;
        if done(&report) {
            return Ok(report);
        }
    }
}

/// The child process: one watch loop per node over real HTTP.
mod watchers {
    use super::*;

    /// Totals over every watcher, printed every 100 ms.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Report {
        /// Watchers that finished their first round.
        pub ready: u64,
        /// Allocations the watchers know of, summed over nodes.
        pub seen: u64,
        /// Response body bytes received.
        pub bytes: u64,
        pub responses: u64,
    }

    impl Report {
        pub fn parse(line: &str) -> Option<Report> {
            let mut report = Report::default();
            for field in line.split_whitespace() {
                let (key, value) = field.split_once('=')?;
                let value: u64 = value.parse().ok()?;
                match key {
                    "ready" => report.ready = value,
                    "seen" => report.seen = value,
                    "bytes" => report.bytes = value,
                    "responses" => report.responses = value,
                    _ => return None,
                }
            }
            Some(report)
        }
    }

    #[derive(Default)]
    struct Totals {
        ready: AtomicU64,
        seen: AtomicU64,
        bytes: AtomicU64,
        responses: AtomicU64,
    }

    pub async fn run(spec: &str) -> anyhow::Result<()> {
        let mut parts = spec.split(' ');
        let (Some(mode), Some(url), Some(nodes)) = (parts.next(), parts.next(), parts.next())
        else {
            anyhow::bail!("bad watcher spec {spec:?}");
        };
        let totals = Arc::new(Totals::default());
        for (idx, node_id) in nodes.split(',').enumerate() {
            let totals = Arc::clone(&totals);
            let url = url.to_owned();
            let node_id = node_id.to_owned();
            // The secret `fixtures::node` registered node `idx` with: its proof of identity.
            let secret = format!("secret-{idx}");
            let legacy = mode == "legacy";
            tokio::spawn(async move {
                let result = if legacy {
                    watch_legacy(&url, &node_id, &totals).await
                } else {
                    watch_node(&url, &node_id, &secret, &totals).await
                };
                if let Err(err) = result {
                    eprintln!("watcher {node_id}: {err:#}");
                }
            });
        }
        // The parent closes stdin to stop the watchers.
        let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::stdin().lines().count();
            let _ = stop_tx.send(());
        });
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = &mut stop => return Ok(()),
            }
            let line = format!(
                "ready={} seen={} bytes={} responses={}",
                totals.ready.load(Ordering::Relaxed),
                totals.seen.load(Ordering::Relaxed),
                totals.bytes.load(Ordering::Relaxed),
                totals.responses.load(Ordering::Relaxed),
            );
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{line}")?;
            stdout.flush()?;
        }
    }

    fn index_of(response: &reqwest::Response) -> u64 {
        response
            .headers()
            .get("X-Nomad-Index")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    }

    /// Adjusts the total of seen allocations from `old` to `new` for one node.
    fn set_seen(totals: &Totals, old: &mut u64, new: u64) {
        if new >= *old {
            totals.seen.fetch_add(new - *old, Ordering::Relaxed);
        } else {
            totals.seen.fetch_sub(*old - new, Ordering::Relaxed);
        }
        *old = new;
    }

    /// The watch caravan's client had before: every allocation of the node, with its job, on
    /// every change of the cluster-wide allocation index.
    async fn watch_legacy(url: &str, node_id: &str, totals: &Totals) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let mut index = 0u64;
        let mut seen = 0u64;
        let mut first = true;
        loop {
            let response = http
                .get(format!(
                    "{url}/v1/node/{node_id}/allocations?index={index}&wait=5m"
                ))
                .send()
                .await?
                .error_for_status()?;
            index = index_of(&response).max(1);
            let body = response.bytes().await?;
            totals.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            totals.responses.fetch_add(1, Ordering::Relaxed);
            let allocs: Vec<Allocation> = serde_json::from_slice(&body)?;
            set_seen(totals, &mut seen, allocs.len() as u64);
            if std::mem::take(&mut first) {
                totals.ready.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Nomad's watch: IDs and modify indexes on the node's own index, then a pull of the
    /// allocations that changed.
    async fn watch_node(
        url: &str,
        node_id: &str,
        secret: &str,
        totals: &Totals,
    ) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let mut index = 0u64;
        let mut known: HashMap<AllocId, u64> = HashMap::new();
        let mut seen = 0u64;
        let mut first = true;
        loop {
            let response = http
                .get(format!(
                    "{url}/v1/internal/node/{node_id}/client-allocs?index={index}&wait=5m"
                ))
                .header("X-Nomad-Token", secret)
                .send()
                .await?
                .error_for_status()?;
            let body = response.bytes().await?;
            totals.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            totals.responses.fetch_add(1, Ordering::Relaxed);
            let listed: NodeClientAllocs = serde_json::from_slice(&body)?;
            index = listed.index.max(1);
            known.retain(|alloc_id, _| listed.allocs.contains_key(alloc_id));
            let stale: Vec<AllocId> = listed
                .allocs
                .iter()
                .filter(|(alloc_id, modify)| known.get(*alloc_id) != Some(*modify))
                .map(|(alloc_id, _)| alloc_id.clone())
                .collect();
            if !stale.is_empty() {
                let response = http
                    .post(format!("{url}/v1/internal/node/{node_id}/allocs/pull"))
                    .header("X-Nomad-Token", secret)
                    .json(&PullAllocsRequest { alloc_ids: stale })
                    .send()
                    .await?
                    .error_for_status()?;
                let body = response.bytes().await?;
                totals.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                totals.responses.fetch_add(1, Ordering::Relaxed);
                let pulled: PullAllocsResponse = serde_json::from_slice(&body)?;
                for alloc in pulled.into_allocs() {
                    known.insert(alloc.id.clone(), alloc.alloc_modify_index);
                }
            }
            set_seen(totals, &mut seen, known.len() as u64);
            if std::mem::take(&mut first) {
                totals.ready.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
