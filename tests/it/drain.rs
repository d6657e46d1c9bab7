//! Node drains governed by `migrate`: a count-3 service job on a `-dev` agent's node, a second,
//! client-only agent's node joining, and the first node drained. The drainer moves one
//! allocation at a time (`migrate { max_parallel = 1 }`), each only once the previous
//! replacement is healthy, and ends the drain when the node is empty; `caravan node drain`
//! follows it to Nomad's "Drain complete" end.

use std::collections::BTreeSet;
use std::time::Duration;

use caravan::agent::config::AgentConfig;
use caravan::agent::run::start_agent;
use serde_json::{Value, json};

use crate::support::dev::Dev;
use crate::support::server::wait_for;

const SECOND: u64 = 1_000_000_000;
const WAIT: Duration = Duration::from_secs(90);

fn job() -> Value {
    json!({ "Job": {
        "ID": "drained",
        "TaskGroups": [{
            "Name": "g",
            "Count": 3,
            "Update": {
                "MaxParallel": 3,
                "HealthCheck": "task_states",
                "MinHealthyTime": SECOND,
                "HealthyDeadline": 30 * SECOND,
            },
            "Migrate": {
                "MaxParallel": 1,
                "HealthCheck": "task_states",
                "MinHealthyTime": SECOND,
                "HealthyDeadline": 30 * SECOND,
            },
            "EphemeralDisk": { "SizeMB": 10 },
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sh", "args": ["-c", "while :; do sleep 1; done"] },
                "Resources": { "CPU": 20, "MemoryMB": 16 },
            }],
        }],
    }})
}

fn is_healthy(alloc: &Value) -> bool {
    alloc["DesiredStatus"] == "run"
        && alloc["ClientStatus"] == "running"
        && alloc["DeploymentStatus"]["Healthy"] == true
}

async fn node_id(dev: &Dev, name: &str) -> anyhow::Result<String> {
    wait_for(WAIT, || async {
        let nodes = dev.get("/v1/nodes").await?;
        Ok(nodes.as_array().and_then(|nodes| {
            nodes
                .iter()
                .find(|node| node["Name"] == name && node["Status"] == "ready")
                .and_then(|node| node["ID"].as_str().map(str::to_owned))
        }))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_moves_one_allocation_at_a_time_and_completes() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let node_a = node_id(&dev, "dev").await?;
    dev.put("/v1/jobs", &job()).await?;
    wait_for(WAIT, || async {
        let allocs = dev.get("/v1/job/drained/allocations").await?;
        let healthy = allocs.as_array().map_or(0, |allocs| {
            allocs.iter().filter(|alloc| is_healthy(alloc)).count()
        });
        Ok((healthy == 3).then_some(()))
    })
    .await?;

    // Node B joins only now, so all three start on A.
    let mut config = AgentConfig::dev();
    config.name = Some("other".to_owned());
    config.server.enabled = Some(false);
    config.ports.http = Some(0);
    config.client.servers = Some(vec![dev.url.clone()]);
    let other = start_agent(config, true).await?;
    let node_b = node_id(&dev, "other").await?;

    // The drain is started and monitored by the CLI, as an operator would.
    let monitor = tokio::task::spawn_blocking({
        let (url, node) = (dev.url.clone(), node_a.clone());
        let dir = tempfile::tempdir()?;
        move || {
            crate::support::caravan(
                dir.path(),
                &[
                    "node",
                    "drain",
                    "-address",
                    &url,
                    "-enable",
                    "-yes",
                    "-deadline",
                    "5m",
                    &node,
                ],
            )
        }
    });

    // Sample throughout: at most one allocation in flight (at least 2 healthy that are not
    // leaving), and the moves seen one by one.
    let mut fewest_healthy = usize::MAX;
    let mut counts_on_b = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let allocs = dev.get("/v1/job/drained/allocations").await?;
        let allocs = allocs.as_array().cloned().unwrap_or_default();
        let staying = allocs
            .iter()
            .filter(|alloc| is_healthy(alloc) && alloc["DesiredTransition"]["Migrate"] != true)
            .count();
        fewest_healthy = fewest_healthy.min(staying);
        let on_b = allocs
            .iter()
            .filter(|alloc| is_healthy(alloc) && alloc["NodeID"] == node_b.as_str())
            .count();
        counts_on_b.insert(on_b);
        assert!(
            staying >= 2,
            "more than one allocation migrating at once: {allocs:#?}"
        );
        let node = dev.get(&format!("/v1/node/{node_a}")).await?;
        if on_b == 3 && node["Drain"] == false {
            assert!(node["DrainStrategy"].is_null(), "{node}");
            assert_eq!(node["SchedulingEligibility"], "ineligible", "{node}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the drain did not complete: node {node}, allocations {allocs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let monitored = tokio::time::timeout(WAIT, monitor).await???;
    assert_eq!(monitored.code, Some(0), "{monitored:?}");
    for expected in [
        format!("Node {node_a:?} drain strategy set"),
        format!("Drain complete for node {node_a}"),
        format!("All allocations on node {node_a:?} have stopped"),
    ] {
        assert!(
            monitored.stdout.contains(&expected),
            "no {expected:?} in {}",
            monitored.stdout
        );
    }
    assert!(fewest_healthy >= 2);
    assert!(
        counts_on_b.contains(&1) && counts_on_b.contains(&2),
        "the allocations moved one by one: {counts_on_b:?}"
    );
    let allocs = dev.get("/v1/job/drained/allocations").await?;
    let running: Vec<&Value> = allocs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|alloc| alloc["ClientStatus"] == "running")
        .collect();
    assert_eq!(running.len(), 3, "{allocs:#?}");
    assert!(
        running
            .iter()
            .all(|alloc| alloc["NodeID"] == node_b.as_str())
    );
    other.shutdown().await;
    dev.shutdown().await;
    Ok(())
}
