//! The typed client against a small stand-in agent on a loopback port: the query it sends, the
//! errors it words as Nomad's, prefix resolution and the event stream.

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use futures::StreamExt;

use super::*;
use crate::api::types::jobs::JobListStub;

fn stub(id: &str) -> JobListStub {
    JobListStub {
        id: id.to_owned(),
        ..JobListStub::default()
    }
}

async fn jobs(
    Query(params): Query<HashMap<String, String>>,
) -> (HeaderMap, axum::Json<Vec<JobListStub>>) {
    let mut headers = HeaderMap::new();
    let index = params
        .get("index")
        .cloned()
        .unwrap_or_else(|| "7".to_owned());
    headers.insert("X-Nomad-Index", index.parse().expect("a header value"));
    // Each stub's name echoes the query the client sent, so the test sees it.
    let mut query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    query.sort();
    let prefix = params.get("prefix").cloned().unwrap_or_default();
    let all = ["web", "web-2", "db"].map(|id| JobListStub {
        name: query.join("&"),
        ..stub(id)
    });
    let list = all
        .into_iter()
        .filter(|job| job.id.starts_with(&prefix))
        .collect();
    (headers, axum::Json(list))
}

async fn start() -> anyhow::Result<ApiClient> {
    let router = Router::new()
        .route("/v1/jobs", get(jobs))
        .route(
            "/v1/job/{id}",
            get(|| async { (StatusCode::NOT_FOUND, "job \"ghost\" not found") }),
        )
        .route(
            "/v1/event/stream",
            get(|| async {
                concat!(
                    "{}\n",
                    r#"{"Index": 3, "Events": [{"Topic": "Job", "Type": "JobRegistered", "Key": "web", "Namespace": "default", "Index": 3, "Payload": {"Job": {"ID": "web"}}}]}"#,
                    "\n{}\n"
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(ApiClient::new(ClientConfig {
        address,
        region: Some("global".to_owned()),
        namespace: Some("prod".to_owned()),
        token: None,
        stale: true,
        tls: crate::tls::CliTls::default(),
    })?)
}

#[tokio::test]
async fn every_request_carries_region_namespace_and_stale() -> anyhow::Result<()> {
    let client = start().await?;
    let (jobs, meta): (Vec<JobListStub>, QueryMeta) = client.get_with_meta("/v1/jobs").await?;
    assert_eq!(meta.last_index, 7);
    assert_eq!(jobs[0].name, "namespace=prod&region=global&stale=true");
    Ok(())
}

#[tokio::test]
async fn a_client_moved_to_another_agent_keeps_its_settings() -> anyhow::Result<()> {
    let client = start().await?;
    let gone = client.at("127.0.0.1:1/");
    assert_eq!(gone.address(), "http://127.0.0.1:1");
    let moved_back = gone.at(client.address());
    let jobs: Vec<JobListStub> = moved_back.get("/v1/jobs").await?;
    assert_eq!(jobs[0].name, "namespace=prod&region=global&stale=true");
    assert!(matches!(
        gone.get::<Vec<JobListStub>>("/v1/jobs").await,
        Err(ClientError::Transport(_))
    ));
    Ok(())
}

#[tokio::test]
async fn a_blocking_query_sends_index_and_wait() -> anyhow::Result<()> {
    let client = start().await?;
    let (jobs, meta): (Vec<JobListStub>, QueryMeta) = client
        .blocking("/v1/jobs", 41, Duration::from_millis(1500))
        .await?;
    assert_eq!(meta.last_index, 41);
    assert!(jobs[0].name.contains("index=41&"), "{}", jobs[0].name);
    assert!(jobs[0].name.contains("wait=1500ms"), "{}", jobs[0].name);
    Ok(())
}

#[tokio::test]
async fn errors_are_worded_as_nomads() -> anyhow::Result<()> {
    let client = start().await?;
    let error = client
        .get::<crate::structs::Job>("/v1/job/ghost")
        .await
        .expect_err("a 404");
    assert_eq!(error.status(), Some(404));
    assert_eq!(
        error.to_string(),
        "Unexpected response code: 404 (job \"ghost\" not found)"
    );
    let decode = client
        .get::<crate::structs::Job>("/v1/jobs")
        .await
        .expect_err("a list is not a job");
    assert!(matches!(decode, ClientError::Decode { .. }), "{decode}");
    Ok(())
}

#[tokio::test]
async fn prefixes_resolve_as_nomads_cli_does() -> anyhow::Result<()> {
    let client = start().await?;
    let exact = client.by_prefix::<JobListStub>("jobs", "web").await?;
    assert!(
        matches!(exact, PrefixMatch::One(job) if job.id == "web"),
        "exact wins"
    );
    let many = client.by_prefix::<JobListStub>("jobs", "w").await?;
    assert!(matches!(many, PrefixMatch::Many(jobs) if jobs.len() == 2));
    let one = client.by_prefix::<JobListStub>("jobs", "d").await?;
    assert!(matches!(one, PrefixMatch::One(job) if job.id == "db"));
    let none = client.by_prefix::<JobListStub>("jobs", "x").await?;
    assert_eq!(none, PrefixMatch::None);
    Ok(())
}

#[test]
fn odd_uuid_prefixes_are_queried_one_shorter() {
    assert_eq!(short_prefix("5a8c3"), "5a8c");
    assert_eq!(short_prefix("5a8c"), "5a8c");
    assert_eq!(short_prefix("web"), "web");
}

#[tokio::test]
async fn the_event_stream_yields_typed_frames_without_heartbeats() -> anyhow::Result<()> {
    let client = start().await?;
    let frames: Vec<_> = client
        .events(&["Job:web".to_owned()])
        .await?
        .collect()
        .await;
    assert_eq!(frames.len(), 1, "heartbeats are skipped");
    let frame = frames.into_iter().next().expect("one frame")?;
    assert_eq!(frame.index, 3);
    assert_eq!(frame.events[0].key, "web");
    Ok(())
}
