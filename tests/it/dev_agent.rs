//! A `-dev` agent in this process: jobs run on it, and stopping it stops their tasks (its data dir
//! goes away with it), as Nomad's dev mode does.

use std::time::Duration;

use caravan::agent::config::AgentConfig;
use caravan::agent::run::start_agent;
use serde_json::{Value, json};

use crate::support::server::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_agent_runs_a_job_and_stops_its_tasks_on_shutdown() -> anyhow::Result<()> {
    let mut config = AgentConfig::dev();
    config.ports.http = Some(0);
    config.ports.rpc = Some(0);
    let agent = start_agent(config, true).await?;
    let url = format!("http://{}", agent.http_addr);
    let http = reqwest::Client::new();
    wait_for(Duration::from_secs(30), || async {
        let nodes: Vec<Value> = http
            .get(format!("{url}/v1/nodes"))
            .send()
            .await?
            .json()
            .await?;
        Ok(nodes
            .iter()
            .any(|node| node["Status"] == "ready")
            .then_some(()))
    })
    .await?;
    // Nomad's dev mode: the node, and so every port of its tasks, is on loopback.
    let nodes: Vec<Value> = http
        .get(format!("{url}/v1/nodes"))
        .send()
        .await?
        .json()
        .await?;
    let node_id = nodes[0]["ID"].as_str().unwrap_or_default();
    let node: Value = http
        .get(format!("{url}/v1/node/{node_id}"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(node["Attributes"]["unique.network.ip-address"], "127.0.0.1");
    let marker = format!("caravan-dev-test-{}", std::process::id());
    let job = json!({ "Job": {
        "ID": "dev-sleeper",
        "TaskGroups": [{ "Name": "g",
            "Networks": [{ "DynamicPorts": [{ "Label": "http" }] }],
            "Tasks": [{
            "Name": "t",
            "Driver": "raw_exec",
            "Config": { "command": "/bin/sh", "args": ["-c", "while :; do sleep 1; done", marker] },
            "Resources": { "CPU": 20, "MemoryMB": 16 },
        }]}],
    }});
    let response = http.put(format!("{url}/v1/jobs")).json(&job).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "register: {}",
        response.status()
    );
    wait_for(Duration::from_secs(30), || async {
        let allocs: Vec<Value> = http
            .get(format!("{url}/v1/job/dev-sleeper/allocations"))
            .send()
            .await?
            .json()
            .await?;
        Ok(allocs
            .iter()
            .any(|alloc| alloc["ClientStatus"] == "running")
            .then_some(()))
    })
    .await?;
    let allocs: Vec<Value> = http
        .get(format!("{url}/v1/job/dev-sleeper/allocations"))
        .send()
        .await?
        .json()
        .await?;
    let alloc_id = allocs[0]["ID"].as_str().unwrap_or_default();
    let alloc: Value = http
        .get(format!("{url}/v1/allocation/{alloc_id}"))
        .send()
        .await?
        .json()
        .await?;
    let ports = &alloc["AllocatedResources"]["Shared"]["Ports"];
    assert_eq!(ports[0]["Label"], "http", "the port is allocated: {ports}");
    assert_eq!(
        ports[0]["HostIP"], "127.0.0.1",
        "ports of a dev agent are on loopback"
    );
    let task_running = || {
        std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .map(|output| output.status.success())
    };
    assert!(task_running()?, "the task's process runs");
    let data_dir = agent.data_dir.clone();
    agent.shutdown().await;
    assert!(
        !task_running()?,
        "a dev agent stops its tasks when it stops"
    );
    assert!(
        !data_dir.exists(),
        "a dev agent's data dir goes away with it"
    );
    Ok(())
}
