//! The docker driver end to end through the real `caravan agent` binary (server and client in one
//! process, on loopback ports) and its HTTP API, against the node's Docker daemon: the node
//! fingerprints docker healthy, a service job's published port answers on the host port the
//! scheduler chose, `docker stop` restarts the container per the restart policy with the events in
//! the allocation, an agent restart re-attaches to the running container, and stopping the job
//! removes it.
//!
//! Skips (printing why) without a daemon, except with `CI=true`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::docker::{TEST_IMAGE, docker_cli, docker_ready, free_port};

/// A running `caravan agent`; SIGTERM on drop.
struct Agent {
    child: Child,
}

impl Agent {
    fn spawn(config: &Path, log: &Path) -> Result<Agent> {
        let log = std::fs::File::create(log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["agent", "-config"])
            .arg(config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("spawn caravan agent")?;
        Ok(Agent { child })
    }

    /// Stops the agent as an operator would (SIGTERM) and waits for it to exit.
    fn stop(&mut self) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("the agent did not exit within 20s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.stop();
        }
    }
}

/// Removes the job's containers whatever happens.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label=caravan.job={}", self.0);
        if let Ok(ids) = docker_cli(&["ps", "-aq", "--filter", &filter]) {
            for id in ids.lines() {
                let _ = docker_cli(&["rm", "-f", id]);
            }
        }
    }
}

async fn poll<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + within;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(err) => last_error = Some(err),
        }
        if Instant::now() > deadline {
            bail!("{what} not reached within {within:?} (last error: {last_error:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(http: &reqwest::Client, url: &str) -> Result<Value> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

fn containers(job: &str) -> Result<Vec<String>> {
    let filter = format!("label=caravan.job={job}");
    Ok(
        docker_cli(&["ps", "-q", "--no-trunc", "--filter", &filter])?
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// The task `sleep` of the job's only allocation: (state, restarts, event types).
async fn task_state(
    http: &reqwest::Client,
    url: &str,
    job: &str,
) -> Result<Option<(String, u64, Vec<String>)>> {
    let allocs = get(http, &format!("{url}/v1/job/{job}/allocations")).await?;
    let Some(state) = allocs.get(0).map(|alloc| &alloc["TaskStates"]["sleep"]) else {
        return Ok(None);
    };
    let events = state["Events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|event| event["Type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(state["State"].as_str().map(|value| {
        (
            value.to_owned(),
            state["Restarts"].as_u64().unwrap_or(0),
            events,
        )
    }))
}

/// The index page of the task's httpd at `host:port`, retried while it starts.
async fn http_answer(http: &reqwest::Client, host: &str) -> Result<String> {
    poll("an HTTP answer", Duration::from_secs(30), async || {
        let response = http
            .get(format!("http://{host}/index.html"))
            .timeout(Duration::from_secs(5))
            .send()
            .await?;
        Ok(Some(response.error_for_status()?.text().await?))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_job_through_the_agent_restarts_after_docker_stop_reattaches_and_stops() -> Result<()>
{
    if !docker_ready()? {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let (http_port, rpc_port) = (free_port()?, free_port()?);
    let config = dir.path().join("agent.hcl");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\nbind_addr = \"127.0.0.1\"\nports {{\n  http = {http_port}\n  rpc = {rpc_port}\n}}\nserver {{\n  enabled = true\n  bootstrap_expect = 1\n}}\nclient {{\n  enabled = true\n}}\n",
            data = dir.path().join("data").display().to_string()
        ),
    )?;
    let log = dir.path().join("agent.log");
    let url = format!("http://127.0.0.1:{http_port}");
    let http = reqwest::Client::new();
    let mut agent = Agent::spawn(&config, &log)?;

    poll(
        "a node with docker healthy",
        Duration::from_secs(60),
        async || {
            let nodes = get(&http, &format!("{url}/v1/nodes")).await?;
            Ok(nodes
                .as_array()
                .and_then(|nodes| nodes.first())
                .and_then(|node| {
                    (node["Drivers"]["docker"]["Healthy"] == json!(true)).then_some(())
                }))
        },
    )
    .await?;

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let job_name = format!("docker-e2e-{nanos:x}");
    let _cleanup = Cleanup(job_name.clone());
    let hcl = format!(
        r#"job "{job_name}" {{
  group "g" {{
    network {{
      port "http" {{
        to = 8080
      }}
    }}
    restart {{
      attempts = 2
      interval = "5m"
      delay    = "1s"
      mode     = "fail"
    }}
    task "sleep" {{
      driver = "docker"
      config {{
        image = "{TEST_IMAGE}"
        args  = ["sh", "-c", "echo hello-from-container; exec httpd -f -p 8080 -h /www"]
        ports = ["http"]
      }}
      resources {{
        cpu    = 100
        memory = 32
      }}
    }}
  }}
}}"#
    );
    let job: Value = http
        .post(format!("{url}/v1/jobs/parse"))
        .json(&json!({ "JobHCL": hcl, "Canonicalize": true }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    http.put(format!("{url}/v1/jobs"))
        .json(&json!({ "Job": job }))
        .send()
        .await?
        .error_for_status()?;

    let first = poll("a running container", Duration::from_secs(60), async || {
        let running = task_state(&http, &url, &job_name).await?;
        let ids = containers(&job_name)?;
        Ok(
            (running.is_some_and(|(state, _, _)| state == "running") && ids.len() == 1)
                .then(|| ids[0].clone()),
        )
    })
    .await?;

    // The published port answers on the host address and port the scheduler chose.
    let allocs = get(&http, &format!("{url}/v1/job/{job_name}/allocations")).await?;
    let alloc_id = allocs[0]["ID"].as_str().context("alloc id")?.to_owned();
    let alloc = get(&http, &format!("{url}/v1/allocation/{alloc_id}")).await?;
    let port = &alloc["AllocatedResources"]["Shared"]["Ports"][0];
    let host = format!(
        "{}:{}",
        port["HostIP"].as_str().context("host ip")?,
        port["Value"].as_u64().context("port value")?
    );
    ensure!(port["To"] == json!(8080), "{port}");
    let answer = http_answer(&http, &host).await?;
    ensure!(answer.contains("hello from caravan"), "{answer}");

    // The tutorial's scheduler example.
    docker_cli(&["stop", "-t", "1", &first])?;
    let (_, _, events) = poll("a restart", Duration::from_secs(60), async || {
        Ok(task_state(&http, &url, &job_name)
            .await?
            .filter(|(state, restarts, _)| state == "running" && *restarts == 1))
    })
    .await?;
    ensure!(
        events.iter().any(|event| event == "Terminated"),
        "{events:?}"
    );
    ensure!(
        events.iter().any(|event| event == "Restarting"),
        "{events:?}"
    );
    let second = poll("the new container", Duration::from_secs(30), async || {
        let ids = containers(&job_name)?;
        Ok((ids.len() == 1 && ids[0] != first).then(|| ids[0].clone()))
    })
    .await?;

    // An agent restart re-attaches to the running container.
    agent.stop()?;
    ensure!(
        containers(&job_name)? == [second.clone()],
        "the container outlives the agent"
    );
    let mut agent = Agent::spawn(&config, &log.with_extension("2.log"))?;
    poll("the recovered task", Duration::from_secs(60), async || {
        Ok(task_state(&http, &url, &job_name)
            .await?
            .filter(|(state, _, _)| state == "running"))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(
        containers(&job_name)? == [second.clone()],
        "recovered, not restarted"
    );
    let (_, restarts, _) = task_state(&http, &url, &job_name)
        .await?
        .context("task state")?;
    ensure!(restarts == 1, "restarts {restarts}");
    http_answer(&http, &host).await?;

    // Stopping the job removes the container.
    http.delete(format!("{url}/v1/job/{job_name}"))
        .send()
        .await?
        .error_for_status()?;
    poll("no container left", Duration::from_secs(60), async || {
        let filter = format!("label=caravan.job={job_name}");
        Ok(docker_cli(&["ps", "-aq", "--filter", &filter])?
            .is_empty()
            .then_some(()))
    })
    .await?;
    agent.stop()?;
    Ok(())
}
