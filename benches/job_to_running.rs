//! `cargo bench --bench job_to_running`: median time from `job run` to the task running, on a dev
//! agent (server and client in this process, every write through Raft), for a raw_exec task and a
//! Wasm task.
//!
//! Each round registers a service job through `PUT /v1/jobs` (what `caravan job run` sends) and
//! follows `/v1/job/:id/allocations` with blocking queries until the allocation's client status is
//! `running`: the evaluation, the scheduler, the plan applied through Raft, the client's watch, the
//! alloc runner's hooks, the driver's start and the status update back to the servers are all in
//! the figure. The job is then purged and its task stopped before the next round.
//!
//! The last line is `raw_exec_p50_ms=X wasm_p50_ms=Y`.

use std::time::{Duration, Instant};

use anyhow::Context;
use caravan::agent::config::AgentConfig;
use caravan::agent::run::start_agent;
use serde_json::{Value, json};

const ROUNDS: usize = 20;
const COUNTER_WASM: &str = env!("CARAVAN_EXAMPLE_COUNTER_WASM");

fn job(id: &str, driver: &str, config: Value) -> Value {
    json!({ "Job": {
        "ID": id,
        "Type": "service",
        "TaskGroups": [{
            "Name": "g",
            "Count": 1,
            "Tasks": [{
                "Name": "t",
                "Driver": driver,
                "Config": config,
                "Resources": { "CPU": 20, "MemoryMB": 16 },
            }],
        }],
    }})
}

/// Registers the job and returns the time until its allocation runs.
async fn time_to_running(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    id: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = http.put(format!("{url}/v1/jobs")).json(body).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "register: {}",
        response.text().await?
    );
    let mut index = 0_u64;
    loop {
        let response = http
            .get(format!(
                "{url}/v1/job/{id}/allocations?index={index}&wait=10s"
            ))
            .send()
            .await?;
        index = response
            .headers()
            .get("X-Nomad-Index")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or(index);
        let allocs: Vec<Value> = response.json().await?;
        if allocs
            .iter()
            .any(|alloc| alloc["ClientStatus"] == "running")
        {
            return Ok(started.elapsed());
        }
        if let Some(failed) = allocs
            .iter()
            .find(|alloc| alloc["ClientStatus"] == "failed")
        {
            anyhow::bail!("allocation failed: {failed}");
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "job {id} never ran"
        );
    }
}

async fn purge(http: &reqwest::Client, url: &str, id: &str) -> anyhow::Result<()> {
    http.delete(format!("{url}/v1/job/{id}?purge=true"))
        .send()
        .await?;
    // Wait for the client to stop the task, so rounds do not pile up.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let allocs: Vec<Value> = http
            .get(format!("{url}/v1/allocations"))
            .send()
            .await?
            .json()
            .await?;
        if allocs
            .iter()
            .all(|alloc| alloc["ClientStatus"] != "running")
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("job {id} did not stop")
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

async fn run() -> anyhow::Result<()> {
    let mut config = AgentConfig::dev();
    config.log_level = Some("WARN".to_owned());
    config.ports.http = Some(0);
    config.ports.rpc = Some(0);
    let agent = start_agent(config, true)
        .await
        .context("starting the dev agent")?;
    let url = format!("http://{}", agent.http_addr);
    let http = reqwest::Client::new();
    // The client registers in the background: wait for a ready node.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes: Vec<Value> = http
            .get(format!("{url}/v1/nodes"))
            .send()
            .await?
            .json()
            .await?;
        if nodes.iter().any(|node| node["Status"] == "ready") {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the dev agent's node never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kinds = [
        (
            "raw_exec",
            json!({ "command": "/bin/sleep", "args": ["60"] }),
        ),
        ("wasm", json!({ "module": COUNTER_WASM })),
    ];
    let mut medians = Vec::new();
    for (driver, task_config) in kinds {
        let mut samples = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let id = format!("bench-{driver}-{round}");
            let body = job(&id, driver, task_config.clone());
            samples.push(time_to_running(&http, &url, &body, &id).await?);
            purge(&http, &url, &id).await?;
        }
        let median = median_ms(samples.clone());
        let max = samples
            .iter()
            .max()
            .map_or(0.0, |max| max.as_secs_f64() * 1e3);
        println!("{driver}: {ROUNDS} rounds, p50 {median:.2} ms, max {max:.2} ms");
        medians.push(median);
    }
    agent.shutdown().await;
    println!(
        "raw_exec_p50_ms={:.2} wasm_p50_ms={:.2}",
        medians[0], medians[1]
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` runs bench binaries with `--test`-less arguments; `cargo bench` passes
    // `--bench`. Only measure when asked to.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("job_to_running: run with `cargo bench --bench job_to_running`");
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
