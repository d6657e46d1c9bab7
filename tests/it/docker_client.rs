//! The docker driver under a real client (linked over HTTP to the stand-in server of
//! `client_server.rs`) against the node's Docker daemon: published ports, `docker stop` and the
//! restart policy, recovery across a client restart, removal on stop, a bad image in the events.
//!
//! Skips (printing why) without a daemon, except with `CI=true`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use caravan::client::{Client, ClientHandle, ClientOptions, HttpServerLink};
use caravan::structs::{
    AllocClientStatus, AllocId, AllocatedPort, Allocation, Job, JobId, JobType, RestartMode,
    RestartPolicy, Task, TaskEvent, TaskGroup, TaskStateValue,
};
use serde_json::json;
use tempfile::TempDir;

use crate::client_server::TestServer;
use crate::docker::{docker_cli, docker_ready, free_port, http_get_within};

struct Fixture {
    dir: TempDir,
    server: Arc<TestServer>,
}

impl Fixture {
    async fn new() -> Result<Fixture> {
        Ok(Fixture {
            dir: tempfile::tempdir()?,
            server: TestServer::start(Duration::from_secs(10)).await?,
        })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn start_client(&self) -> Result<ClientHandle> {
        let options = ClientOptions {
            data_dir: self.data_dir(),
            node_name: "client1".to_owned(),
            plugins: BTreeMap::new(),
            network_ip: Some("127.0.0.1".parse()?),
            servers: vec![self.server.url()],
            update_interval: Duration::from_millis(50),
            ..ClientOptions::default()
        };
        let link = Arc::new(HttpServerLink::with_watch_wait(
            &options.servers,
            Duration::from_secs(5),
        ));
        Ok(Client::start(options, link).await?)
    }

    async fn wait_alloc(
        &self,
        alloc_id: &AllocId,
        what: &str,
        check: impl Fn(&Allocation) -> bool,
    ) -> Result<Allocation> {
        self.server
            .wait_alloc(alloc_id, what, Duration::from_secs(60), check)
            .await
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(ids) = docker_cli(&["ps", "-aq", "--filter", "label=caravan.job=docker-example"])
        {
            for id in ids.lines() {
                let _ = docker_cli(&["rm", "-f", id]);
            }
        }
    }
}

fn docker_alloc(
    node: &caravan::structs::NodeId,
    config: serde_json::Value,
    port: u16,
) -> Allocation {
    let task = Task {
        name: "web".to_owned(),
        driver: "docker".to_owned(),
        config: config.as_object().cloned().unwrap_or_default(),
        kill_timeout: Some(Duration::from_secs(1)),
        ..Task::default()
    };
    let job = Job {
        id: JobId::from("docker-example"),
        name: "docker-example".to_owned(),
        job_type: JobType::Service,
        namespace: "default".to_owned(),
        region: "global".to_owned(),
        task_groups: vec![TaskGroup {
            name: "group".to_owned(),
            tasks: vec![task],
            restart_policy: Some(RestartPolicy {
                attempts: 2,
                interval: Duration::from_secs(600),
                delay: Duration::from_millis(200),
                mode: RestartMode::Fail,
                render_templates: false,
            }),
            ..TaskGroup::default()
        }],
        ..Job::default()
    };
    let mut alloc = Allocation {
        id: AllocId::generate(),
        namespace: "default".to_owned(),
        name: "docker-example.group[0]".to_owned(),
        node_id: node.clone(),
        job_id: job.id.clone(),
        job: Some(Arc::new(job)),
        task_group: "group".to_owned(),
        ..Allocation::default()
    };
    alloc.allocated_resources.shared.ports.push(AllocatedPort {
        label: "http".to_owned(),
        value: i32::from(port),
        to: 8080,
        host_ip: "127.0.0.1".to_owned(),
    });
    alloc
}

fn running_containers(alloc_id: &AllocId) -> Result<Vec<String>> {
    let filter = format!("label=caravan.alloc_id={}", alloc_id.as_str());
    Ok(
        docker_cli(&["ps", "-q", "--no-trunc", "--filter", &filter])?
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_service_publishes_its_port_restarts_after_docker_stop_recovers_and_is_removed()
-> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = Fixture::new().await?;
    let client = fixture.start_client().await?;
    let port = free_port()?;
    let alloc = docker_alloc(
        &client.node_id(),
        json!({
            "image": crate::docker::TEST_IMAGE,
            "args": ["httpd", "-f", "-p", "8080", "-h", "/www"],
            "ports": ["http"],
        }),
        port,
    );
    let alloc_id = alloc.id.clone();
    fixture.server.upsert_alloc(alloc);
    fixture
        .wait_alloc(&alloc_id, "running", |alloc| {
            alloc.client_status == AllocClientStatus::Running
        })
        .await?;
    let answer = http_get_within(port, Duration::from_secs(15)).await?;
    ensure!(answer.contains("hello from caravan"), "{answer}");

    // The tutorial's scheduler example: `docker stop` the container, the task restarts.
    let first = running_containers(&alloc_id)?;
    ensure!(first.len() == 1, "{first:?}");
    docker_cli(&["stop", "-t", "1", &first[0]])?;
    let restarted = fixture
        .wait_alloc(&alloc_id, "restarted and running", |alloc| {
            alloc
                .task_states
                .get("web")
                .is_some_and(|state| state.restarts == 1 && state.state == TaskStateValue::Running)
        })
        .await?;
    let events: Vec<&str> = restarted.task_states["web"]
        .events
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    ensure!(events.contains(&TaskEvent::TERMINATED), "{events:?}");
    ensure!(events.contains(&TaskEvent::RESTARTING), "{events:?}");
    let second = running_containers(&alloc_id)?;
    ensure!(
        second.len() == 1 && second != first,
        "{first:?} -> {second:?}"
    );
    http_get_within(port, Duration::from_secs(15)).await?;

    // A client restart re-attaches to the running container.
    client.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure!(
        running_containers(&alloc_id)? == second,
        "the container outlives the client"
    );
    let client = fixture.start_client().await?;
    let runner = client
        .alloc_runner(alloc_id.as_str())
        .context("restored runner")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while runner.task_states().get("web").map(|state| state.state) != Some(TaskStateValue::Running)
    {
        ensure!(
            Instant::now() < deadline,
            "not recovered: {:?}",
            runner.task_states()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        running_containers(&alloc_id)? == second,
        "recovered, not restarted"
    );
    ensure!(runner.task_states()["web"].restarts == 1);

    // Stopping the allocation removes its container.
    fixture.server.stop_alloc(&alloc_id);
    fixture
        .wait_alloc(&alloc_id, "complete", |alloc| {
            alloc.client_status == AllocClientStatus::Complete
        })
        .await?;
    let filter = format!("label=caravan.alloc_id={}", alloc_id.as_str());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = docker_cli(&["ps", "-aq", "--filter", &filter])?;
        if left.is_empty() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "containers left after stop: {left}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_bad_image_fails_the_task_with_dockers_error_in_the_events() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = Fixture::new().await?;
    let client = fixture.start_client().await?;
    let alloc = docker_alloc(
        &client.node_id(),
        json!({ "image": "Not/Valid:Ref" }),
        free_port()?,
    );
    let alloc_id = alloc.id.clone();
    fixture.server.upsert_alloc(alloc);
    let failed = fixture
        .wait_alloc(&alloc_id, "a driver failure event", |alloc| {
            alloc.task_states.get("web").is_some_and(|state| {
                state
                    .events
                    .iter()
                    .any(|event| event.event_type == TaskEvent::DRIVER_FAILURE)
            })
        })
        .await?;
    let event = failed.task_states["web"]
        .events
        .iter()
        .find(|event| event.event_type == TaskEvent::DRIVER_FAILURE)
        .context("driver failure")?;
    ensure!(
        event.driver_error.contains("invalid reference format"),
        "{event:?}"
    );
    client.shutdown().await;
    Ok(())
}
