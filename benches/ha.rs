//! Registrations per second through a follower and through the leader of a three-server cluster,
//! against a single server, in one run; and the failover time (the leader stopped to a write
//! accepted through a survivor), median of several rounds.
//!
//! Every server runs in this process on loopback ports with its data dir in a temp dir (the Raft
//! log on disk, fsync per write), and jobs are registered over real HTTP, `CARAVAN_BENCH_HA_JOBS`
//! of them (default 400) with `CARAVAN_BENCH_HA_CONCURRENCY` in flight (default 32). Each job is a
//! one-task batch job for a datacenter with no node, so the work measured is the API, the
//! forwarding and Raft, plus the scheduler's (blocked) evaluation. `CARAVAN_BENCH_HA_ROUNDS`
//! failover rounds (default 3): the leader is shut down without a word to the others, as a crash
//! would leave them.
//!
//! Prints `setup=S jobs=N seconds=T registrations_per_second=R` per setup, then
//! `failover_ms=[...] failover_median_ms=M`.

use std::time::{Duration, Instant};

use caravan::agent::start::{RunningServer, ServerOptions, bind, start_server_on};
use caravan::server::cluster::JoinOptions;
use caravan::server::worker::default_scheduler;
use futures::StreamExt;
use serde_json::{Value, json};

/// The same allocator as the `caravan` binary, so the figures are the agent's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Starts `count` servers that expect each other.
async fn cluster(dir: &std::path::Path, count: u32) -> anyhow::Result<Vec<RunningServer>> {
    let mut listeners = Vec::new();
    for _ in 0..count {
        let http = bind("127.0.0.1:0".parse()?, "HTTP").await?;
        let rpc = bind("127.0.0.1:0".parse()?, "RPC").await?;
        listeners.push((http, rpc));
    }
    let joins: Vec<String> = listeners
        .iter()
        .map(|(_, rpc)| rpc.local_addr().map(|addr| addr.to_string()))
        .collect::<Result<_, _>>()?;
    let mut servers = Vec::new();
    for (index, (http, rpc)) in listeners.into_iter().enumerate() {
        let options = ServerOptions {
            data_dir: Some(dir.join(format!("server{index}"))),
            node_name: format!("server{index}"),
            bootstrap_expect: count,
            join: JoinOptions {
                addresses: if count > 1 { joins.clone() } else { Vec::new() },
                retry_interval: Duration::from_millis(100),
                retry_max: 0,
            },
            num_workers: 1,
            ..ServerOptions::default()
        };
        servers.push(start_server_on(http, rpc, options, default_scheduler(), None).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !servers
        .iter()
        .all(|server| server.server.leader_addr().is_some())
        || servers
            .iter()
            .all(|server| server.server.peers().len() < count as usize)
    {
        anyhow::ensure!(Instant::now() < deadline, "the cluster did not form");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(servers)
}

fn job(id: &str) -> Value {
    json!({ "Job": {
        "ID": id,
        "Name": id,
        "Type": "batch",
        "Datacenters": ["nowhere"],
        "TaskGroups": [{
            "Name": "g",
            "Count": 1,
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/true" },
                "Resources": { "CPU": 10, "MemoryMB": 10 },
            }],
        }],
    }})
}

async fn register(http: &reqwest::Client, url: &str, id: &str) -> anyhow::Result<()> {
    let response = http
        .put(format!("{url}/v1/jobs"))
        .json(&job(id))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{}: {}",
        response.status(),
        response.text().await.unwrap_or_default()
    );
    Ok(())
}

/// Registers `jobs` jobs through `url`, `concurrency` at a time; returns the seconds it took.
async fn measure(url: &str, setup: &str, jobs: usize, concurrency: usize) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..jobs)
        .map(|index| {
            let (http, url) = (http.clone(), url.to_owned());
            async move { register(&http, &url, &format!("{setup}-{index}")).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    for result in results {
        result?;
    }
    println!(
        "setup={setup} jobs={jobs} seconds={seconds:.2} registrations_per_second={:.0}",
        jobs as f64 / seconds
    );
    Ok(seconds)
}

async fn run() -> anyhow::Result<()> {
    let jobs = env_number("CARAVAN_BENCH_HA_JOBS", 400);
    let concurrency = env_number("CARAVAN_BENCH_HA_CONCURRENCY", 32);
    let rounds = env_number("CARAVAN_BENCH_HA_ROUNDS", 3);

    let dir = tempfile::tempdir()?;
    let single = cluster(&dir.path().join("single"), 1).await?;
    measure(&single[0].http_url(), "single", jobs, concurrency).await?;
    for server in single {
        server.shutdown().await;
    }

    let three = cluster(&dir.path().join("three"), 3).await?;
    let leader = three
        .iter()
        .position(|server| server.server.is_leader())
        .ok_or_else(|| anyhow::anyhow!("no leader"))?;
    let follower = (leader + 1) % three.len();
    measure(&three[leader].http_url(), "three-leader", jobs, concurrency).await?;
    measure(
        &three[follower].http_url(),
        "three-follower",
        jobs,
        concurrency,
    )
    .await?;
    for server in three {
        server.shutdown().await;
    }

    let mut failovers = Vec::new();
    for round in 0..rounds {
        let mut servers = cluster(&dir.path().join(format!("failover{round}")), 3).await?;
        let leader = servers
            .iter()
            .position(|server| server.server.is_leader())
            .ok_or_else(|| anyhow::anyhow!("no leader"))?;
        let killed = servers.remove(leader);
        let survivor = servers[0].http_url();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let stopped_at = Instant::now();
        killed.shutdown().await;
        let mut attempt = 0;
        while register(&http, &survivor, &format!("probe-{round}-{attempt}"))
            .await
            .is_err()
        {
            attempt += 1;
            anyhow::ensure!(
                stopped_at.elapsed() < Duration::from_secs(30),
                "no new leader"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        failovers.push(stopped_at.elapsed().as_millis());
        for server in servers {
            server.shutdown().await;
        }
    }
    failovers.sort_unstable();
    println!(
        "failover_ms={failovers:?} failover_median_ms={}",
        failovers.get(failovers.len() / 2).copied().unwrap_or(0)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` runs every bench target once: nothing to measure then.
    if std::env::args().any(|arg| arg == "--test" || arg == "--list") {
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}
