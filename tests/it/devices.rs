//! Devices end to end, with the config-based test device plugin (vendor `caravan-test`, no real
//! hardware): a `-dev` agent whose node has two 80 GiB instances (one more, unhealthy) and a
//! second, client-only agent whose node has one 16 GiB instance. Jobs asking for devices land
//! only where the devices are, get distinct healthy instances and their plugin's env, and are
//! explained when nothing fits. With a Docker daemon, a container given instances gets their
//! plugin's device node and read-only mount.

use std::time::Duration;

use caravan::agent::config::{AgentConfig, PluginConfig};
use caravan::agent::run::{RunningAgent, start_agent};
use serde_json::{Value, json};

use crate::support::server::wait_for;

const WAIT: Duration = Duration::from_secs(60);

fn with_devices(config: &mut AgentConfig, devices: Value) {
    config.plugin.insert(
        "caravan-test-devices".to_owned(),
        PluginConfig {
            config: Some(json!({ "visible_env": "SIM_VISIBLE", "devices": devices })),
            args: None,
        },
    );
}

struct Cluster {
    dev: RunningAgent,
    other: RunningAgent,
    url: String,
    http: reqwest::Client,
}

impl Cluster {
    async fn start() -> anyhow::Result<Self> {
        let mut config = AgentConfig::dev();
        config.ports.http = Some(0);
        config.ports.rpc = Some(0);
        with_devices(
            &mut config,
            json!([{
                "type": "gpu", "name": "sim-80g",
                "instances": ["big-0", "big-1", "big-2"], "unhealthy": ["big-1"],
                "attributes": { "memory": "80 GiB" },
                "stats": {
                    "big-0": { "memory_used": "1024 MiB", "utilization": 37 },
                    "big-2": { "memory_used": "2048 MiB", "utilization": 5 },
                },
            }]),
        );
        let dev = start_agent(config, true).await?;
        let url = format!("http://{}", dev.http_addr);
        let mut config = AgentConfig::dev();
        config.name = Some("other".to_owned());
        config.server.enabled = Some(false);
        config.ports.http = Some(0);
        config.client.servers = Some(vec![url.clone()]);
        with_devices(
            &mut config,
            json!([{
                "type": "gpu", "name": "sim-16g",
                "instances": ["small-0"], "attributes": { "memory": "16384 MiB" }
            }]),
        );
        let other = start_agent(config, true).await?;
        let cluster = Self {
            dev,
            other,
            url,
            http: reqwest::Client::new(),
        };
        wait_for(WAIT, || async {
            let nodes = cluster.get("/v1/nodes").await?;
            let ready = nodes
                .as_array()
                .into_iter()
                .flatten()
                .filter(|node| {
                    node["Status"] == "ready"
                        && node["Drivers"]["raw_exec"]["Healthy"] == json!(true)
                })
                .count();
            Ok((ready == 2).then_some(()))
        })
        .await?;
        Ok(cluster)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await?
            .json()
            .await?)
    }

    async fn run(&self, id: &str, device: Value) -> anyhow::Result<Value> {
        let task = json!({
            "Name": "t",
            "Driver": "raw_exec",
            "Config": { "command": "/bin/sh", "args": ["-c", "echo \"given=$SIM_VISIBLE\"; sleep 300"] },
            "Resources": { "CPU": 20, "MemoryMB": 16, "Devices": [device] },
        });
        register(&self.http, &self.url, id, task).await
    }

    async fn allocs(&self, job: &str) -> anyhow::Result<Vec<Value>> {
        let stubs = self.get(&format!("/v1/job/{job}/allocations")).await?;
        let mut allocs = Vec::new();
        for stub in stubs.as_array().into_iter().flatten() {
            let id = stub["ID"].as_str().unwrap_or_default();
            allocs.push(self.get(&format!("/v1/allocation/{id}")).await?);
        }
        Ok(allocs)
    }

    async fn shutdown(self) {
        self.other.shutdown().await;
        self.dev.shutdown().await;
    }
}

/// Registers batch job `id` of one task and waits for its evaluation to complete.
async fn register(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    task: Value,
) -> anyhow::Result<Value> {
    let job = json!({ "Job": {
        "ID": id,
        "Type": "batch",
        "TaskGroups": [{ "Name": "g", "Tasks": [task] }],
    }});
    let response = http.put(format!("{url}/v1/jobs")).json(&job).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "register {id}: {status}: {body}");
    let eval_id = body["EvalID"].as_str().unwrap_or_default().to_owned();
    wait_for(WAIT, || async {
        let eval: Value = http
            .get(format!("{url}/v1/evaluation/{eval_id}"))
            .send()
            .await?
            .json()
            .await?;
        Ok((eval["Status"] == "complete").then_some(eval))
    })
    .await
}

/// The task's stdout once it holds `marker`.
async fn stdout_with(
    http: &reqwest::Client,
    url: &str,
    alloc_id: &str,
    marker: &str,
) -> anyhow::Result<String> {
    wait_for(WAIT, || async {
        let text = http
            .get(format!(
                "{url}/v1/client/fs/logs/{alloc_id}?task=t&type=stdout&plain=true"
            ))
            .send()
            .await?
            .text()
            .await?;
        Ok(text.contains(marker).then_some(text))
    })
    .await
}

fn node_name_of(alloc: &Value) -> &str {
    alloc["NodeName"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_jobs_land_where_the_devices_are_and_get_their_instances() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    // The fingerprint reaches the servers with Nomad's JSON.
    let nodes = cluster.get("/v1/nodes").await?;
    let dev_node_id = nodes
        .as_array()
        .into_iter()
        .flatten()
        .find(|node| node["Name"] != "other")
        .and_then(|node| node["ID"].as_str())
        .unwrap_or_default()
        .to_owned();
    let node = cluster.get(&format!("/v1/node/{dev_node_id}")).await?;
    let group = &node["NodeResources"]["Devices"][0];
    assert_eq!(group["Vendor"], "caravan-test");
    assert_eq!(group["Type"], "gpu");
    assert_eq!(group["Name"], "sim-80g");
    assert_eq!(
        group["Attributes"]["memory"],
        json!({ "Int": 80, "Unit": "GiB" })
    );
    assert_eq!(group["Instances"][1]["Healthy"], false);

    // Two instances of at least 40 GiB: only the dev node qualifies, and only its healthy ones.
    let eval = cluster
        .run(
            "two-big",
            json!({ "Name": "caravan-test/gpu", "Count": 2, "Constraints": [{
                "LTarget": "${device.attr.memory}", "Operand": ">=", "RTarget": "40 GiB" }] }),
        )
        .await?;
    assert_eq!(eval["FailedTGAllocs"], json!({}), "{eval}");
    let allocs = cluster.allocs("two-big").await?;
    assert_eq!(allocs.len(), 1);
    let alloc = &allocs[0];
    assert_ne!(node_name_of(alloc), "other");
    let given = &alloc["AllocatedResources"]["Tasks"]["t"]["Devices"][0];
    assert_eq!(given["Name"], "sim-80g");
    assert_eq!(
        given["DeviceIDs"],
        json!(["big-0", "big-2"]),
        "big-1 is unhealthy"
    );
    // The task got the plugin's env naming them.
    let alloc_id = alloc["ID"].as_str().unwrap_or_default().to_owned();
    let logs = stdout_with(&cluster.http, &cluster.url, &alloc_id, "given=").await?;
    assert!(logs.contains("given=big-0,big-2"), "{logs}");

    // The plugin's stats, as Nomad exposes them: the node's, and the task's own instances'.
    let host = cluster.get("/v1/client/stats").await?;
    let group = host["DeviceStats"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|group| group["Name"] == "sim-80g")
        .cloned()
        .unwrap_or_default();
    assert_eq!(group["Vendor"], "caravan-test", "{host}");
    let instance = &group["InstanceStats"]["big-0"];
    assert_eq!(
        instance["Summary"],
        json!({ "IntNumeratorVal": 1024, "Unit": "MiB" })
    );
    assert_eq!(
        instance["Stats"]["Attributes"]["utilization"],
        json!({ "IntNumeratorVal": 37 })
    );
    assert!(
        group["InstanceStats"].get("big-1").is_none(),
        "no stats configured"
    );
    let usage = wait_for(WAIT, || async {
        let usage = cluster
            .get(&format!("/v1/client/allocation/{alloc_id}/stats"))
            .await?;
        Ok(usage["Tasks"]["t"].is_object().then_some(usage))
    })
    .await?;
    let task_devices = &usage["Tasks"]["t"]["ResourceUsage"]["DeviceStats"];
    assert_eq!(task_devices.as_array().map(Vec::len), Some(1), "{usage}");
    let instances: Vec<&String> = task_devices[0]["InstanceStats"]
        .as_object()
        .map(|stats| stats.keys().collect())
        .unwrap_or_default();
    assert_eq!(instances, ["big-0", "big-2"]);
    // `alloc status` prints them as Nomad's does.
    let (dir, url) = (cluster.dev.data_dir.clone(), cluster.url.clone());
    let status_alloc = alloc_id.clone();
    let status = tokio::task::spawn_blocking(move || {
        crate::support::caravan(
            &dir,
            &["alloc", "status", "-stats", "-address", &url, &status_alloc],
        )
    })
    .await??;
    let out = &status.stdout;
    assert!(out.contains("Device Stats"), "{out}");
    assert!(
        out.lines().any(|line| {
            line.split_whitespace().collect::<Vec<_>>()
                == ["caravan-test/gpu/sim-80g[big-2]", "2048", "MiB"]
        }),
        "{out}"
    );
    assert!(
        out.contains("Device      = caravan-test/gpu/sim-80g[big-0]")
            && out.contains("utilization = 37"),
        "{out}"
    );

    // One more of any GPU: the dev node's are all taken, so the 16 GiB one on the other node.
    let eval = cluster
        .run("one-any", json!({ "Name": "gpu", "Count": 1 }))
        .await?;
    assert_eq!(eval["FailedTGAllocs"], json!({}), "{eval}");
    let allocs = cluster.allocs("one-any").await?;
    assert_eq!(node_name_of(&allocs[0]), "other");
    assert_eq!(
        allocs[0]["AllocatedResources"]["Tasks"]["t"]["Devices"][0]["DeviceIDs"],
        json!(["small-0"])
    );

    // Now every healthy instance is held: the next ask is exhausted, as Nomad says it.
    let eval = cluster
        .run("exhausted", json!({ "Name": "gpu", "Count": 1 }))
        .await?;
    let failed = &eval["FailedTGAllocs"]["g"];
    assert_eq!(
        failed["DimensionExhausted"]["devices: no devices match request"], 2,
        "{eval}"
    );
    let exhausted_eval = eval["ID"].as_str().unwrap_or_default().to_owned();

    // More than any node has, or a memory constraint no node meets: filtered as Nomad does.
    for (id, device) in [
        (
            "too-many",
            json!({ "Name": "caravan-test/gpu", "Count": 3 }),
        ),
        (
            "too-big",
            json!({ "Name": "gpu", "Count": 1, "Constraints": [{
                "LTarget": "${device.attr.memory}", "Operand": ">", "RTarget": "80 GiB" }] }),
        ),
    ] {
        let eval = cluster.run(id, device).await?;
        let failed = &eval["FailedTGAllocs"]["g"];
        assert_eq!(
            failed["ConstraintFiltered"]["missing devices"], 2,
            "{id}: {eval}"
        );
    }
    let (dir, url) = (cluster.dev.data_dir.clone(), cluster.url.clone());
    let placement_failure = tokio::task::spawn_blocking(move || {
        crate::support::caravan(&dir, &["eval", "status", "-address", &url, &exhausted_eval])
    })
    .await??;
    assert!(
        placement_failure
            .stdout
            .contains("Dimension \"devices: no devices match request\" exhausted on 2 nodes"),
        "{}",
        placement_failure.stdout
    );
    cluster.shutdown().await;
    Ok(())
}

/// A Docker task given an instance gets what the plugin reserves for it: the env, the device
/// node (the host's `/dev/null`, a real character device, as `/dev/sim0`) and the host
/// directory mounted read-only. Skips without a daemon, except with `CI=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_task_gets_its_devices_nodes_and_mounts() -> anyhow::Result<()> {
    if !crate::docker::docker_ready()? {
        return Ok(());
    }
    let shared = tempfile::tempdir()?;
    std::fs::write(shared.path().join("marker"), "from-the-host\n")?;
    let mut config = AgentConfig::dev();
    config.ports.http = Some(0);
    config.ports.rpc = Some(0);
    with_devices(
        &mut config,
        json!([{
            "type": "accel", "name": "sim-node",
            "instances": ["node-0"],
            "device_nodes": [{ "host_path": "/dev/null", "task_path": "/dev/sim0", "permissions": "rw" }],
            "mounts": [{ "host_path": shared.path(), "task_path": "/opt/sim", "read_only": true }],
        }]),
    );
    let agent = start_agent(config, true).await?;
    let url = format!("http://{}", agent.http_addr);
    let http = reqwest::Client::new();
    let job = format!(
        "docker-devices-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let outcome = async {
        wait_for(WAIT, || async {
            let nodes: Value = http.get(format!("{url}/v1/nodes")).send().await?.json().await?;
            Ok(nodes
                .as_array()
                .and_then(|nodes| nodes.first())
                .filter(|node| node["Drivers"]["docker"]["Healthy"] == json!(true))
                .filter(|node| node["Status"] == "ready")
                .map(drop))
        })
        .await?;
        let script = "echo given=$SIM_VISIBLE; [ -c /dev/sim0 ] && echo node=char; \
                      cat /opt/sim/marker; \
                      if touch /opt/sim/new 2>/dev/null; then echo mount=rw; else echo mount=ro; fi; \
                      echo done; sleep 30";
        let task = json!({
            "Name": "t",
            "Driver": "docker",
            "Config": { "image": crate::docker::TEST_IMAGE, "command": "sh", "args": ["-c", script] },
            "Resources": { "CPU": 50, "MemoryMB": 32,
                "Devices": [{ "Name": "caravan-test/accel", "Count": 1 }] },
        });
        let eval = register(&http, &url, &job, task).await?;
        anyhow::ensure!(eval["FailedTGAllocs"] == json!({}), "{eval}");
        let stubs: Value = http
            .get(format!("{url}/v1/job/{job}/allocations"))
            .send()
            .await?
            .json()
            .await?;
        let alloc_id = stubs[0]["ID"].as_str().unwrap_or_default().to_owned();
        let logs = stdout_with(&http, &url, &alloc_id, "done").await?;
        anyhow::ensure!(logs.contains("given=node-0"), "{logs}");
        anyhow::ensure!(logs.contains("node=char"), "no device node: {logs}");
        anyhow::ensure!(logs.contains("from-the-host"), "no mount: {logs}");
        anyhow::ensure!(logs.contains("mount=ro"), "the mount is writable: {logs}");
        anyhow::ensure!(!shared.path().join("new").exists());
        anyhow::Ok(())
    }
    .await;
    // The containers of the job's allocations go, whatever happened above.
    let stubs: Value = match http
        .get(format!("{url}/v1/job/{job}/allocations"))
        .send()
        .await
    {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => Value::Null,
    };
    for stub in stubs.as_array().into_iter().flatten() {
        let filter = format!(
            "label=caravan.alloc_id={}",
            stub["ID"].as_str().unwrap_or_default()
        );
        if let Ok(ids) = crate::docker::docker_cli(&["ps", "-aq", "--filter", &filter]) {
            for id in ids.lines() {
                let _ = crate::docker::docker_cli(&["rm", "-f", id]);
            }
        }
    }
    agent.shutdown().await;
    outcome
}
