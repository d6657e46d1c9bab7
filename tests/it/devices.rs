//! Devices end to end, with the config-based test device plugin (vendor `caravan-test`, no real
//! hardware): a `-dev` agent whose node has two 80 GiB instances (one more, unhealthy) and a
//! second, client-only agent whose node has one 16 GiB instance. Jobs asking for devices land
//! only where the devices are, get distinct healthy instances and their plugin's env, and are
//! explained when nothing fits.

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
                "attributes": { "memory": "80 GiB" }
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
                .filter(|node| node["Status"] == "ready")
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
        let job = json!({ "Job": {
            "ID": id,
            "Type": "batch",
            "TaskGroups": [{ "Name": "g", "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sh", "args": ["-c", "echo \"given=$SIM_VISIBLE\"; sleep 30"] },
                "Resources": { "CPU": 20, "MemoryMB": 16, "Devices": [device] },
            }]}],
        }});
        let response = self
            .http
            .put(format!("{}/v1/jobs", self.url))
            .json(&job)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "register {id}: {status}: {body}");
        let eval_id = body["EvalID"].as_str().unwrap_or_default().to_owned();
        wait_for(WAIT, || async {
            let eval = self.get(&format!("/v1/evaluation/{eval_id}")).await?;
            Ok((eval["Status"] == "complete").then_some(eval))
        })
        .await
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
    let logs = wait_for(WAIT, || async {
        let response = cluster
            .http
            .get(format!(
                "{}/v1/client/fs/logs/{alloc_id}?task=t&type=stdout&plain=true",
                cluster.url
            ))
            .send()
            .await?;
        let text = response.text().await?;
        Ok(text.contains("given=").then_some(text))
    })
    .await?;
    assert!(logs.contains("given=big-0,big-2"), "{logs}");

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
