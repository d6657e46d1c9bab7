//! `caravan system gc` on a real `-dev` agent: a finished batch job goes with its evaluation and
//! allocation (and the client removes the allocation's directory), while a running job and its
//! allocation stay.

use std::time::Duration;

use crate::support::dev::{Dev, shell_job};
use crate::support::server::wait_for;

async fn status(dev: &Dev, path: &str) -> anyhow::Result<u16> {
    Ok(reqwest::get(format!("{}{path}", dev.url))
        .await?
        .status()
        .as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_gc_removes_what_is_finished_and_keeps_what_runs() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put("/v1/jobs", &shell_job("gc-done", "batch", "exit 0"))
        .await?;
    dev.put("/v1/jobs", &shell_job("gc-live", "service", "sleep 600"))
        .await?;
    let done = dev.first_alloc("gc-done", "complete").await?;
    let live = dev.first_alloc("gc-live", "running").await?;
    let done_id = done["ID"].as_str().unwrap_or_default().to_owned();
    let live_id = live["ID"].as_str().unwrap_or_default().to_owned();
    let done_dir = dev.agent.data_dir.join("alloc").join(&done_id);
    assert!(done_dir.is_dir(), "{} exists before", done_dir.display());
    // The batch job is dead once its only allocation completed.
    wait_for(Duration::from_secs(30), || async {
        let job = dev.get("/v1/job/gc-done").await?;
        Ok((job["Status"] == "dead").then_some(()))
    })
    .await?;

    let run = dev.cli(&["system", "gc"]).await?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "", "silent on success, as Nomad's");

    // Gone once the command returned: the job, its allocation and its evaluation.
    assert_eq!(status(&dev, "/v1/job/gc-done").await?, 404);
    assert_eq!(
        status(&dev, &format!("/v1/allocation/{done_id}")).await?,
        404
    );
    let evals = dev.get("/v1/evaluations").await?;
    assert!(
        evals
            .as_array()
            .into_iter()
            .flatten()
            .all(|eval| eval["JobID"] != "gc-done"),
        "{evals}"
    );
    // The client destroys the allocation the servers dropped, its directory included.
    wait_for(Duration::from_secs(30), || async {
        Ok((!done_dir.exists()).then_some(()))
    })
    .await?;

    // What runs stays.
    let job = dev.get("/v1/job/gc-live").await?;
    assert_eq!(job["Status"], "running", "{job}");
    let alloc = dev.get(&format!("/v1/allocation/{live_id}")).await?;
    assert_eq!(alloc["ClientStatus"], "running", "{alloc}");
    assert!(dev.agent.data_dir.join("alloc").join(&live_id).is_dir());

    dev.shutdown().await;
    Ok(())
}
