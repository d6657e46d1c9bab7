//! The client↔server allocation protocol against a real server: a node's watch moves only when
//! the servers change that node's allocations (not on another node's placements, not on its own
//! status reports), a pull returns only the node's own allocations with each job version once,
//! and a node may report only for its own allocations, the servers stamping the time.

use serde_json::{Value, json};

use crate::support::server::{TestServer, mock_node_secret, service_job};

/// `service_job` pinned to one node.
fn job_on(id: &str, node_id: &str, count: u32) -> Value {
    let mut job = service_job(id, count);
    job["Constraints"] = json!([{
        "LTarget": "${node.unique.id}",
        "RTarget": node_id,
        "Operand": "=",
    }]);
    job
}

/// The allocations of the mock node `idx`, asked as that node.
async fn client_allocs(server: &TestServer, idx: usize, node_id: &str) -> anyhow::Result<Value> {
    let secret = mock_node_secret(idx);
    let (allocs, _) = server
        .get_json_as(
            &format!("/v1/internal/node/{node_id}/client-allocs"),
            Some(&secret),
        )
        .await?;
    Ok(allocs)
}

fn alloc_ids(listed: &Value) -> Vec<String> {
    listed["Allocs"]
        .as_object()
        .map(|allocs| allocs.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_watch_moves_only_for_its_own_allocations() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let node_a = server.register_node(1).await?;
    let node_b = server.register_node(2).await?;

    server.run_job(job_on("on-a", &node_a, 2)).await?;
    let listed_a = client_allocs(&server, 1, &node_a).await?;
    let listed_b = client_allocs(&server, 2, &node_b).await?;
    let ids_a = alloc_ids(&listed_a);
    assert_eq!(ids_a.len(), 2, "{listed_a}");
    assert!(alloc_ids(&listed_b).is_empty(), "{listed_b}");
    let index_a = listed_a["Index"].as_u64().unwrap_or_default();
    let index_b = listed_b["Index"].as_u64().unwrap_or_default();

    // A blocking watch of node A answers once a second job lands there...
    let watch = {
        let http = server.http.clone();
        let url = format!(
            "{}/v1/internal/node/{node_a}/client-allocs?index={index_a}&wait=20s",
            server.url
        );
        let secret = mock_node_secret(1);
        tokio::spawn(async move {
            http.get(url)
                .header("X-Nomad-Token", secret)
                .send()
                .await?
                .json::<Value>()
                .await
        })
    };
    server.run_job(job_on("more-on-a", &node_a, 1)).await?;
    let woken = watch.await??;
    assert_eq!(alloc_ids(&woken).len(), 3, "{woken}");
    assert!(
        woken["Index"].as_u64().unwrap_or_default() > index_a,
        "{woken}"
    );
    // ... while node B's index, which its watch blocks on, did not move.
    let listed_b = client_allocs(&server, 2, &node_b).await?;
    assert_eq!(listed_b["Index"].as_u64(), Some(index_b), "{listed_b}");

    // A node's own status report does not echo back to its watch, and the servers stamp it.
    let before = client_allocs(&server, 1, &node_a).await?;
    let report = json!({ "Allocs": [{
        "ID": ids_a[0], "NodeID": node_a, "ClientStatus": "running",
    }]});
    server
        .put_json_as(
            &format!("/v1/internal/node/{node_a}/allocations"),
            Some(&mock_node_secret(1)),
            &report,
        )
        .await?;
    let after = client_allocs(&server, 1, &node_a).await?;
    assert_eq!(
        after["Index"], before["Index"],
        "a client update moved the watch"
    );
    let (alloc, _): (Value, u64) = server
        .get_json(&format!("/v1/allocation/{}", ids_a[0]))
        .await?;
    assert_eq!(alloc["ClientStatus"], "running");
    assert!(
        alloc["ModifyTime"].as_i64().unwrap_or_default() > 0,
        "{alloc}"
    );

    // A pull returns the node's own allocations only, the job version once.
    let pull = |idx: usize, node: &str| {
        let url = format!("{}/v1/internal/node/{node}/allocs/pull", server.url);
        let body = json!({ "AllocIDs": ids_a });
        let http = server.http.clone();
        async move {
            http.post(url)
                .header("X-Nomad-Token", mock_node_secret(idx))
                .json(&body)
                .send()
                .await?
                .json::<Value>()
                .await
        }
    };
    let pulled = pull(1, &node_a).await?;
    assert_eq!(
        pulled["Allocs"].as_array().map(Vec::len),
        Some(2),
        "{pulled}"
    );
    assert_eq!(pulled["Jobs"].as_array().map(Vec::len), Some(1), "{pulled}");
    assert!(
        pulled["Allocs"][0]["Alloc"]["Job"].is_null(),
        "jobs travel once"
    );
    let pulled_by_b = pull(2, &node_b).await?;
    assert_eq!(pulled_by_b["Allocs"], json!([]), "{pulled_by_b}");

    // A node may not report for another node's allocation, nor in another node's name.
    for (path_idx, path_node, body_node) in [(2, &node_b, &node_b), (1, &node_a, &node_b)] {
        let report = json!({ "Allocs": [{
            "ID": ids_a[1], "NodeID": body_node, "ClientStatus": "failed",
        }]});
        let response = server
            .put_as(
                &format!("/v1/internal/node/{path_node}/allocations"),
                Some(&mock_node_secret(path_idx)),
                &report,
            )
            .await?;
        assert_eq!(response.status(), 403, "{}", response.text().await?);
    }
    let (alloc, _): (Value, u64) = server
        .get_json(&format!("/v1/allocation/{}", ids_a[1]))
        .await?;
    assert_ne!(
        alloc["ClientStatus"], "failed",
        "a refused report changed nothing"
    );
    server.stop().await;
    Ok(())
}
