//! `max_run_duration` on a real `-dev` agent: a batch task still running when its group's limit
//! runs out is killed, fails, and its event says why.

use serde_json::json;

use crate::support::dev::Dev;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_task_is_killed_after_max_run_duration() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let marker = format!("caravan-max-run-{}", std::process::id());
    dev.put(
        "/v1/jobs",
        &json!({ "Job": {
            "ID": "long",
            "Type": "batch",
            "TaskGroups": [{
                "Name": "g",
                "MaxRunDuration": 2_000_000_000_i64,
                "RestartPolicy": { "Attempts": 0, "Mode": "fail" },
                "ReschedulePolicy": { "Attempts": 0, "Unlimited": false },
                "EphemeralDisk": { "SizeMB": 10 },
                "Tasks": [{
                    "Name": "t",
                    "Driver": "raw_exec",
                    "Config": { "command": "/bin/sh", "args": ["-c", "sleep 60", marker] },
                    "Resources": { "CPU": 20, "MemoryMB": 16 },
                }],
            }],
        }}),
    )
    .await?;
    let alloc = dev.first_alloc("long", "failed").await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default();
    let alloc = dev.get(&format!("/v1/allocation/{alloc_id}")).await?;
    let state = &alloc["TaskStates"]["t"];
    assert_eq!(state["State"], "dead", "{state}");
    assert_eq!(state["Failed"], true, "{state}");
    let event = state["Events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|event| event["Type"] == "Max Run Duration Exceeded")
        .ok_or_else(|| anyhow::anyhow!("no max_run_duration event: {state}"))?;
    assert_eq!(
        event["DisplayMessage"],
        "Task exceeded the group's max_run_duration of 2s"
    );
    let time = |field: &str| {
        state[field]
            .as_str()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
            .map(|time| time.timestamp())
            .unwrap_or(0)
    };
    let ran = time("FinishedAt") - time("StartedAt");
    assert!((1..30).contains(&ran), "killed after about 2s, ran {ran}s");
    let alive = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()?
        .status
        .success();
    assert!(!alive, "the task's process is gone");
    dev.shutdown().await;
    Ok(())
}
