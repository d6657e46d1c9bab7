//! Deployments on a real `-dev` agent with raw_exec tasks: a rolling update paced by
//! `max_parallel` and allocation health, a failing update reverted with `auto_revert`, and a
//! canary waiting for promotion.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::caravan_async;
use crate::support::dev::Dev;
use crate::support::server::wait_for;

const SECOND: u64 = 1_000_000_000;

/// What these tests read of a job beyond the shared helper.
trait JobQueries {
    async fn live_allocs(&self, job: &str) -> anyhow::Result<Vec<Value>>;
}

impl JobQueries for Dev {
    async fn live_allocs(&self, job: &str) -> anyhow::Result<Vec<Value>> {
        let allocs = self.get(&format!("/v1/job/{job}/allocations")).await?;
        Ok(allocs
            .as_array()
            .map(|allocs| {
                allocs
                    .iter()
                    .filter(|alloc| {
                        alloc["DesiredStatus"] == "run" && alloc["ClientStatus"] == "running"
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// A service job of `count` raw_exec tasks running `script`, rolled with `update`.
fn job(id: &str, count: u32, script: &str, update: Value) -> Value {
    json!({ "Job": {
        "ID": id,
        "TaskGroups": [{
            "Name": "g",
            "Count": count,
            "Update": update,
            "RestartPolicy": { "Attempts": 0, "Mode": "fail" },
            // Small, so a development machine's full disk does not stop the placements.
            "EphemeralDisk": { "SizeMB": 10 },
            "ReschedulePolicy": { "Attempts": 0, "Unlimited": false },
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sh", "args": ["-c", script] },
                "Resources": { "CPU": 20, "MemoryMB": 16 },
            }],
        }],
    }})
}

fn update(canary: u32, auto_revert: bool, auto_promote: bool) -> Value {
    json!({
        "MaxParallel": 1,
        "HealthCheck": "task_states",
        "MinHealthyTime": SECOND,
        "HealthyDeadline": 20 * SECOND,
        "ProgressDeadline": 60 * SECOND,
        "Canary": canary,
        "AutoRevert": auto_revert,
        "AutoPromote": auto_promote,
    })
}

const SLEEP_V1: &str = "while :; do sleep 1; done # v1";
const SLEEP_V2: &str = "while :; do sleep 1; done # v2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_replaces_one_allocation_at_a_time() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put(
        "/v1/jobs",
        &job("roll", 4, SLEEP_V1, update(0, false, false)),
    )
    .await?;
    let first = dev.deployment_done("roll", 0).await?;
    assert_eq!(first["Status"], "successful", "{first}");
    assert_eq!(
        first["StatusDescription"],
        "Deployment completed successfully"
    );
    assert_eq!(first["TaskGroups"]["g"]["HealthyAllocs"], 4, "{first}");
    // The version is marked stable by its own write after the deployment's status.
    wait_for(Duration::from_secs(30), || async {
        let job = dev.get("/v1/job/roll").await?;
        Ok((job["Stable"] == true).then_some(()))
    })
    .await
    .map_err(|err| err.context("a successful deployment marks the version stable"))?;

    dev.put(
        "/v1/jobs",
        &job("roll", 4, SLEEP_V2, update(0, false, false)),
    )
    .await?;
    // Sample while it rolls: never fewer than 3 running, never more than one new allocation
    // not yet healthy.
    let mut fewest = usize::MAX;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let second = loop {
        let live = dev.live_allocs("roll").await?;
        fewest = fewest.min(live.len());
        let deployment = dev.get("/v1/job/roll/deployment").await?;
        if deployment["JobVersion"] == 1 && deployment["Status"] != "running" {
            break deployment;
        }
        if deployment["JobVersion"] == 1 {
            let allocs = dev
                .get(&format!(
                    "/v1/deployment/allocations/{}",
                    deployment["ID"].as_str().unwrap_or("")
                ))
                .await?;
            let unhealthy_new = allocs
                .as_array()
                .map(|allocs| {
                    allocs
                        .iter()
                        .filter(|alloc| alloc["DesiredStatus"] == "run")
                        .filter(|alloc| alloc["DeploymentStatus"]["Healthy"] != true)
                        .count()
                })
                .unwrap_or(0);
            assert!(unhealthy_new <= 1, "max_parallel = 1: {allocs}");
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "rollout too slow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(second["Status"], "successful", "{second}");
    assert_eq!(second["TaskGroups"]["g"]["PlacedAllocs"], 4, "{second}");
    assert_eq!(second["TaskGroups"]["g"]["HealthyAllocs"], 4, "{second}");
    assert!(
        fewest >= 3,
        "at least 3 allocations ran throughout, saw {fewest}"
    );
    let live = dev.live_allocs("roll").await?;
    assert_eq!(live.len(), 4);
    assert!(
        live.iter().all(|alloc| alloc["JobVersion"] == 1),
        "{live:?}"
    );
    dev.agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_update_fails_its_deployment_and_auto_revert_restores_the_stable_version()
-> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put(
        "/v1/jobs",
        &job("flaky", 2, SLEEP_V1, update(0, true, false)),
    )
    .await?;
    let first = dev.deployment_done("flaky", 0).await?;
    assert_eq!(first["Status"], "successful", "{first}");

    dev.put(
        "/v1/jobs",
        &job("flaky", 2, "exit 3", update(0, true, false)),
    )
    .await?;
    let failed = dev.deployment_done("flaky", 1).await?;
    assert_eq!(failed["Status"], "failed", "{failed}");
    assert_eq!(
        failed["StatusDescription"],
        "Failed due to unhealthy allocations - rolling back to job version 0"
    );
    assert_eq!(failed["TaskGroups"]["g"]["UnhealthyAllocs"], 1, "{failed}");
    // The job is registered again at version 0's spec, as version 2.
    let reverted = wait_for(Duration::from_secs(30), || async {
        let job = dev.get("/v1/job/flaky").await?;
        Ok((job["Version"] == 2).then_some(job))
    })
    .await?;
    assert_eq!(
        reverted["TaskGroups"][0]["Tasks"][0]["Config"]["args"][1],
        SLEEP_V1
    );
    // The old allocation that kept serving runs the reverted version.
    wait_for(Duration::from_secs(30), || async {
        let live = dev.live_allocs("flaky").await?;
        Ok(live
            .iter()
            .any(|alloc| alloc["JobVersion"] == 2)
            .then_some(()))
    })
    .await?;
    dev.agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_waits_for_promotion_then_the_rest_roll() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put(
        "/v1/jobs",
        &job("canary", 2, SLEEP_V1, update(1, false, false)),
    )
    .await?;
    dev.deployment_done("canary", 0).await?;
    dev.put(
        "/v1/jobs",
        &job("canary", 2, SLEEP_V2, update(1, false, false)),
    )
    .await?;
    let waiting = wait_for(Duration::from_secs(30), || async {
        let deployment = dev.get("/v1/job/canary/deployment").await?;
        Ok((deployment["JobVersion"] == 1
            && deployment["StatusDescription"]
                == "Deployment is running but requires manual promotion")
            .then_some(deployment))
    })
    .await?;
    let live = dev.live_allocs("canary").await?;
    assert_eq!(live.len(), 3, "the canary runs beside both old allocations");
    let id = waiting["ID"].as_str().unwrap_or_default().to_owned();
    let dir = tempfile::tempdir()?;
    let status = caravan_async(
        dir.path(),
        &["deployment", "status", "-address", &dev.url, &id[..8]],
    )
    .await?;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(
        status
            .stdout
            .contains("Description = Deployment is running but requires manual promotion"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("Canaries"), "{}", status.stdout);
    // Promotion waits for the canary to be healthy.
    wait_for(Duration::from_secs(30), || async {
        let promote = caravan_async(
            dir.path(),
            &["job", "promote", "-address", &dev.url, "-detach", "canary"],
        )
        .await?;
        Ok((promote.code == Some(0)).then_some(promote))
    })
    .await?;
    let done = dev.deployment_done("canary", 1).await?;
    assert_eq!(done["Status"], "successful", "{done}");
    assert_eq!(done["TaskGroups"]["g"]["Promoted"], true);
    let live = dev.live_allocs("canary").await?;
    assert_eq!(live.len(), 2);
    assert!(
        live.iter().all(|alloc| alloc["JobVersion"] == 1),
        "{live:?}"
    );
    dev.agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_progress_the_deployment_fails_at_its_deadline_and_the_old_version_keeps_serving()
-> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put(
        "/v1/jobs",
        &job("stuck", 2, SLEEP_V1, update(0, false, false)),
    )
    .await?;
    dev.deployment_done("stuck", 0).await?;
    // Manual health: no allocation of the new version is ever judged, so nothing progresses.
    let mut manual = update(0, false, false);
    manual["HealthCheck"] = json!("manual");
    manual["HealthyDeadline"] = json!(2 * SECOND);
    manual["ProgressDeadline"] = json!(3 * SECOND);
    dev.put("/v1/jobs", &job("stuck", 2, SLEEP_V2, manual))
        .await?;
    let failed = dev.deployment_done("stuck", 1).await?;
    assert_eq!(failed["Status"], "failed", "{failed}");
    assert_eq!(
        failed["StatusDescription"],
        "Failed due to progress deadline"
    );
    let job = dev.get("/v1/job/stuck").await?;
    assert_eq!(
        job["Version"], 1,
        "no auto_revert: the job stays at its version"
    );
    let live = dev.live_allocs("stuck").await?;
    assert_eq!(live.len(), 2, "{live:?}");
    assert_eq!(
        live.iter().filter(|alloc| alloc["JobVersion"] == 0).count(),
        1,
        "the old allocation not yet replaced keeps serving: {live:?}"
    );
    dev.agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_health_is_set_by_the_operator() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let mut manual = update(0, false, false);
    manual["HealthCheck"] = json!("manual");
    dev.put("/v1/jobs", &job("manual", 2, SLEEP_V1, manual.clone()))
        .await?;
    // Each allocation of the deployment, as it appears, is declared healthy by hand.
    let mut declared = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never completed");
        let deployment = dev.get("/v1/job/manual/deployment").await?;
        if deployment.is_null() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        if deployment["Status"] != "running" {
            break deployment;
        }
        let id = deployment["ID"].as_str().unwrap_or_default().to_owned();
        let allocs = dev.get(&format!("/v1/deployment/allocations/{id}")).await?;
        let fresh: Vec<String> = allocs
            .as_array()
            .map(|allocs| {
                allocs
                    .iter()
                    .filter_map(|alloc| alloc["ID"].as_str())
                    .filter(|alloc_id| !declared.contains(*alloc_id))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if !fresh.is_empty() {
            dev.put(
                &format!("/v1/deployment/allocation-health/{id}"),
                &json!({ "DeploymentID": id, "HealthyAllocationIDs": fresh }),
            )
            .await?;
            declared.extend(fresh);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["Status"], "successful", "{done}");
    assert_eq!(done["TaskGroups"]["g"]["HealthyAllocs"], 2, "{done}");
    let allocs = dev
        .get(&format!(
            "/v1/deployment/allocations/{}",
            done["ID"].as_str().unwrap_or_default()
        ))
        .await?;
    assert!(
        allocs.as_array().is_some_and(|allocs| allocs
            .iter()
            .all(|alloc| alloc["DeploymentStatus"]["Healthy"] == true)),
        "{allocs}"
    );
    // A group without manual health refuses it.
    dev.put(
        "/v1/jobs",
        &job("auto", 1, SLEEP_V1, update(0, false, false)),
    )
    .await?;
    let auto = wait_for(Duration::from_secs(30), || async {
        let deployment = dev.get("/v1/job/auto/deployment").await?;
        if deployment.is_null() {
            return Ok(None);
        }
        let allocs = dev
            .get(&format!(
                "/v1/deployment/allocations/{}",
                deployment["ID"].as_str().unwrap_or_default()
            ))
            .await?;
        Ok((deployment["Status"] == "running")
            .then(|| {
                allocs[0]["ID"]
                    .as_str()
                    .map(|alloc| (deployment, alloc.to_owned()))
            })
            .flatten())
    })
    .await?;
    let (deployment, alloc_id) = auto;
    let id = deployment["ID"].as_str().unwrap_or_default();
    let response = dev
        .http
        .put(format!("{}/v1/deployment/allocation-health/{id}", dev.url))
        .json(&json!({ "HealthyAllocationIDs": [alloc_id] }))
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    assert!(
        text.contains("does not use manual health checks"),
        "{status}: {text}"
    );
    dev.agent.shutdown().await;
    Ok(())
}
