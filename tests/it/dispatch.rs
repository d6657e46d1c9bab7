//! Parameterized jobs on a real `-dev` agent with raw_exec tasks: `job dispatch` with a payload
//! from a file and meta, the task reading both, a dispatch refused for missing meta, and the
//! parent never placed.

use serde_json::{Value, json};

use crate::support::dev::{Dev, path_id};

fn render_job() -> Value {
    json!({ "Job": {
        "ID": "render",
        "Type": "batch",
        "ParameterizedJob": {
            "Payload": "required",
            "MetaRequired": ["who"],
            "MetaOptional": ["mood"],
        },
        "TaskGroups": [{ "Name": "g", "Tasks": [{
            "Name": "t",
            "Driver": "raw_exec",
            "DispatchPayload": { "File": "in/data.txt" },
            "Config": { "command": "/bin/sh", "args": ["-c",
                "echo \"payload=$(cat \"$NOMAD_TASK_DIR/in/data.txt\") who=$NOMAD_META_who mood=$NOMAD_META_mood\""] },
            "Resources": { "CPU": 20, "MemoryMB": 16 },
        }]}],
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatched_job_reads_its_payload_and_meta() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let registered = dev.put("/v1/jobs", &render_job()).await?;
    assert_eq!(registered["EvalID"], "", "the parent gets no evaluation");
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input.txt");
    std::fs::write(&input, "hello from a file")?;
    let input = input.to_string_lossy().into_owned();

    let run = dev
        .cli(&[
            "job",
            "dispatch",
            "-meta",
            "who=world",
            "-meta",
            "mood=glad",
            "-id-prefix-template",
            "nightly",
            "-detach",
            "render",
            &input,
        ])
        .await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let child_id = run
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("Dispatched Job ID = "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(child_id.starts_with("render/dispatch-nightly-"), "{run:?}");
    assert!(run.stdout.contains("Evaluation ID     = "), "{run:?}");

    let child = dev.get(&format!("/v1/job/{}", path_id(&child_id))).await?;
    assert_eq!(child["ParentID"], "render");
    assert_eq!(child["Dispatched"], true);
    assert_eq!(child["Meta"]["who"], "world");
    let alloc = dev.first_alloc(&child_id, "complete").await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default().to_owned();
    let logs = dev.cli(&["alloc", "logs", &alloc_id, "t"]).await?;
    assert_eq!(
        logs.stdout.trim(),
        "payload=hello from a file who=world mood=glad",
        "{logs:?}"
    );

    // Required meta missing: refused with Nomad's message, nothing dispatched.
    let refused = dev.cli(&["job", "dispatch", "render", &input]).await?;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("Dispatch did not provide required meta keys: [who]"),
        "{refused:?}"
    );
    // No payload where one is required, and an undeclared key.
    let (status, text) = dev
        .put_raw(
            "/v1/job/render/dispatch",
            &json!({ "Meta": { "who": "x" } }),
        )
        .await?;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("Payload is not provided but required"),
        "{text}"
    );
    let (status, text) = dev
        .put_raw(
            "/v1/job/render/dispatch",
            &json!({ "Payload": "aGk=", "Meta": { "who": "x", "shoe": "y" } }),
        )
        .await?;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unpermitted metadata keys: [shoe]"), "{text}");

    assert_eq!(dev.get("/v1/job/render/allocations").await?, json!([]));
    let status = dev.cli(&["job", "status", "render"]).await?;
    assert_eq!(status.code, Some(0), "{status:?}");
    for expected in [
        "Parameterized = true",
        "Children Job Summary",
        "Dispatched Jobs",
        &format!("{child_id}  dead"),
    ] {
        assert!(
            status.stdout.contains(expected),
            "{expected:?} in:\n{}",
            status.stdout
        );
    }
    let listed = dev
        .get(&format!("/v1/jobs?prefix={}", path_id("render/")))
        .await?;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "one child: {listed}"
    );
    dev.shutdown().await;
    Ok(())
}
