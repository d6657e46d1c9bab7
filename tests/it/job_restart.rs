//! `caravan job restart` on a real `-dev` agent: the running allocations of a job restarted in
//! place in batches (each task restarted once, same allocations), and `-reschedule` replacing
//! them with new allocations.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::dev::Dev;
use crate::support::server::wait_for;

fn service_job() -> Value {
    json!({ "Job": {
        "ID": "restartable",
        "Type": "service",
        "TaskGroups": [{ "Name": "g", "Count": 2, "Tasks": [{
            "Name": "t",
            "Driver": "raw_exec",
            "Config": { "command": "/bin/sh", "args": ["-c", "while :; do sleep 1; done"] },
            "Resources": { "CPU": 20, "MemoryMB": 16 },
        }]}],
    }})
}

/// The job's running allocations once there are two.
async fn two_running(dev: &Dev) -> anyhow::Result<Vec<Value>> {
    wait_for(Duration::from_secs(30), || async {
        let allocs = dev.get("/v1/job/restartable/allocations").await?;
        let running: Vec<Value> = allocs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|alloc| alloc["ClientStatus"] == "running" && alloc["DesiredStatus"] == "run")
            .cloned()
            .collect();
        Ok((running.len() == 2).then_some(running))
    })
    .await
}

fn ids(allocs: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = allocs
        .iter()
        .filter_map(|alloc| alloc["ID"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_restart_restarts_in_batches_and_reschedules() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put("/v1/jobs", &service_job()).await?;
    let before = ids(&two_running(&dev).await?);

    let run = dev
        .cli(&["job", "restart", "-batch-size", "50%", "restartable"])
        .await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains(": Restarting 2 allocations"), "{run:?}");
    assert!(
        run.stdout
            .contains(": Restarting running tasks in allocation"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("Job restarted successfully!"),
        "{run:?}"
    );
    // Each task restarted once, in the same allocations.
    let restarted = wait_for(Duration::from_secs(30), || async {
        let allocs = two_running(&dev).await?;
        let done = allocs
            .iter()
            .all(|alloc| alloc["TaskStates"]["t"]["Restarts"] == 1);
        Ok(done.then_some(allocs))
    })
    .await?;
    assert_eq!(ids(&restarted), before);

    let run = dev
        .cli(&["job", "restart", "-reschedule", "-yes", "restartable"])
        .await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains(": Rescheduling allocation"), "{run:?}");
    let replaced = wait_for(Duration::from_secs(30), || async {
        let allocs = two_running(&dev).await?;
        let fresh = ids(&allocs).iter().all(|id| !before.contains(id));
        Ok(fresh.then_some(allocs))
    })
    .await?;
    assert_eq!(replaced.len(), 2);

    let refused = dev
        .cli(&["job", "restart", "-batch-size", "0", "restartable"])
        .await?;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("Invalid -batch-size"),
        "{refused:?}"
    );
    dev.shutdown().await;
    Ok(())
}
