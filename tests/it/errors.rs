//! Refusals end to end: a typed error made by the state's apply crosses Raft, is mapped to its HTTP
//! status in one place, and the CLI recognises the enforce-index conflict by the prefix both ends
//! share — against a real server on loopback and the real `caravan` binary.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use crate::support::server::{TestServer, service_job};
use crate::support::{Run, caravan};

fn job_file(dir: &Path, count: u32) -> anyhow::Result<()> {
    std::fs::write(
        dir.join("web.nomad.hcl"),
        format!(
            r#"
job "web" {{
  datacenters = ["dc1"]
  group "cache" {{
    count = {count}
    task "redis" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sleep"
        args    = ["1000"]
      }}
    }}
  }}
}}
"#
        ),
    )?;
    Ok(())
}

/// `caravan job run -address URL ARGS web.nomad.hcl`, off the async runtime.
async fn job_run(dir: &Path, url: &str, args: &[&str]) -> anyhow::Result<Run> {
    let mut all: Vec<String> = ["job", "run", "-address", url, "-detach"]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    all.push("web.nomad.hcl".to_owned());
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        caravan(&dir, &args)
    })
    .await?
}

async fn job_modify_index(server: &TestServer) -> anyhow::Result<u64> {
    let (job, _): (Value, u64) = server.get_json("/v1/job/web").await?;
    job["JobModifyIndex"]
        .as_u64()
        .context("the job has a JobModifyIndex")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_run_check_index_with_a_stale_index_is_refused_in_nomads_words() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let dir = tempfile::tempdir()?;
    job_file(dir.path(), 1)?;

    let fresh = job_run(dir.path(), &server.url, &["-check-index", "3"]).await?;
    assert_eq!(fresh.code, Some(1), "{fresh:?}");
    assert_eq!(
        fresh.stderr,
        "Enforcing job modify index 3: job does not exist\nJob not updated\n"
    );
    let created = job_run(dir.path(), &server.url, &["-check-index", "0"]).await?;
    assert_eq!(created.code, Some(0), "{created:?}");
    let current = job_modify_index(&server).await?;

    job_file(dir.path(), 2)?;
    let stale = current - 1;
    let refused = job_run(
        dir.path(),
        &server.url,
        &["-check-index", &stale.to_string()],
    )
    .await?;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert_eq!(
        refused.stderr,
        format!(
            "Enforcing job modify index {stale}: job exists with conflicting job modify index: \
             {current}\nJob not updated\n"
        )
    );
    assert_eq!(job_modify_index(&server).await?, current, "nothing changed");

    let accepted = job_run(
        dir.path(),
        &server.url,
        &["-check-index", &current.to_string()],
    )
    .await?;
    assert_eq!(accepted.code, Some(0), "{accepted:?}");
    assert!(job_modify_index(&server).await? > current);

    // The same refusal over the API: a conflict, with the reason as the plain-text body.
    let body = json!({
        "Job": service_job("web", 3),
        "EnforceIndex": true,
        "JobModifyIndex": stale,
    });
    let response = server.put("/v1/jobs", &body).await?;
    assert_eq!(response.status(), reqwest::StatusCode::CONFLICT);
    let text = response.text().await?;
    assert!(
        text.starts_with(caravan::api::error::ENFORCE_INDEX_ERR_PREFIX),
        "{text}"
    );
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_naming_a_missing_object_are_404_and_state_conflicts_409() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let http = &server.http;
    let url = &server.url;
    let cases = [
        (
            http.delete(format!("{url}/v1/job/ghost")),
            "job \"ghost\" not found",
        ),
        (
            http.put(format!("{url}/v1/node/ghost-node/eligibility"))
                .json(&json!({ "NodeID": "ghost-node", "Eligibility": "eligible" })),
            "node \"ghost-node\" not found",
        ),
        (
            http.post(format!(
                "{url}/v1/allocation/00000000-0000-0000-0000-000000000000/stop"
            )),
            "alloc \"00000000-0000-0000-0000-000000000000\" not found",
        ),
    ];
    for (request, message) in cases {
        let response = request.send().await?;
        assert_eq!(
            response.status(),
            reqwest::StatusCode::NOT_FOUND,
            "{message}"
        );
        assert_eq!(response.text().await?, message);
    }

    // Refused by the apply itself (the endpoint does not check it): the typed error crosses Raft.
    let node_id = server.register_node(0).await?;
    let drain = json!({ "NodeID": node_id, "DrainSpec": { "Deadline": 3_600_000_000_000_i64 } });
    server
        .put_json(&format!("/v1/node/{node_id}/drain"), &drain)
        .await?;
    let response = server
        .put(
            &format!("/v1/node/{node_id}/eligibility"),
            &json!({ "NodeID": node_id, "Eligibility": "eligible" }),
        )
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::CONFLICT);
    assert_eq!(
        response.text().await?,
        "can not set node's scheduling eligibility to eligible while it is draining"
    );
    server.stop().await;
    Ok(())
}
