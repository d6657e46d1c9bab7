//! `cargo bench --bench density`: how many idle native Wasm tasks one agent carries.
//!
//! Starts the real `caravan` binary as a dev agent (server and client, loopback ports, its own
//! data dir), registers one service job of N tasks (`CARAVAN_BENCH_TASKS`, default 10,000) of the
//! `counter` example blocked on a one-hour timer, and measures:
//! - `start_s`: from `PUT /v1/jobs` until the job summary counts all N allocations running;
//! - `rss_mb`: the agent's resident memory (`VmRSS` of its `/proc` entry) while they run;
//! - `api_p99_ms`: p99 of a few hundred `GET /v1/jobs` and `GET /v1/node/<id>/allocations`
//!   answered while they run;
//! - `stop_s`: from `DELETE /v1/job/<id>` (`job stop`) until every allocation is terminal on the
//!   client.
//!
//! The agent's threads, memory mappings, open descriptors and child processes are printed beside, since each of
//! them is a per-task cost when it grows with N. The last line is
//! `tasks=N start_s=S rss_mb=M api_p99_ms=P stop_s=T`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

const COUNTER_WASM: &str = env!("CARAVAN_EXAMPLE_COUNTER_WASM");
/// The agent binary: this build's, or `CARAVAN_BENCH_BIN` (another build, for a before/after).
const CARAVAN: &str = env!("CARGO_BIN_EXE_caravan");
const JOB_ID: &str = "density";
/// Requests of each kind for the latency figure.
const API_SAMPLES: usize = 150;
/// How long each phase may take before the bench gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(300);

/// The agent process, killed when dropped.
struct Agent {
    child: Child,
    _dir: tempfile::TempDir,
    url: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_agent(tasks: u64) -> anyhow::Result<Agent> {
    let dir = tempfile::tempdir()?;
    let wasm_dir = Path::new(COUNTER_WASM)
        .parent()
        .context("the counter example has no directory")?;
    // Each task asks 10 MHz, 10 MB of memory and 10 MB of disk: the node is told it has room.
    let room = tasks.saturating_mul(10).saturating_add(10_000);
    let config = format!(
        r#"
data_dir  = "{data}"
log_level = "{log_level}"
ports {{
  http = {http}
  rpc  = {rpc}
}}
client {{
  cpu_total_compute = {room}
  memory_total_mb   = {room}
{disk}  artifact {{
    file_allowlist = ["{wasm_dir}"]
  }}
}}
"#,
        data = dir.path().join("data").display(),
        // `CARAVAN_BENCH_LOG_LEVEL=debug` for a look at what the agent does meanwhile.
        log_level =
            std::env::var("CARAVAN_BENCH_LOG_LEVEL").unwrap_or_else(|_| String::from("WARN")),
        http = free_port()?,
        rpc = free_port()?,
        wasm_dir = wasm_dir.display(),
        // Only where the disk would not hold them (builds before the option lack it).
        disk = if room > 50_000 {
            format!("  disk_free_mb      = {room}\n")
        } else {
            String::new()
        },
    );
    let config_path = dir.path().join("agent.hcl");
    std::fs::write(&config_path, &config)?;
    let http_port = config
        .lines()
        .find_map(|line| line.trim().strip_prefix("http = "))
        .context("http port")?
        .to_owned();
    let binary = std::env::var("CARAVAN_BENCH_BIN").unwrap_or_else(|_| CARAVAN.to_owned());
    let child = Command::new(binary)
        .args(["agent", "-dev", "-config"])
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the caravan agent")?;
    Ok(Agent {
        child,
        _dir: dir,
        url: format!("http://127.0.0.1:{http_port}"),
    })
}

fn job(tasks: u64) -> Value {
    json!({ "Job": {
        "ID": JOB_ID,
        "Type": "service",
        "TaskGroups": [{
            "Name": "idle",
            "Count": tasks,
            // Nomad's default asks 300 MB of disk per allocation.
            "EphemeralDisk": { "SizeMB": 10 },
            "Tasks": [{
                "Name": "counter",
                "Driver": "wasm",
                // Prints one line, then sleeps an hour on a WASI timer.
                "Config": { "module": "local/counter.wasm", "args": ["3600000"] },
                "Artifacts": [{ "GetterSource": format!("file://{COUNTER_WASM}"), "RelativeDest": "local/" }],
                "Resources": { "CPU": 10, "MemoryMB": 10 },
            }],
        }],
    }})
}

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let response = http.get(url).send().await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "GET {url}: {status}: {text}");
    Ok(serde_json::from_str(&text)?)
}

/// The job's allocation counts by client status, from its summary.
async fn summary(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let summary = get_json(http, &format!("{url}/v1/job/{JOB_ID}/summary")).await?;
    Ok(summary["Summary"]["idle"].clone())
}

fn count(summary: &Value, field: &str) -> u64 {
    summary[field].as_u64().unwrap_or(0)
}

/// Polls until `done` holds of the job summary; the time it took.
async fn until(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut said = Instant::now();
    loop {
        let counts = summary(http, url).await.unwrap_or(Value::Null);
        if done(&counts) {
            return Ok(started.elapsed());
        }
        if said.elapsed() >= Duration::from_secs(5) {
            said = Instant::now();
            eprintln!("{what}: {:.0?}: {counts}", started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < PHASE_LIMIT,
            "{what}: not reached in {PHASE_LIMIT:?}; the summary says {counts}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A field of `/proc/<pid>/status` in its first number (`VmRSS` in kB, `Threads`).
fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// The agent's memory mappings: the kernel refuses an mmap past `vm.max_map_count`.
fn mappings(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map_or(0, |maps| maps.lines().count())
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

fn child_processes(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map_or(0, |children| children.split_whitespace().count())
}

fn report(pid: u32, when: &str) -> f64 {
    let rss_mb = proc_status(pid, "VmRSS") as f64 / 1024.0;
    eprintln!(
        "{when}: rss_mb={rss_mb:.1} threads={} mappings={} fds={} child_processes={}",
        proc_status(pid, "Threads"),
        mappings(pid),
        open_fds(pid),
        child_processes(pid)
    );
    rss_mb
}

fn p99_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    let index = (samples.len() * 99 / 100).min(samples.len().saturating_sub(1));
    samples
        .get(index)
        .map_or(0.0, |p99| p99.as_secs_f64() * 1e3)
}

async fn run(tasks: u64) -> anyhow::Result<()> {
    let agent = start_agent(tasks)?;
    let pid = agent.child.id();
    let url = agent.url.clone();
    let http = reqwest::Client::new();
    let started = Instant::now();
    let node_id = loop {
        let nodes = get_json(&http, &format!("{url}/v1/nodes"))
            .await
            .unwrap_or(Value::Null);
        if let Some(node) = nodes
            .as_array()
            .and_then(|nodes| nodes.iter().find(|node| node["Status"] == "ready"))
        {
            break node["ID"].as_str().unwrap_or_default().to_owned();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the agent's node never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    report(pid, "idle agent");

    let response = http
        .put(format!("{url}/v1/jobs"))
        .json(&job(tasks))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "register: {}",
        response.text().await?
    );
    let registered = Instant::now();
    until(&http, &url, "all running", |counts| {
        count(counts, "Running") >= tasks
    })
    .await?;
    let start_s = registered.elapsed().as_secs_f64();

    let paths = [
        "/v1/jobs".to_owned(),
        format!("/v1/node/{node_id}/allocations"),
    ];
    let mut samples = vec![Vec::with_capacity(API_SAMPLES); paths.len()];
    for _ in 0..API_SAMPLES {
        for (path, samples) in paths.iter().zip(&mut samples) {
            let sent = Instant::now();
            let response = http.get(format!("{url}{path}")).send().await?;
            anyhow::ensure!(response.status().is_success(), "GET {path}");
            response.bytes().await?;
            samples.push(sent.elapsed());
        }
    }
    for (path, samples) in paths.iter().zip(&samples) {
        eprintln!("GET {path}: p99_ms={:.2}", p99_ms(samples.clone()));
    }
    let api_p99_ms = p99_ms(samples.concat());
    let rss_mb = report(pid, "running");
    let summary_now = summary(&http, &url).await?;
    anyhow::ensure!(
        count(&summary_now, "Running") == tasks,
        "tasks stopped running while measured: {summary_now}"
    );

    let stop_sent = Instant::now();
    let response = http.delete(format!("{url}/v1/job/{JOB_ID}")).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "stop: {}",
        response.text().await?
    );
    until(&http, &url, "all stopped", |counts| {
        count(counts, "Complete") + count(counts, "Failed") + count(counts, "Lost") >= tasks
            && count(counts, "Running") + count(counts, "Starting") == 0
    })
    .await?;
    let stop_s = stop_sent.elapsed().as_secs_f64();
    report(pid, "stopped");
    println!(
        "tasks={tasks} start_s={start_s:.2} rss_mb={rss_mb:.0} api_p99_ms={api_p99_ms:.2} stop_s={stop_s:.2}"
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` runs bench binaries without `--bench`: only measure when asked to.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("density: run with `cargo bench --bench density`");
        return Ok(());
    }
    let tasks = match std::env::var("CARAVAN_BENCH_TASKS") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("CARAVAN_BENCH_TASKS={text:?} is not a number"))?,
        Err(_) => 10_000,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(tasks))
}
