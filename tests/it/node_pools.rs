//! Node pools on a real `-dev` agent: `caravan node pool apply|list|info|nodes|jobs|delete`, a
//! job in a pool without nodes is not placed on the dev node, a job in a pool that does not exist
//! is refused, and a pool in use cannot be deleted.

use serde_json::json;

use crate::support::dev::{Dev, shell_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pools_through_the_cli_and_the_scheduler() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let dir = tempfile::tempdir()?;
    let spec = dir.path().join("prod.hcl");
    std::fs::write(
        &spec,
        r#"
node_pool "prod" {
  description = "Production nodes"
  meta {
    owner = "platform"
  }
  scheduler_config {
    scheduler_algorithm = "spread"
  }
}
"#,
    )?;
    let spec = spec.to_string_lossy().into_owned();
    let applied = dev.cli(&["node", "pool", "apply", &spec]).await?;
    assert_eq!(applied.code, Some(0), "{}", applied.stderr);
    assert_eq!(applied.stdout, "Successfully applied node pool \"prod\"!\n");

    let listed = dev.cli(&["node", "pool", "list"]).await?;
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "Name     Description",
            "all      Node pool with all nodes in the cluster.",
            "default  Default node pool.",
            "prod     Production nodes",
        ],
        "{}",
        listed.stderr
    );
    let info = dev.cli(&["node", "pool", "info", "prod"]).await?;
    for line in [
        "Name        = prod",
        "Description = Production nodes",
        "owner = platform",
        "Scheduler Algorithm             = spread",
    ] {
        assert!(info.stdout.contains(line), "{line:?} in:\n{}", info.stdout);
    }

    // The dev node is in `default`; `all` spans it too.
    let node_id = dev.get("/v1/nodes").await?[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (pool, expected) in [("default", 1), ("all", 1), ("prod", 0)] {
        let nodes = dev.get(&format!("/v1/node/pool/{pool}/nodes")).await?;
        assert_eq!(
            nodes.as_array().map(Vec::len),
            Some(expected),
            "{pool}: {nodes}"
        );
    }
    let nodes = dev
        .cli(&["node", "pool", "nodes", "-verbose", "default"])
        .await?;
    assert!(nodes.stdout.contains(&node_id), "{}", nodes.stdout);

    // A job in a pool that does not exist is refused at registration.
    let mut ghost = shell_job("in-ghost", "service", "sleep 600");
    ghost["Job"]["NodePool"] = json!("ghost");
    let (status, body) = dev.put_raw("/v1/jobs", &ghost).await?;
    assert_eq!(status, 400);
    assert!(
        body.contains("job \"in-ghost\" is in nonexistent node pool \"ghost\""),
        "{body}"
    );

    // A job in `prod` has no node to run on: it stays unplaced, listed under its pool.
    let mut prod_job = shell_job("in-prod", "service", "sleep 600");
    prod_job["Job"]["NodePool"] = json!("prod");
    dev.put("/v1/jobs", &prod_job).await?;
    let summary = crate::support::server::wait_for(std::time::Duration::from_secs(30), || async {
        let summary = dev.get("/v1/job/in-prod/summary").await?;
        Ok((summary["Summary"]["g"]["Queued"] == 1).then_some(summary))
    })
    .await?;
    assert_eq!(summary["Summary"]["g"]["Running"], 0, "{summary}");
    let allocs = dev.get("/v1/job/in-prod/allocations").await?;
    assert_eq!(allocs.as_array().map(Vec::len), Some(0), "{allocs}");
    let jobs = dev.cli(&["node", "pool", "jobs", "prod"]).await?;
    assert!(
        jobs.stdout.lines().any(|line| line.starts_with("in-prod ")),
        "{}",
        jobs.stdout
    );

    let refused = dev.cli(&["node", "pool", "delete", "prod"]).await?;
    assert_eq!(refused.code, Some(1));
    assert!(
        refused
            .stderr
            .contains("node pool \"prod\" has non-terminal jobs in regions: [global]"),
        "{}",
        refused.stderr
    );
    let builtin = dev
        .put_raw(
            "/v1/node/pools",
            &json!({ "Name": "default", "Description": "mine" }),
        )
        .await?;
    assert_eq!(builtin.0, 400);
    assert!(
        builtin
            .1
            .contains("modifying node pool \"default\" is not allowed"),
        "{}",
        builtin.1
    );

    // Once the job is gone the pool can go.
    let purged = dev
        .cli(&["job", "stop", "-purge", "-detach", "in-prod"])
        .await?;
    assert_eq!(purged.code, Some(0), "{}", purged.stderr);
    let deleted = dev.cli(&["node", "pool", "delete", "prod"]).await?;
    assert_eq!(deleted.code, Some(0), "{}", deleted.stderr);
    assert_eq!(deleted.stdout, "Successfully deleted node pool \"prod\"!\n");
    let gone = dev.cli(&["node", "pool", "info", "prod"]).await?;
    assert_eq!(gone.code, Some(1));
    assert!(gone.stderr.contains("not found"), "{}", gone.stderr);
    dev.shutdown().await;
    Ok(())
}
