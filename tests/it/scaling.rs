//! `job scale` on a real `-dev` agent with raw_exec tasks: a group moved from 1 to 3 within its
//! `scaling` block, refused beyond `max` and below `min`, and the scaling events it leaves.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::dev::Dev;
use crate::support::server::wait_for;

async fn running(dev: &Dev, job: &str) -> anyhow::Result<usize> {
    let allocs = dev.get(&format!("/v1/job/{job}/allocations")).await?;
    Ok(allocs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|alloc| alloc["ClientStatus"] == "running" && alloc["DesiredStatus"] == "run")
        .count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_scale_moves_a_group_within_its_bounds() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let marker = format!("caravan-scale-test-{}", std::process::id());
    dev.put(
        "/v1/jobs",
        &json!({ "Job": {
            "ID": "web",
            "TaskGroups": [{
                "Name": "g",
                "Count": 1,
                "Scaling": { "Min": 1, "Max": 3 },
                "EphemeralDisk": { "SizeMB": 10 },
                "Tasks": [{
                    "Name": "t",
                    "Driver": "raw_exec",
                    "Config": { "command": "/bin/sh",
                        "args": ["-c", "while :; do sleep 1; done", marker] },
                    "Resources": { "CPU": 20, "MemoryMB": 16 },
                }],
            }],
        }}),
    )
    .await?;
    wait_for(Duration::from_secs(30), || async {
        Ok((running(&dev, "web").await? == 1).then_some(()))
    })
    .await?;

    let run = dev.cli(&["job", "scale", "web", "g", "3"]).await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    wait_for(Duration::from_secs(30), || async {
        Ok((running(&dev, "web").await? == 3).then_some(()))
    })
    .await?;
    let job = dev.get("/v1/job/web").await?;
    assert_eq!(job["TaskGroups"][0]["Count"], 3);
    assert_eq!(job["Version"], 1, "scaling makes a new version");

    // Beyond the bounds: refused, nothing changes. The group may be left out (one group).
    let refused = dev.cli(&["job", "scale", "web", "4"]).await?;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("group count was greater than scaling policy maximum: 4 > 3"),
        "{refused:?}"
    );
    let refused = dev
        .cli(&["job", "scale", "-detach", "web", "g", "0"])
        .await?;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("group count was less than scaling policy minimum: 0 < 1"),
        "{refused:?}"
    );
    let (status, text) = dev
        .put_raw(
            "/v1/job/web/scale",
            &json!({ "Count": 2, "Target": { "Group": "nope" } }),
        )
        .await?;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("task group \"nope\" specified for scaling does not exist in job"),
        "{text}"
    );

    let scale = dev.get("/v1/job/web/scale").await?;
    let group = &scale["TaskGroups"]["g"];
    assert_eq!(group["Desired"], 3, "{scale}");
    assert_eq!(group["Running"], 3, "{scale}");
    let events: &Vec<Value> = group["Events"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no events: {scale}"))?;
    assert_eq!(events.len(), 1, "refused scales leave no event: {scale}");
    assert_eq!(events[0]["Count"], 3);
    assert_eq!(events[0]["PreviousCount"], 1);
    assert_eq!(events[0]["Message"], "submitted using the Nomad CLI");
    assert!(
        events[0]["EvalID"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    let listed = dev.cli(&["job", "scaling-events", "web"]).await?;
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert!(
        lines[0].starts_with("Task Group  Count  PrevCount  Date"),
        "{listed:?}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[..3], ["g", "3", "1"], "{listed:?}");
    dev.shutdown().await;
    Ok(())
}
