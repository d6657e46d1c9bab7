//! Reserved cores (`resources { cores }`) on a real `-dev` agent: a task gets a core of its own,
//! named to it in `NOMAD_CPU_CORES`, and an ask for more cores than the node has is refused in
//! dimension "cores".

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::dev::{Dev, shell_job};
use crate::support::server::wait_for;

fn job(id: &str, cores: u64, script: &str) -> Value {
    let mut job = shell_job(id, "batch", script);
    job["Job"]["TaskGroups"][0]["Tasks"][0]["Resources"] =
        json!({ "Cores": cores, "MemoryMB": 16 });
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_reserving_a_core_gets_it_named_and_too_many_cores_are_exhausted()
-> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put(
        "/v1/jobs",
        &job("pinned", 1, "echo \"cores=$NOMAD_CPU_CORES\""),
    )
    .await?;
    let alloc = dev.first_alloc("pinned", "complete").await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default();
    let alloc = dev.get(&format!("/v1/allocation/{alloc_id}")).await?;
    let cpu = &alloc["AllocatedResources"]["Tasks"]["t"]["Cpu"];
    let cores: Vec<u64> = cpu["ReservedCores"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(cores.len(), 1, "{cpu}");
    assert!(
        cpu["CpuShares"].as_i64().unwrap_or(0) > 0,
        "the core's MHz: {cpu}"
    );
    let stdout = reqwest::get(format!(
        "{}/v1/client/fs/logs/{alloc_id}?task=t&type=stdout&plain=true",
        dev.url
    ))
    .await?
    .text()
    .await?;
    assert_eq!(stdout.trim(), format!("cores={}", cores[0]));

    // One core more than the node has can never be placed.
    let node_id = alloc["NodeID"].as_str().unwrap_or_default();
    let node = dev.get(&format!("/v1/node/{node_id}")).await?;
    let total = node["NodeResources"]["Cpu"]["TotalCpuCores"]
        .as_u64()
        .unwrap_or(0);
    assert!(total > 0, "the node counts its cores");
    dev.put("/v1/jobs", &job("greedy", total + 1, "true"))
        .await?;
    let failed = wait_for(Duration::from_secs(30), || async {
        let evals = dev.get("/v1/job/greedy/evaluations").await?;
        Ok(evals.as_array().into_iter().flatten().find_map(|eval| {
            let failed = &eval["FailedTGAllocs"]["g"];
            (!failed.is_null()).then(|| failed.clone())
        }))
    })
    .await?;
    assert_eq!(failed["DimensionExhausted"]["cores"], 1, "{failed}");
    let allocs = dev.get("/v1/job/greedy/allocations").await?;
    assert_eq!(allocs.as_array().map_or(0, Vec::len), 0, "{allocs}");
    dev.shutdown().await;
    Ok(())
}
