//! `-json` and `-t` on the commands that show a cluster's objects, as Nomad's `Format(json, tmpl,
//! data)`: against a real server holding a node and a placed service job, each command's JSON
//! parses and holds the IDs of what it read, and a Go template renders them.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::support::caravan_at;
use crate::support::server::{TestServer, service_job, wait_for};

/// A server with one node and the service job `web` (two allocations, a deployment) on it.
struct Placed {
    server: TestServer,
    node_id: String,
    eval_id: String,
    alloc_ids: Vec<String>,
    deployment_id: String,
}

impl Placed {
    async fn start() -> anyhow::Result<Self> {
        let server = TestServer::start().await?;
        let node_id = server.register_node(1).await?;
        let mut job = service_job("web", 2);
        job["Update"] = json!({ "MaxParallel": 2 });
        let eval = server.run_job(job).await?;
        let eval_id = eval["ID"].as_str().context("eval ID")?.to_owned();
        let (allocs, _): (Vec<Value>, u64) = server.get_json("/v1/job/web/allocations").await?;
        let mut alloc_ids: Vec<String> = allocs
            .iter()
            .filter_map(|alloc| alloc["ID"].as_str().map(str::to_owned))
            .collect();
        alloc_ids.sort();
        anyhow::ensure!(alloc_ids.len() == 2, "two allocations placed: {allocs:?}");
        let deployment: Value = wait_for(Duration::from_secs(10), || async {
            let (deployment, _): (Value, u64) = server.get_json("/v1/job/web/deployment").await?;
            Ok((!deployment.is_null()).then_some(deployment))
        })
        .await?;
        let deployment_id = deployment["ID"]
            .as_str()
            .context("deployment ID")?
            .to_owned();
        Ok(Self {
            server,
            node_id,
            eval_id,
            alloc_ids,
            deployment_id,
        })
    }

    /// `caravan ARGS` against the server: its stdout, which must come with exit code 0.
    async fn stdout(&self, args: &[&str]) -> anyhow::Result<String> {
        let run = caravan_at(&self.server.url, args).await?;
        anyhow::ensure!(run.code == Some(0), "caravan {args:?}: {run:?}");
        Ok(run.stdout.trim_end().to_owned())
    }

    /// `caravan ARGS` parsed as JSON.
    async fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let stdout = self.stdout(args).await?;
        serde_json::from_str(&stdout).with_context(|| format!("caravan {args:?}: {stdout}"))
    }
}

/// The sorted values of `key` in the objects of `array`.
fn sorted_ids(array: &Value, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = array
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item[key].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// Checks one job's `job status -json` object (Nomad's `JobJson`).
fn check_job_status(placed: &Placed, status: &Value) {
    assert_eq!(status["Summary"]["JobID"], "web", "{status}");
    assert_eq!(
        sorted_ids(&status["Allocations"], "ID"),
        placed.alloc_ids,
        "{status}"
    );
    assert_eq!(
        status["LatestDeployment"]["ID"], placed.deployment_id,
        "{status}"
    );
    assert!(
        sorted_ids(&status["Evaluations"], "ID").contains(&placed.eval_id),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_commands_print_json_and_templates() -> anyhow::Result<()> {
    let placed = Placed::start().await?;
    for args in [
        &["job", "status", "-json"][..],
        &["job", "status", "-json", "web"],
        &["status", "-json"],
        &["status", "-json", "web"],
    ] {
        let statuses = placed.json(args).await?;
        let statuses = statuses.as_array().context("an array of jobs")?;
        assert_eq!(statuses.len(), 1, "{args:?}: {statuses:?}");
        check_job_status(&placed, &statuses[0]);
    }
    let template = "{{range .}}{{.Summary.JobID}} {{len .Allocations}}{{end}}";
    assert_eq!(
        placed
            .stdout(&["job", "status", "-t", template, "web"])
            .await?,
        "web 2"
    );
    assert_eq!(placed.stdout(&["status", "-t", template]).await?, "web 2");

    let versions = placed.json(&["job", "history", "-json", "web"]).await?;
    assert_eq!(sorted_ids(&versions, "ID"), ["web"], "{versions}");
    assert_eq!(
        placed
            .stdout(&[
                "job",
                "history",
                "-t",
                "{{range .}}v{{.Version}}{{end}}",
                "web"
            ])
            .await?,
        "v0"
    );
    let both = caravan_at(
        &placed.server.url,
        &["job", "history", "-json", "-p", "web"],
    )
    .await?;
    assert_eq!(both.code, Some(1), "{both:?}");
    assert!(both.stderr.contains("exclusive with -p"), "{both:?}");

    assert_eq!(
        placed.json(&["job", "inspect", "-json", "web"]).await?["ID"],
        "web"
    );
    assert_eq!(
        placed
            .stdout(&["job", "inspect", "-t", "{{.Name}}", "web"])
            .await?,
        "web"
    );
    let allocs = placed.json(&["job", "allocs", "-json", "web"]).await?;
    assert_eq!(sorted_ids(&allocs, "ID"), placed.alloc_ids);
    placed.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alloc_eval_and_deployment_commands_print_json_and_templates() -> anyhow::Result<()> {
    let placed = Placed::start().await?;
    let alloc_id = placed.alloc_ids[0].as_str();
    for args in [
        &["alloc", "status", "-json", alloc_id][..],
        &["status", "-json", alloc_id],
    ] {
        let alloc = placed.json(args).await?;
        assert_eq!(alloc["ID"], alloc_id, "{args:?}");
        assert_eq!(alloc["NodeID"], placed.node_id, "{args:?}");
    }
    assert_eq!(
        placed
            .stdout(&["alloc", "status", "-t", "{{.JobID}}", alloc_id])
            .await?,
        "web"
    );

    let eval_id = placed.eval_id.as_str();
    assert_eq!(
        placed.json(&["eval", "status", "-json", eval_id]).await?["ID"],
        eval_id
    );
    assert_eq!(
        placed
            .stdout(&["status", "-t", "{{.JobID}} {{.Status}}", eval_id])
            .await?,
        "web complete"
    );
    let evals = placed.json(&["eval", "list", "-json"]).await?;
    assert!(
        sorted_ids(&evals, "ID").contains(&placed.eval_id),
        "{evals}"
    );

    let deployment_id = placed.deployment_id.as_str();
    let deployments = placed.json(&["deployment", "list", "-json"]).await?;
    assert_eq!(sorted_ids(&deployments, "ID"), [deployment_id]);
    for args in [
        &["deployment", "status", "-json", deployment_id][..],
        &["status", "-json", deployment_id],
    ] {
        let deployment = placed.json(args).await?;
        assert_eq!(deployment["ID"], deployment_id, "{args:?}");
        assert_eq!(deployment["JobID"], "web", "{args:?}");
    }
    assert_eq!(
        placed
            .stdout(&[
                "deployment",
                "status",
                "-t",
                "{{.JobID}}",
                &deployment_id[..8]
            ])
            .await?,
        "web"
    );
    let of_job = placed.json(&["job", "deployments", "-json", "web"]).await?;
    assert_eq!(sorted_ids(&of_job, "ID"), [deployment_id]);
    assert_eq!(
        placed
            .stdout(&["job", "deployments", "-latest", "-t", "{{.ID}}", "web"])
            .await?,
        deployment_id
    );
    placed.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_server_and_namespace_commands_print_json_and_templates() -> anyhow::Result<()> {
    let placed = Placed::start().await?;
    let node_id = placed.node_id.as_str();
    let nodes = placed.json(&["node", "status", "-json"]).await?;
    assert_eq!(sorted_ids(&nodes, "ID"), [node_id]);
    for args in [
        &["node", "status", "-json", node_id][..],
        &["status", "-json", node_id],
    ] {
        assert_eq!(placed.json(args).await?["ID"], node_id, "{args:?}");
    }
    assert_eq!(
        placed
            .stdout(&["node", "status", "-t", "{{.Name}}", node_id])
            .await?,
        "node-1"
    );

    let members = placed.json(&["server", "members", "-json"]).await?;
    let members = members.as_array().context("an array of members")?;
    assert_eq!(members.len(), 1, "{members:?}");
    assert!(members[0]["Name"].is_string(), "{members:?}");
    assert_eq!(
        placed
            .stdout(&["server", "members", "-t", "{{range .}}{{.Status}}{{end}}"])
            .await?,
        "alive"
    );

    for args in [
        &["namespace", "status", "-json", "default"][..],
        &["namespace", "inspect", "default"],
    ] {
        assert_eq!(placed.json(args).await?["Name"], "default", "{args:?}");
    }
    for command in ["status", "inspect"] {
        assert_eq!(
            placed
                .stdout(&["namespace", command, "-t", "ns={{.Name}}", "default"])
                .await?,
            "ns=default"
        );
    }
    placed.server.stop().await;
    Ok(())
}
