//! `GET` and `POST /v1/jobs/statuses` against a real server (Nomad 1.8+'s job index): each job
//! with its allocations and latest deployment, newest first, paged, filtered, limited to the jobs
//! a body names, children only when asked, and a blocking query woken by a new job.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::support::server::{TestServer, index_header, service_job};

/// The server's answer to `method path` with `body`: status, `X-Nomad-NextToken`, JSON.
async fn statuses(
    server: &TestServer,
    method: reqwest::Method,
    query: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Option<String>, Value)> {
    let mut request = server
        .http
        .request(method, format!("{}/v1/jobs/statuses{query}", server.url));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let next_token = response
        .headers()
        .get("X-Nomad-NextToken")
        .and_then(|token| token.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, next_token, value))
}

/// `GET /v1/jobs/statuses{query}`, which must answer 200.
async fn get_ok(server: &TestServer, query: &str) -> anyhow::Result<(Option<String>, Value)> {
    let (status, next_token, value) = statuses(server, reqwest::Method::GET, query, None).await?;
    anyhow::ensure!(status == 200, "GET statuses{query}: {status}: {value}");
    Ok((next_token, value))
}

/// The `ID`s of a list, in its order.
fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|job| job["ID"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_list_jobs_with_allocations_and_deployments_as_nomads() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let node_id = server.register_node(1).await?;
    let mut web = service_job("web", 2);
    web["Update"] = json!({ "MaxParallel": 2 });
    server.run_job(web).await?;
    server.run_job(service_job("api", 1)).await?;
    let made = server
        .put("/v1/namespace/ops", &json!({ "Name": "ops" }))
        .await?;
    anyhow::ensure!(made.status().is_success(), "namespace ops: {made:?}");
    let mut ops = service_job("tools", 1);
    ops["Namespace"] = json!("ops");
    server.run_job(ops).await?;
    // A periodic parent is registered without an evaluation.
    server
        .put_json(
            "/v1/jobs",
            &json!({ "Job": {
                "ID": "nightly",
                "Type": "batch",
                "Datacenters": ["dc1"],
                "Periodic": { "Enabled": true, "Spec": "0 3 1 1 *", "SpecType": "cron" },
                "TaskGroups": [{ "Name": "g", "Tasks": [{
                    "Name": "t", "Driver": "raw_exec",
                    "Config": { "command": "/bin/true" },
                    "Resources": { "CPU": 20, "MemoryMB": 16 },
                }]}],
            }}),
        )
        .await?;

    // Newest first, in the request's namespace; a periodic parent has children, not allocations.
    let (next_token, all) = get_ok(&server, "").await?;
    assert_eq!(ids(&all), ["nightly", "api", "web"], "{all}");
    assert_eq!(next_token, None);
    let web = &all[2];
    assert_eq!(web["Namespace"], "default");
    assert_eq!(web["Type"], "service");
    assert_eq!(web["GroupCountSum"], 2);
    let allocs = web["Allocs"].as_array().context("web's allocations")?;
    assert_eq!(allocs.len(), 2, "{web}");
    for alloc in allocs {
        assert_eq!(alloc["Group"], "cache", "{alloc}");
        assert_eq!(alloc["NodeID"], node_id.as_str(), "{alloc}");
        assert_eq!(alloc["JobVersion"], 0, "{alloc}");
        assert_eq!(alloc["DeploymentStatus"]["Canary"], false, "{alloc}");
    }
    let (deployment, _): (Value, u64) = server.get_json("/v1/job/web/deployment").await?;
    assert_eq!(web["LatestDeployment"]["ID"], deployment["ID"], "{web}");
    assert_eq!(web["LatestDeployment"]["IsActive"], true, "{web}");
    assert!(web["ChildStatuses"].is_null(), "{web}");
    let nightly = &all[0];
    assert!(nightly["Allocs"].is_null(), "{nightly}");
    assert_eq!(nightly["ChildStatuses"], json!([]), "{nightly}");

    // Pages follow their tokens; `reverse` lists oldest first.
    let (token, first) = get_ok(&server, "?per_page=2").await?;
    assert_eq!(ids(&first), ["nightly", "api"]);
    let token = token.context("a next page")?;
    let (last_token, second) = get_ok(&server, &format!("?per_page=2&next_token={token}")).await?;
    assert_eq!(ids(&second), ["web"]);
    assert_eq!(last_token, None);
    let (_, reversed) = get_ok(&server, "?reverse=true").await?;
    assert_eq!(ids(&reversed), ["web", "api", "nightly"]);
    let (_, filtered) = get_ok(&server, "?filter=GroupCountSum%20%3D%3D%202").await?;
    assert_eq!(ids(&filtered), ["web"]);
    let (_, everywhere) = get_ok(&server, "?namespace=*").await?;
    assert_eq!(ids(&everywhere), ["nightly", "tools", "api", "web"]);

    // A body names the jobs, across namespaces, whatever the page size.
    let named = json!({ "Jobs": [{ "ID": "web" }, { "ID": "tools", "Namespace": "ops" }] });
    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let (status, _, answer) = statuses(&server, method, "?per_page=1", Some(&named)).await?;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(ids(&answer), ["tools", "web"], "{answer}");
    }
    let (status, _, refused) = statuses(
        &server,
        reqwest::Method::POST,
        "",
        Some(&json!({ "Jobs": [] })),
    )
    .await?;
    assert_eq!(status, 400);
    assert!(
        refused.to_string().contains("no jobs in request"),
        "{refused}"
    );

    // A child of the periodic job shows only with `include_children`, and in its parent.
    server
        .put_json("/v1/job/nightly/periodic/force", &json!({}))
        .await?;
    let (_, with_children) = get_ok(&server, "?include_children=true").await?;
    let child = ids(&with_children)
        .into_iter()
        .find(|id| id.starts_with("nightly/periodic-"))
        .context("the forced child is listed")?
        .to_owned();
    let (_, without) = get_ok(&server, "").await?;
    assert!(!ids(&without).contains(&child.as_str()), "{without}");
    let parent = without
        .as_array()
        .into_iter()
        .flatten()
        .find(|job| job["ID"] == "nightly")
        .context("the parent")?;
    assert_eq!(
        parent["ChildStatuses"].as_array().map(Vec::len),
        Some(1),
        "{parent}"
    );

    // A blocking query wakes when a job is registered past its index.
    let response = server.get("/v1/jobs/statuses").await?;
    let index = index_header(&response)?;
    let blocked = {
        let http = server.http.clone();
        let url = format!("{}/v1/jobs/statuses?index={index}&wait=20s", server.url);
        tokio::spawn(async move { anyhow::Ok(http.get(url).send().await?.json::<Value>().await?) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    anyhow::ensure!(!blocked.is_finished(), "the query did not block");
    server.run_job(service_job("late", 1)).await?;
    let woken = tokio::time::timeout(Duration::from_secs(10), blocked).await???;
    assert_eq!(ids(&woken).first(), Some(&"late"), "{woken}");
    server.stop().await;
    Ok(())
}
