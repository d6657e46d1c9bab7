//! The server driven over its HTTP API: registration to placement, blocking queries, Nomad's
//! errors, heartbeats, the event stream.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::server::{TestServer, index_header, mock_node_secret, service_job, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_job_is_placed_on_registered_nodes() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let node_a = server.register_node(1).await?;
    let node_b = server.register_node(2).await?;

    let eval = server.run_job(service_job("example", 3)).await?;
    assert_eq!(eval["Status"], "complete", "evaluation: {eval}");
    assert_eq!(eval["TriggeredBy"], "job-register");

    let (allocs, _): (Vec<Value>, u64) = server.get_json("/v1/job/example/allocations").await?;
    assert_eq!(allocs.len(), 3, "allocations: {allocs:?}");
    for alloc in &allocs {
        let node_id = alloc["NodeID"].as_str().unwrap_or_default();
        assert!(
            node_id == node_a || node_id == node_b,
            "placed on {node_id}"
        );
        assert_eq!(alloc["TaskGroup"], "cache");
        assert_eq!(alloc["DesiredStatus"], "run");
        assert_eq!(alloc["ClientStatus"], "pending");
    }

    let (summary, _): (Value, u64) = server.get_json("/v1/job/example/summary").await?;
    assert_eq!(
        summary["Summary"]["cache"]["Starting"], 3,
        "summary: {summary}"
    );

    let (job, _): (Value, u64) = server.get_json("/v1/job/example").await?;
    assert_eq!(job["Status"], "running");
    assert_eq!(job["Version"], 0);

    let (jobs, _): (Vec<Value>, u64) = server.get_json("/v1/jobs?prefix=ex").await?;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["ID"], "example");
    assert_eq!(jobs[0]["JobSummary"]["Summary"]["cache"]["Starting"], 3);

    // The client's view: its allocations, whole, with the job.
    let (node_allocs, _): (Vec<Value>, u64) = server
        .get_json(&format!("/v1/node/{node_a}/allocations"))
        .await?;
    for alloc in &node_allocs {
        assert_eq!(alloc["Job"]["ID"], "example");
    }

    // Short ID prefixes are accepted, as the CLI shows them.
    let alloc_id = allocs[0]["ID"].as_str().unwrap_or_default();
    let (alloc, _): (Value, u64) = server
        .get_json(&format!("/v1/allocation/{}", &alloc_id[..8]))
        .await?;
    assert_eq!(alloc["ID"], alloc_id);
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_registered_before_its_nodes_is_placed_when_they_come() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    // No node at all: the evaluation completes with a blocked follow-up.
    let eval = server.run_job(service_job("early", 2)).await?;
    assert_eq!(eval["Status"], "complete", "evaluation: {eval}");
    assert!(
        eval["BlockedEval"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "evaluation: {eval}"
    );
    // A second job races its evaluation against the node's registration: whichever wins, the
    // allocations must come (an evaluation blocked after the unblock is released at once).
    let racing_job = json!({ "Job": service_job("racing", 2) });
    let (racing, node) = tokio::join!(
        server.put_json("/v1/jobs", &racing_job),
        server.register_node(1)
    );
    racing?;
    let node = node?;
    for job in ["early", "racing"] {
        let allocs = wait_for(Duration::from_secs(20), || async {
            let (allocs, _): (Vec<Value>, u64) = server
                .get_json(&format!("/v1/job/{job}/allocations"))
                .await?;
            Ok((allocs.len() == 2).then_some(allocs))
        })
        .await?;
        assert!(
            allocs.iter().all(|alloc| alloc["NodeID"] == node.as_str()),
            "{job}: {allocs:?}"
        );
    }
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_updates_and_stop_flow_to_summary_and_status() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let node = server.register_node(1).await?;
    server.run_job(service_job("web", 2)).await?;
    let (allocs, _): (Vec<Value>, u64) = server.get_json("/v1/job/web/allocations").await?;
    let updates: Vec<Value> = allocs
        .iter()
        .map(|alloc| json!({ "ID": alloc["ID"], "NodeID": node, "ClientStatus": "running" }))
        .collect();
    server
        .put_json_as(
            &format!("/v1/internal/node/{node}/allocations"),
            Some(&mock_node_secret(1)),
            &json!({ "Allocs": updates }),
        )
        .await?;
    let (summary, _): (Value, u64) = server.get_json("/v1/job/web/summary").await?;
    assert_eq!(
        summary["Summary"]["cache"]["Running"], 2,
        "summary: {summary}"
    );

    // Deregister: the job is stopped and its allocations asked to stop.
    let response = server
        .http
        .delete(format!("{}/v1/job/web", server.url))
        .send()
        .await?;
    assert!(response.status().is_success());
    let reply: Value = response.json().await?;
    let eval_id = reply["EvalID"].as_str().unwrap_or_default().to_owned();
    server.wait_for_eval(&eval_id).await?;
    let (job, _): (Value, u64) = server.get_json("/v1/job/web").await?;
    assert_eq!(job["Stop"], true);
    let (allocs, _): (Vec<Value>, u64) = server.get_json("/v1/job/web/allocations").await?;
    assert!(
        allocs.iter().all(|alloc| alloc["DesiredStatus"] == "stop"),
        "{allocs:?}"
    );

    // Purge removes it.
    let response = server
        .http
        .delete(format!("{}/v1/job/web?purge=True", server.url))
        .send()
        .await?;
    assert!(response.status().is_success());
    assert_eq!(server.get("/v1/job/web").await?.status(), 404);
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_query_wakes_on_change() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let (_, index): (Vec<Value>, u64) = server.get_json("/v1/jobs").await?;
    let blocked = {
        let http = server.http.clone();
        let url = format!("{}/v1/jobs?index={index}&wait=30s", server.url);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let response = http.get(url).send().await?;
            let index = index_header(&response)?;
            let jobs: Vec<Value> = response.json().await?;
            anyhow::Ok((started.elapsed(), index, jobs))
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !blocked.is_finished(),
        "the query must block until a change"
    );
    let registered = server
        .put_json("/v1/jobs", &json!({ "Job": service_job("woken", 1) }))
        .await?;
    let (elapsed, new_index, jobs) = blocked.await??;
    assert!(new_index > index, "index {new_index} after {index}");
    assert!(elapsed < Duration::from_secs(10));
    assert_eq!(jobs.len(), 1);

    // Once the job's evaluation settled, a wait that runs out answers with the unchanged index.
    // (No node is registered: the evaluation completes with a blocked follow-up.)
    let eval_id = registered["EvalID"].as_str().unwrap_or_default().to_owned();
    server.wait_for_eval(&eval_id).await?;
    let (_, settled): (Vec<Value>, u64) = server.get_json("/v1/jobs").await?;
    let response = server
        .get(&format!("/v1/jobs?index={settled}&wait=100ms"))
        .await?;
    assert_eq!(index_header(&response)?, settled);
    assert!(response.headers().contains_key("X-Nomad-KnownLeader"));
    assert!(response.headers().contains_key("X-Nomad-LastContact"));
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_nomads() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let missing = server.get("/v1/job/nope").await?;
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await?.contains("nope"));
    assert_eq!(server.get("/v1/allocation/0000").await?.status(), 404);
    assert_eq!(server.get("/v1/evaluation/ffff").await?.status(), 404);
    assert_eq!(server.get("/v1/node/abcd").await?.status(), 404);

    let malformed = server
        .http
        .put(format!("{}/v1/jobs", server.url))
        .body("{not json")
        .send()
        .await?;
    assert_eq!(malformed.status(), 400);
    assert!(malformed.text().await?.contains("failed to decode"));

    let invalid = server
        .put(
            "/v1/jobs",
            &json!({ "Job": { "ID": "bad", "Priority": 500, "TaskGroups": [] } }),
        )
        .await?;
    assert_eq!(invalid.status(), 400);
    let reason = invalid.text().await?;
    assert!(reason.contains("priority"), "reason: {reason}");

    assert_eq!(server.get("/v1/jobs?index=abc").await?.status(), 400);
    assert_eq!(
        server.get("/v1/jobs?wait=forever&index=1").await?.status(),
        400
    );
    assert_eq!(
        server
            .http
            .delete(format!("{}/v1/job/nope?purge=maybe", server.url))
            .send()
            .await?
            .status(),
        400
    );
    assert_eq!(server.get("/v1/no/such/path").await?.status(), 404);
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_that_misses_heartbeats_goes_down_and_its_allocs_are_replaced() -> anyhow::Result<()> {
    let server = TestServer::start_with(|options| {
        options.heartbeat.min_ttl = Duration::from_millis(1000);
        options.heartbeat.grace = Duration::from_millis(300);
    })
    .await?;
    // A heartbeat carries the secret the node registered with (`mock_node`'s `secret-<idx>`).
    let heartbeat = |node_id: String, secret_id: &'static str| {
        let http = server.http.clone();
        let url = format!("{}/v1/internal/node/{node_id}/heartbeat", server.url);
        tokio::spawn(async move {
            loop {
                let _ = http
                    .put(&url)
                    .json(&json!({"Status": "ready", "SecretID": secret_id}))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let silent = server.register_node(1).await?;
    let silent_beat = heartbeat(silent.clone(), "secret-1");
    server.run_job(service_job("lost", 1)).await?;
    let (allocs, _): (Vec<Value>, u64) = server.get_json("/v1/job/lost/allocations").await?;
    assert_eq!(allocs[0]["NodeID"], silent.as_str());

    // A second node keeps heartbeating; the first falls silent.
    let alive = server.register_node(2).await?;
    let beat = heartbeat(alive.clone(), "secret-2");
    silent_beat.abort();
    wait_for(Duration::from_secs(15), || async {
        let (node, _): (Value, u64) = server.get_json(&format!("/v1/node/{silent}")).await?;
        Ok((node["Status"] == "down").then_some(()))
    })
    .await?;
    // The down node's allocation is lost and replaced on the live node.
    wait_for(Duration::from_secs(15), || async {
        let (allocs, _): (Vec<Value>, u64) = server.get_json("/v1/job/lost/allocations").await?;
        let replaced = allocs
            .iter()
            .any(|alloc| alloc["NodeID"] == alive.as_str() && alloc["DesiredStatus"] == "run");
        Ok(replaced.then_some(()))
    })
    .await?;
    let (node, _): (Value, u64) = server.get_json(&format!("/v1/node/{alive}")).await?;
    assert_eq!(node["Status"], "ready");
    assert_eq!(node["SecretID"], "", "the secret is never served");
    beat.abort();
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_sends_matching_topics_as_ndjson() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    server.register_node(1).await?;
    let reader = {
        let http = server.http.clone();
        let url = format!("{}/v1/event/stream?topic=Job:streamed", server.url);
        tokio::spawn(async move {
            let mut response = http.get(url).send().await?;
            anyhow::ensure!(response.status().is_success());
            let mut buffered = String::new();
            while let Some(chunk) = response.chunk().await? {
                buffered.push_str(&String::from_utf8_lossy(&chunk));
                if let Some(line) = buffered.lines().find(|line| line.contains("Events")) {
                    return Ok(serde_json::from_str::<Value>(line)?);
                }
            }
            anyhow::bail!("the stream ended")
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server
        .put_json("/v1/jobs", &json!({ "Job": service_job("other", 1) }))
        .await?;
    server
        .put_json("/v1/jobs", &json!({ "Job": service_job("streamed", 1) }))
        .await?;
    let line = tokio::time::timeout(Duration::from_secs(20), reader).await???;
    assert!(line["Index"].as_u64().unwrap_or(0) > 0);
    let event = &line["Events"][0];
    assert_eq!(event["Topic"], "Job");
    assert_eq!(event["Type"], "JobRegistered");
    assert_eq!(event["Key"], "streamed", "only the requested key: {line}");
    assert_eq!(event["Payload"]["Job"]["ID"], "streamed");
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_agent_endpoints_answer() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let (leader, _): (String, u64) = server.get_json("/v1/status/leader").await?;
    assert_eq!(leader, server.running.rpc_addr.to_string());
    let (peers, _): (Vec<String>, u64) = server.get_json("/v1/status/peers").await?;
    assert_eq!(peers, vec![leader.clone()]);
    let (members, _): (Value, u64) = server.get_json("/v1/agent/members").await?;
    assert_eq!(members["Members"][0]["Status"], "alive");
    let (health, _): (Value, u64) = server.get_json("/v1/agent/health").await?;
    assert_eq!(health["server"]["ok"], true);
    let (agent, _): (Value, u64) = server.get_json("/v1/agent/self").await?;
    assert_eq!(agent["config"]["Server"]["Enabled"], true);
    server.stop().await;
    Ok(())
}
