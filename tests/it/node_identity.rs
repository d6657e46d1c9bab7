//! Node identity on a real `-dev` agent: the client proves every call with the secret it made
//! at first registration (kept in its data dir), and a forged client — plain HTTP from this test,
//! without that secret — can neither register as the node, heartbeat for it, read its
//! allocations, report for them nor touch its services.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::support::dev::Dev;
use crate::support::server::{service_job, wait_for};

/// One forged call: the status and the answer's text.
async fn forged(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<(u16, String)> {
    let mut request = http.request(method, url).json(body);
    if let Some(token) = token {
        request = request.header("X-Nomad-Token", token);
    }
    let response = request.send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_client_cannot_speak_for_a_node() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let node_id = dev
        .agent
        .node_id
        .clone()
        .context("the dev agent runs a client")?;
    let secret_file = dev.agent.data_dir.join("client/secret-id");
    let secret = std::fs::read_to_string(&secret_file)
        .with_context(|| format!("reading {}", secret_file.display()))?
        .trim()
        .to_owned();
    assert!(!secret.is_empty(), "the client made its secret");

    // The real client watches, pulls and reports with its secret: the task runs.
    dev.put("/v1/jobs", &json!({ "Job": service_job("guarded", 1) }))
        .await?;
    let alloc_id = wait_for(Duration::from_secs(30), || async {
        let allocs = dev.get("/v1/job/guarded/allocations").await?;
        Ok(allocs.as_array().and_then(|allocs| {
            allocs
                .iter()
                .find(|alloc| alloc["ClientStatus"] == "running")
                .and_then(|alloc| alloc["ID"].as_str().map(str::to_owned))
        }))
    })
    .await?;

    let http = reqwest::Client::new();
    let node_url = format!("{}/v1/internal/node/{node_id}", dev.url);
    let denied = (403, "Permission denied".to_owned());
    // No secret, a wrong one, and the node's own ID (which any API user can read).
    for token in [None, Some("not-the-secret"), Some(node_id.as_str())] {
        let mut heartbeat = json!({ "Status": "down" });
        if let Some(token) = token {
            heartbeat["SecretID"] = json!(token);
        }
        let calls = [
            (reqwest::Method::PUT, "heartbeat", heartbeat),
            (reqwest::Method::GET, "client-allocs", Value::Null),
            (
                reqwest::Method::POST,
                "allocs/pull",
                json!({ "AllocIDs": [alloc_id] }),
            ),
            (
                reqwest::Method::PUT,
                "allocations",
                json!({ "Allocs": [{ "ID": alloc_id, "NodeID": node_id, "ClientStatus": "failed" }] }),
            ),
            (
                reqwest::Method::PUT,
                "services",
                json!({ "Upserts": [], "Deletes": [] }),
            ),
        ];
        for (method, call, body) in calls {
            let answer = forged(&http, method, format!("{node_url}/{call}"), token, &body).await?;
            assert_eq!(answer, denied, "{call} with {token:?}");
        }
        // Registering under the node's ID with another secret, or none, is refused.
        let node = json!({ "ID": node_id, "SecretID": token.unwrap_or(""), "Status": "ready", "Datacenter": "dc1" });
        let (status, text) = forged(
            &http,
            reqwest::Method::PUT,
            format!("{}/v1/internal/node/register", dev.url),
            None,
            &json!({ "Node": node }),
        )
        .await?;
        let expected = match token {
            None => (400, "missing node secret ID for client registration"),
            Some(_) => (403, "node secret ID does not match. Not registering node."),
        };
        assert_eq!((status, text.as_str()), expected, "register with {token:?}");
    }

    // Nothing the forger asked for happened: the node is ready, the allocation running.
    let node = dev.get(&format!("/v1/node/{node_id}")).await?;
    assert_eq!(node["Status"], "ready", "{node}");
    assert_eq!(node["SecretID"], "", "the secret is never served");
    let alloc = dev.get(&format!("/v1/allocation/{alloc_id}")).await?;
    assert_eq!(alloc["ClientStatus"], "running", "{alloc}");

    // The node's own secret opens the same door.
    let (status, text) = forged(
        &http,
        reqwest::Method::GET,
        format!("{node_url}/client-allocs"),
        Some(&secret),
        &Value::Null,
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let listed: Value = serde_json::from_str(&text)?;
    assert!(listed["Allocs"].get(&alloc_id).is_some(), "{listed}");

    dev.shutdown().await;
    Ok(())
}
