//! `POST /v1/jobs/parse`: job files parsed by the server for API clients.

use serde_json::json;

use crate::support::server::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_parse_turns_hcl_into_api_json() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let hcl = "variable \"count\" {\n  type = number\n}\njob \"web\" {\n  group \"g\" {\n    count = var.count\n    task \"t\" {\n      driver = \"raw_exec\"\n      config {\n        command = \"/bin/true\"\n      }\n    }\n  }\n}\n";
    let job = server
        .put_json(
            "/v1/jobs/parse",
            &json!({"JobHCL": hcl, "Variables": "count = 3\n", "Canonicalize": true}),
        )
        .await?;
    assert_eq!(job["ID"], "web");
    assert_eq!(job["TaskGroups"][0]["Count"], 3);
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["command"],
        "/bin/true"
    );
    // Nomad's defaults are applied.
    assert_eq!(job["Priority"], 50);

    let response = server
        .put(
            "/v1/jobs/parse",
            &json!({"JobHCL": "job \"x\" {\n  cuont = 1\n}\n"}),
        )
        .await?;
    assert_eq!(response.status(), 400);
    let reason = response.text().await?;
    assert!(
        reason.contains("input.nomad.hcl:2:3: unsupported argument \"cuont\""),
        "{reason}"
    );
    server.stop().await;
    Ok(())
}

/// `/v1/jobs/parse` parses without validating, as Nomad's does; `/v1/validate/job` answers with
/// Nomad's `JobValidateResponse`, the problems those registration would refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_parse_does_not_validate_and_validate_job_reports_in_nomads_shape()
-> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let job = server
        .put_json(
            "/v1/jobs/parse",
            &json!({"JobHCL": "job \"empty\" {\n  ui {\n    description = \"nothing yet\"\n  }\n}\n"}),
        )
        .await?;
    assert_eq!(job["ID"], "empty");
    assert_eq!(job["TaskGroups"], json!([]));
    assert_eq!(job["UI"]["Description"], "nothing yet");

    let reply = server
        .put_json("/v1/validate/job", &json!({ "Job": job }))
        .await?;
    assert_eq!(
        reply["ValidationErrors"],
        json!(["TaskGroups: Missing job task groups"])
    );
    assert_eq!(
        reply["Error"],
        "1 error occurred:\n\t* TaskGroups: Missing job task groups"
    );
    assert_eq!(reply["Warnings"], "");
    assert_eq!(reply["DriverConfigValidated"], false);

    let valid = crate::support::server::service_job("fine", 1);
    let reply = server
        .put_json("/v1/validate/job", &json!({ "Job": valid }))
        .await?;
    assert_eq!(reply["ValidationErrors"], json!([]));
    assert_eq!(reply["Error"], "");
    // Nothing was registered.
    let (jobs, _) = server.get_json::<serde_json::Value>("/v1/jobs").await?;
    assert_eq!(jobs, json!([]));

    let response = server.put("/v1/validate/job", &json!({})).await?;
    assert_eq!(response.status(), 400);
    server.stop().await;
    Ok(())
}
