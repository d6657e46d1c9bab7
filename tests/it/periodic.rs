//! Periodic jobs on a real `-dev` agent with raw_exec tasks: children launched on the cron's
//! time and never overlapping with `prohibit_overlap`, `job periodic force`, and `job status` of
//! the parent.

use std::time::Duration;

use chrono::Datelike;
use serde_json::{Value, json};

use crate::support::dev::{Dev, path_id};
use crate::support::server::wait_for;

const SECOND: i64 = 1_000_000_000;

fn periodic_job(id: &str, periodic: Value, script: &str) -> Value {
    json!({ "Job": {
        "ID": id,
        "Type": "batch",
        "Periodic": periodic,
        "TaskGroups": [{ "Name": "g", "Tasks": [{
            "Name": "t",
            "Driver": "raw_exec",
            "Config": { "command": "/bin/sh", "args": ["-c", script] },
            "Resources": { "CPU": 20, "MemoryMB": 16 },
        }]}],
    }})
}

/// The children of `parent`, in launch order.
async fn children(dev: &Dev, parent: &str) -> anyhow::Result<Vec<Value>> {
    let listed = dev
        .get(&format!(
            "/v1/jobs?prefix={}",
            path_id(&format!("{parent}/"))
        ))
        .await?;
    let mut children: Vec<Value> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter(|job| job["ParentID"] == parent)
        .cloned()
        .collect();
    children.sort_by_key(|job| job["ID"].as_str().unwrap_or_default().to_owned());
    Ok(children)
}

/// The launch time a periodic child's ID carries, in Unix seconds.
fn launch_time(child: &Value, parent: &str) -> i64 {
    child["ID"]
        .as_str()
        .and_then(|id| id.strip_prefix(&format!("{parent}/periodic-")))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(-1)
}

/// When the task of the child's one allocation started and finished, in Unix nanoseconds.
async fn task_span(dev: &Dev, child_id: &str) -> anyhow::Result<(i64, i64)> {
    let allocs = dev
        .get(&format!("/v1/job/{}/allocations", path_id(child_id)))
        .await?;
    let alloc_id = allocs[0]["ID"].as_str().unwrap_or_default().to_owned();
    let alloc = dev.get(&format!("/v1/allocation/{alloc_id}")).await?;
    let state = &alloc["TaskStates"]["t"];
    let time = |field: &str| {
        state[field]
            .as_str()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
            .and_then(|time| time.timestamp_nanos_opt())
            .unwrap_or(0)
    };
    Ok((time("StartedAt"), time("FinishedAt")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_job_launches_children_on_time_without_overlap() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    // Every two seconds, each child running three: with overlap prohibited every other launch
    // is skipped.
    let spec = json!({ "Enabled": true, "Spec": "*/2 * * * * * *", "ProhibitOverlap": true });
    let registered = dev
        .put("/v1/jobs", &periodic_job("tick", spec, "sleep 3"))
        .await?;
    assert_eq!(
        registered["EvalID"], "",
        "the parent itself gets no evaluation"
    );
    let dead = wait_for(Duration::from_secs(60), || async {
        let children = children(&dev, "tick").await?;
        let dead = children
            .iter()
            .filter(|job| job["Status"] == "dead")
            .count();
        Ok((dead >= 3).then_some(children))
    })
    .await?;
    let mut spans = Vec::new();
    for child in dead.iter().filter(|job| job["Status"] == "dead") {
        let child_id = child["ID"].as_str().unwrap_or_default();
        let launch = launch_time(child, "tick");
        assert_eq!(launch % 2, 0, "{child_id} is on the cron's grid");
        let full = dev.get(&format!("/v1/job/{}", path_id(child_id))).await?;
        assert_eq!(full["ParentID"], "tick");
        assert!(full["Periodic"].is_null(), "a child is not periodic itself");
        let submitted = full["SubmitTime"].as_i64().unwrap_or(0);
        assert!(
            submitted >= launch * SECOND && submitted < launch * SECOND + 2 * SECOND,
            "{child_id} launched on time: submitted at {submitted}"
        );
        spans.push((launch, task_span(&dev, child_id).await?));
    }
    spans.sort();
    for pair in spans.windows(2) {
        let (previous_launch, (_, previous_finish)) = pair[0];
        let (launch, (start, _)) = pair[1];
        assert!(
            start >= previous_finish,
            "children overlap: {pair:?} (the launch at {launch} started before the one at \
             {previous_launch} finished)"
        );
        assert!(
            launch - previous_launch >= 4,
            "the launch after {previous_launch} came while it still ran: {launch}"
        );
    }
    let parent_allocs = dev.get("/v1/job/tick/allocations").await?;
    assert_eq!(parent_allocs, json!([]), "the parent is never placed");
    let summary = dev.get("/v1/job/tick/summary").await?;
    assert!(
        summary["Children"]["Dead"].as_u64().unwrap_or(0) >= 3,
        "the parent's summary counts its children: {summary}"
    );
    dev.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_force_launches_a_child_that_job_status_lists() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let spec = json!({ "Enabled": true, "Spec": "0 0 1 1 *", "TimeZone": "Europe/Paris" });
    dev.put("/v1/jobs", &periodic_job("yearly", spec, "true"))
        .await?;
    let run = dev
        .cli(&["job", "periodic", "force", "-detach", "yearly"])
        .await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("Force periodic successful") && run.stdout.contains("Evaluation ID: "),
        "{run:?}"
    );
    let forced = wait_for(Duration::from_secs(30), || async {
        let children = children(&dev, "yearly").await?;
        Ok(children
            .first()
            .filter(|child| child["Status"] == "dead")
            .cloned())
    })
    .await?;
    let child_id = forced["ID"].as_str().unwrap_or_default().to_owned();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - 60..=now).contains(&launch_time(&forced, "yearly")),
        "a forced child is launched now: {child_id}"
    );
    let allocs = dev
        .get(&format!("/v1/job/{}/allocations", path_id(&child_id)))
        .await?;
    assert_eq!(
        allocs[0]["ClientStatus"], "complete",
        "the child ran: {allocs}"
    );
    assert_eq!(dev.get("/v1/job/yearly/allocations").await?, json!([]));

    let status = dev.cli(&["job", "status", "yearly"]).await?;
    assert_eq!(status.code, Some(0), "{status:?}");
    let next_year = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Paris)
        .year()
        + 1;
    for expected in [
        "Periodic             = true".to_owned(),
        format!("Next Periodic Launch = {next_year}-01-01T00:00:00+01:00 ("),
        "Children Job Summary".to_owned(),
        "Previously Launched Jobs".to_owned(),
        format!("{child_id}  dead"),
    ] {
        assert!(
            status.stdout.contains(&expected),
            "{expected:?} in:\n{}",
            status.stdout
        );
    }
    assert!(!status.stdout.contains("Allocations"), "{}", status.stdout);

    dev.put(
        "/v1/jobs",
        &json!({ "Job": {
            "ID": "plain", "Type": "batch",
            "TaskGroups": [{ "Name": "g", "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": { "command": "/bin/true" },
            }]}],
        }}),
    )
    .await?;
    let refused = dev
        .cli(&["job", "periodic", "force", "-detach", "plain"])
        .await?;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("can't force run non-periodic job"),
        "{refused:?}"
    );
    dev.shutdown().await;
    Ok(())
}
