//! The CLI's API commands against an in-process server: `job run` monitors its evaluation, the
//! status commands read what it placed, `job stop -purge` removes it.

use std::process::ExitCode;

use caravan::cli::{
    ApiArgs, JobFileArgs, JobIdArgs, JobRunArgs, JobStatusArgs, JobStopArgs, VarArgs,
};
use serde_json::{Value, json};

use crate::support::server::{TestServer, service_job};

fn api(server: &TestServer) -> ApiArgs {
    ApiArgs {
        address: Some(server.url.clone()),
        region: None,
        namespace: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_run_status_stop_through_the_api() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    server.register_node(1).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("example.json");
    std::fs::write(
        &file,
        json!({ "Job": service_job("example", 2) }).to_string(),
    )?;
    let job_file = || JobFileArgs {
        vars: VarArgs::default(),
        file: file.clone(),
        json: true,
    };
    let code = caravan::cli::job_run::run(&JobRunArgs {
        job: job_file(),
        api: api(&server),
        output: false,
        detach: false,
        check_index: None,
        verbose: false,
    })
    .await?;
    assert_eq!(code, ExitCode::SUCCESS);
    let (allocs, _): (Vec<Value>, u64) = server.get_json("/v1/job/example/allocations").await?;
    assert_eq!(allocs.len(), 2);

    let code = caravan::cli::job_status::run(&JobStatusArgs {
        api: api(&server),
        job_id: Some("exa".to_owned()),
        short: false,
        verbose: false,
        all_allocs: false,
    })
    .await?;
    assert_eq!(code, ExitCode::SUCCESS);
    let code = caravan::cli::job_history::run(&JobIdArgs {
        api: api(&server),
        job_id: "example".to_owned(),
        verbose: false,
    })
    .await?;
    assert_eq!(code, ExitCode::SUCCESS);

    let code = caravan::cli::job_stop::run(&JobStopArgs {
        api: api(&server),
        job_id: "example".to_owned(),
        purge: true,
        detach: false,
        yes: true,
    })
    .await?;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(server.get("/v1/job/example").await?.status(), 404);

    // An unknown job is an error naming it.
    let missing = caravan::cli::job_status::run(&JobStatusArgs {
        api: api(&server),
        job_id: Some("nope".to_owned()),
        short: false,
        verbose: false,
        all_allocs: false,
    })
    .await;
    assert!(missing.is_err_and(|error| error.to_string().contains("nope")));
    server.stop().await;
    Ok(())
}
