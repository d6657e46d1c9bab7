//! The scheduler configuration (`/v1/operator/scheduler/configuration`, `operator scheduler
//! get-config|set-config`): stored through Raft, read by the workers for each evaluation.
//!
//! - Binpack (the default) puts four one-allocation jobs on one of two nodes; a server whose
//!   agent default is spread puts them two and two; switching a cluster to spread sends the next
//!   jobs to the emptier node.
//! - A check-and-set with a stale index stores nothing (`Updated: false`).
//! - `RejectJobRegistration` refuses registrations with Nomad's 403; `PauseEvalBroker` holds
//!   evaluations in the broker until it is unset.
//! - `operator scheduler get-config` prints Nomad's lines; `set-config` changes only the flags
//!   given, checked-and-set, and refuses a stale `-check-index` or an unknown algorithm.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::server::{TestServer, service_job, wait_for};

const CONFIG: &str = "/v1/operator/scheduler/configuration";

/// One small job per ID (no anti-affinity between them), run to completion; returns how many
/// landed on each node.
async fn place_jobs(server: &TestServer, prefix: &str) -> anyhow::Result<BTreeMap<String, u32>> {
    let mut per_node = BTreeMap::new();
    for index in 0..4 {
        let id = format!("{prefix}-{index}");
        let eval = server.run_job(service_job(&id, 1)).await?;
        anyhow::ensure!(eval["Status"] == "complete", "evaluation: {eval}");
        let (allocs, _): (Vec<Value>, u64) = server
            .get_json(&format!("/v1/job/{id}/allocations"))
            .await?;
        anyhow::ensure!(allocs.len() == 1, "allocations of {id}: {allocs:?}");
        let node = allocs[0]["NodeID"].as_str().unwrap_or_default().to_owned();
        *per_node.entry(node).or_insert(0) += 1;
    }
    Ok(per_node)
}

/// The stored configuration, once the leader has written it.
async fn stored_config(server: &TestServer) -> anyhow::Result<Value> {
    wait_for(Duration::from_secs(10), || async {
        let (response, _): (Value, u64) = server.get_json(CONFIG).await?;
        let stored = response["SchedulerConfig"]["ModifyIndex"].as_u64() > Some(0);
        Ok(stored.then_some(response))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_algorithm_decides_placements_and_set_config_checks_and_sets() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let node_a = server.register_node(1).await?;
    let node_b = server.register_node(2).await?;

    // A new cluster stores Nomad's defaults.
    let response = stored_config(&server).await?;
    let config = &response["SchedulerConfig"];
    assert_eq!(config["SchedulerAlgorithm"], "binpack", "{response}");
    assert_eq!(config["PreemptionConfig"]["SystemSchedulerEnabled"], true);
    assert_eq!(config["PreemptionConfig"]["ServiceSchedulerEnabled"], false);
    assert_eq!(config["RejectJobRegistration"], false);
    assert_eq!(response["Index"], config["ModifyIndex"]);
    assert_eq!(response["KnownLeader"], true);

    // Binpack: every job on the node that already runs one.
    let packed = place_jobs(&server, "packed").await?;
    assert_eq!(
        packed.values().copied().collect::<Vec<_>>(),
        vec![4],
        "{packed:?}"
    );
    let (full, empty) = if packed.contains_key(&node_a) {
        (node_a, node_b)
    } else {
        (node_b, node_a)
    };

    // Spread, checked-and-set against the index just read.
    let modify_index = config["ModifyIndex"].as_u64().unwrap_or_default();
    let mut spread = config.clone();
    spread["SchedulerAlgorithm"] = json!("spread");
    let set = server
        .put_json(&format!("{CONFIG}?cas={modify_index}"), &spread)
        .await?;
    assert_eq!(set["Updated"], true, "{set}");
    let stale = server
        .put_json(&format!("{CONFIG}?cas={modify_index}"), &config.clone())
        .await?;
    assert_eq!(
        stale["Updated"], false,
        "a stale check-and-set stores nothing: {stale}"
    );
    let (response, _): (Value, u64) = server.get_json(CONFIG).await?;
    assert_eq!(response["SchedulerConfig"]["SchedulerAlgorithm"], "spread");
    assert_eq!(
        response["SchedulerConfig"]["CreateIndex"], config["CreateIndex"],
        "the create index stays"
    );
    assert!(response["SchedulerConfig"]["ModifyIndex"].as_u64() > Some(modify_index));

    // Spread: the next jobs go to the emptier node.
    let spread_out = place_jobs(&server, "spread").await?;
    assert_eq!(
        spread_out.get(&empty),
        Some(&4),
        "{spread_out:?} (full: {full})"
    );

    // An invalid algorithm is refused by name.
    let mut invalid = config.clone();
    invalid["SchedulerAlgorithm"] = json!("scatter");
    let refused = server.put(CONFIG, &invalid).await?;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await?.contains("scatter"));
    server.stop().await;

    // An agent whose default is spread: two and two from the start.
    let server = TestServer::start_with(|options| {
        options.default_scheduler_config.scheduler_algorithm =
            caravan::structs::SchedulerAlgorithm::Spread;
    })
    .await?;
    server.register_node(1).await?;
    server.register_node(2).await?;
    let response = stored_config(&server).await?;
    assert_eq!(response["SchedulerConfig"]["SchedulerAlgorithm"], "spread");
    let spread_out = place_jobs(&server, "even").await?;
    assert_eq!(
        spread_out.values().copied().collect::<Vec<_>>(),
        vec![2, 2],
        "{spread_out:?}"
    );
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_job_registration_and_pause_eval_broker() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    server.register_node(1).await?;
    let response = stored_config(&server).await?;
    let mut config = response["SchedulerConfig"].clone();

    config["RejectJobRegistration"] = json!(true);
    server.put_json(CONFIG, &config).await?;
    let refused = server
        .put("/v1/jobs", &json!({ "Job": service_job("refused", 1) }))
        .await?;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.text().await?.trim(),
        "Job registration, dispatch, and scale are disabled by the scheduler configuration"
    );
    let status = server.get("/v1/job/refused").await?.status();
    assert_eq!(status, 404, "nothing was registered");

    config["RejectJobRegistration"] = json!(false);
    config["PauseEvalBroker"] = json!(true);
    server.put_json(CONFIG, &config).await?;
    let reply = server
        .put_json("/v1/jobs", &json!({ "Job": service_job("held", 1) }))
        .await?;
    let eval_id = reply["EvalID"].as_str().unwrap_or_default().to_owned();
    // The evaluation waits in the broker, ready, and no worker takes it, even after the state
    // moves on.
    wait_for(Duration::from_secs(10), || async {
        let (agent, _): (Value, u64) = server.get_json("/v1/agent/self").await?;
        Ok((agent["stats"]["broker"]["total_ready"] == "1").then_some(()))
    })
    .await?;
    server.register_node(2).await?;
    let (agent, _): (Value, u64) = server.get_json("/v1/agent/self").await?;
    assert_eq!(agent["stats"]["broker"]["total_ready"], "1", "{agent}");
    let (eval, _): (Value, u64) = server
        .get_json(&format!("/v1/evaluation/{eval_id}"))
        .await?;
    assert_eq!(eval["Status"], "pending", "{eval}");

    config["PauseEvalBroker"] = json!(false);
    server.put_json(CONFIG, &config).await?;
    let eval = server.wait_for_eval(&eval_id).await?;
    assert_eq!(eval["Status"], "complete", "{eval}");
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_and_sets_the_configuration_as_nomad_does() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    stored_config(&server).await?;
    let dir = tempfile::tempdir()?;
    let run = |args: &[&str]| {
        let mut all = vec!["operator", "scheduler"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-address", server.url.as_str()]);
        crate::support::caravan(dir.path(), &all)
    };
    let shown = run(&["get-config"])?;
    assert_eq!(shown.code, Some(0), "{shown:?}");
    for line in [
        "Scheduler Algorithm           = binpack",
        "Reject Job Registration       = false",
        "Preemption System Scheduler   = true",
        "Preemption SysBatch Scheduler = false",
    ] {
        assert!(
            shown.stdout.lines().any(|l| l == line),
            "{line:?} in {shown:?}"
        );
    }

    let set = run(&[
        "set-config",
        "-scheduler-algorithm=spread",
        "-preempt-batch-scheduler=true",
    ])?;
    assert_eq!(set.code, Some(0), "{set:?}");
    assert_eq!(set.stdout.trim(), "Scheduler configuration updated!");
    let (response, _): (Value, u64) = server.get_json(CONFIG).await?;
    let config = &response["SchedulerConfig"];
    assert_eq!(config["SchedulerAlgorithm"], "spread");
    assert_eq!(config["PreemptionConfig"]["BatchSchedulerEnabled"], true);
    assert_eq!(
        config["RejectJobRegistration"], false,
        "unset flags keep their value"
    );

    let stale = run(&["set-config", "-check-index=1", "-pause-eval-broker=true"])?;
    assert_eq!(stale.code, Some(1), "{stale:?}");
    assert!(
        stale.stderr.contains("check-index 1 does not match"),
        "{stale:?}"
    );
    let invalid = run(&["set-config", "-scheduler-algorithm=scatter"])?;
    assert_eq!(invalid.code, Some(1), "{invalid:?}");
    assert!(
        invalid
            .stderr
            .contains("invalid scheduler algorithm: scatter"),
        "{invalid:?}"
    );
    server.stop().await;
    Ok(())
}
