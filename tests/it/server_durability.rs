//! A server killed with SIGKILL and restarted on the same data dir has every acknowledged job
//! (Raft paper §5.3 and §7: committed entries are durable; snapshots and compaction lose nothing).
//!
//! Two launchers run the same scenario: the real binary (`caravan agent -config server.hcl`), and
//! this test binary re-executed as a child that runs `agent::start::run_server` — both are real
//! processes killed with SIGKILL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::server::service_job;

const CHILD_ENV: &str = "CARAVAN_TEST_CHILD_SERVER";

/// Runs a server when re-executed as a child by [`spawn_child_server`]; does nothing otherwise.
#[test]
fn child_server_process() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    let spec: Value = serde_json::from_str(&spec)?;
    let options = caravan::agent::start::ServerOptions {
        data_dir: Some(spec["data_dir"].as_str().unwrap_or_default().into()),
        http_addr: spec["http"].as_str().unwrap_or_default().parse()?,
        rpc_addr: spec["rpc"].as_str().unwrap_or_default().parse()?,
        num_workers: 1,
        snapshot_after_logs: spec["snapshot_after_logs"].as_u64().unwrap_or(20_000),
        ..caravan::agent::start::ServerOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(caravan::agent::start::run_server(options))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Ports {
    http: u16,
    rpc: u16,
}

fn spawn_child_server(data_dir: &Path, ports: &Ports) -> anyhow::Result<Child> {
    let spec = json!({
        "data_dir": data_dir,
        "http": format!("127.0.0.1:{}", ports.http),
        "rpc": format!("127.0.0.1:{}", ports.rpc),
        // Small, so the scenario crosses snapshots and log compaction.
        "snapshot_after_logs": 8,
    });
    Ok(Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "server_durability::child_server_process",
            "--nocapture",
        ])
        .env(CHILD_ENV, spec.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

fn spawn_binary_agent(data_dir: &Path, ports: &Ports) -> anyhow::Result<Child> {
    let config = data_dir.join("server.hcl");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nbind_addr = \"127.0.0.1\"\nports {{\n  http = {}\n  rpc = {}\n}}\nserver {{\n  enabled = true\n  bootstrap_expect = 1\n}}\n",
            data_dir.display(),
            ports.http,
            ports.rpc
        ),
    )?;
    Ok(Command::new(env!("CARGO_BIN_EXE_caravan"))
        .args(["agent", "-config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Waits until the server at `url` has a leader.
async fn wait_for_leader(
    http: &reqwest::Client,
    url: &str,
    child: &mut Child,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the server exited early: {status}");
        }
        if let Ok(response) = http.get(format!("{url}/v1/status/leader")).send().await {
            let leader: String = response.json().await.unwrap_or_default();
            if !leader.is_empty() {
                return Ok(());
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no leader within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn registered_jobs(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<String>> {
    let jobs: Vec<Value> = http
        .get(format!("{url}/v1/jobs"))
        .send()
        .await?
        .json()
        .await?;
    let mut ids: Vec<String> = jobs
        .iter()
        .filter_map(|job| job["ID"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

async fn sigkill_keeps_acknowledged_jobs(
    spawn: fn(&Path, &Ports) -> anyhow::Result<Child>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ports = Ports {
        http: free_port()?,
        rpc: free_port()?,
    };
    let url = format!("http://127.0.0.1:{}", ports.http);
    let http = reqwest::Client::new();
    let mut child = spawn(dir.path(), &ports)?;
    let outcome = async {
        wait_for_leader(&http, &url, &mut child).await?;
        let mut acknowledged = Vec::new();
        for job_idx in 0..25 {
            let id = format!("durable-{job_idx:02}");
            let response = http
                .put(format!("{url}/v1/jobs"))
                .json(&json!({ "Job": service_job(&id, 1) }))
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "register {id}: {}",
                response.status()
            );
            acknowledged.push(id);
        }
        // One job updated to a second version, one stopped.
        http.put(format!("{url}/v1/jobs"))
            .json(&json!({ "Job": service_job("durable-00", 2) }))
            .send()
            .await?
            .error_for_status()?;
        http.delete(format!("{url}/v1/job/durable-01"))
            .send()
            .await?
            .error_for_status()?;
        anyhow::Ok(acknowledged)
    }
    .await;
    // SIGKILL: no shutdown, no flush beyond what was acknowledged.
    child.kill()?;
    child.wait()?;
    let acknowledged = outcome?;

    let mut restarted = spawn(dir.path(), &ports)?;
    let checked = async {
        wait_for_leader(&http, &url, &mut restarted).await?;
        let ids = registered_jobs(&http, &url).await?;
        assert_eq!(ids, acknowledged, "every acknowledged job survives SIGKILL");
        let job: Value = http
            .get(format!("{url}/v1/job/durable-00"))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(job["Version"], 1);
        assert_eq!(job["TaskGroups"][0]["Count"], 2);
        let stopped: Value = http
            .get(format!("{url}/v1/job/durable-01"))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(stopped["Stop"], true);
        // Writes still work after the restart.
        http.put(format!("{url}/v1/jobs"))
            .json(&json!({ "Job": service_job("after-restart", 1) }))
            .send()
            .await?
            .error_for_status()?;
        anyhow::Ok(())
    }
    .await;
    restarted.kill()?;
    restarted.wait()?;
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_server_process_keeps_every_acknowledged_job() -> anyhow::Result<()> {
    sigkill_keeps_acknowledged_jobs(spawn_child_server).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_caravan_agent_keeps_every_acknowledged_job() -> anyhow::Result<()> {
    sigkill_keeps_acknowledged_jobs(spawn_binary_agent).await
}
