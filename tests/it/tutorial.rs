//! The tutorial's topology as separate processes: one server (server.hcl) and two clients
//! (client1.hcl, client2.hcl, on their own ports, naming the server by its RPC address). A service
//! job with count 3 and a batch job reach their final states; a client killed with SIGKILL is
//! marked down after its heartbeat TTL and its allocations are replaced on the other client.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::server::wait_for;
use crate::support::{AgentProcess, free_port, raw_exec_client_config, short_ttl_server_config};

const SERVICE_JOB: &str = r#"
job "tutorial-svc" {
  group "web" {
    count = 3
    task "sleeper" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo started $NOMAD_ALLOC_NAME; while :; do sleep 1; done", "MARKER"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"#;

const BATCH_JOB: &str = r#"
job "tutorial-batch" {
  type = "batch"
  group "once" {
    task "echo" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo batch done on $NOMAD_ALLOC_INDEX"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"#;

/// Ends every process whose command line holds the marker.
struct KillTasksOnDrop(String);

impl Drop for KillTasksOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .args(["-f", &self.0])
            .status();
    }
}

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.http.get(format!("{}{path}", self.url)).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .put(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "PUT {path}: {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    /// Parses the HCL on the server and registers the job.
    async fn run_job(&self, hcl: &str, marker: &str) -> anyhow::Result<()> {
        let hcl = hcl.replace("MARKER", marker);
        let job = self
            .put("/v1/jobs/parse", &json!({ "JobHCL": hcl }))
            .await?;
        self.put("/v1/jobs", &json!({ "Job": job })).await?;
        Ok(())
    }

    async fn allocs(&self, job: &str) -> anyhow::Result<Vec<Value>> {
        Ok(serde_json::from_value(
            self.get(&format!("/v1/job/{job}/allocations")).await?,
        )?)
    }
}

fn write_config(dir: &Path, name: &str, text: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_topology_places_jobs_and_replaces_a_lost_client() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Tasks outlive a crashed client (as in Nomad); this marker in their command lines lets the
    // test end them all, whatever happens.
    let marker = format!("caravan-tutorial-{}", std::process::id());
    let _tasks = KillTasksOnDrop(marker.clone());
    let (server_http, server_rpc) = (free_port()?, free_port()?);
    let (client1_http, client2_http) = (free_port()?, free_port()?);
    let server_config = write_config(
        dir.path(),
        "server.hcl",
        &short_ttl_server_config(dir.path(), server_http, server_rpc),
    )?;
    let client1_config = write_config(
        dir.path(),
        "client1.hcl",
        &raw_exec_client_config(dir.path(), "client1", client1_http, server_rpc),
    )?;
    let client2_config = write_config(
        dir.path(),
        "client2.hcl",
        &raw_exec_client_config(dir.path(), "client2", client2_http, server_rpc),
    )?;
    let _server = AgentProcess::start(dir.path(), "server1", &server_config)?;
    let _client1 = AgentProcess::start(dir.path(), "client1", &client1_config)?;
    let mut client2 = AgentProcess::start(dir.path(), "client2", &client2_config)?;

    let server = Api {
        http: reqwest::Client::new(),
        url: format!("http://127.0.0.1:{server_http}"),
    };
    let nodes = wait_for(Duration::from_secs(60), || async {
        let nodes: Vec<Value> = match server.get("/v1/nodes").await {
            Ok(nodes) => serde_json::from_value(nodes)?,
            Err(_) => return Ok(None),
        };
        let ready = nodes
            .iter()
            .filter(|node| node["Status"] == "ready")
            .count();
        Ok((ready == 2).then_some(nodes))
    })
    .await?;
    let client2_id = nodes
        .iter()
        .find(|node| node["Name"] == "client2")
        .and_then(|node| node["ID"].as_str())
        .unwrap_or_default()
        .to_owned();

    // Jobs submitted through a client agent's HTTP port reach the server (forwarded).
    let via_client1 = Api {
        http: reqwest::Client::new(),
        url: format!("http://127.0.0.1:{client1_http}"),
    };
    via_client1.run_job(SERVICE_JOB, &marker).await?;
    via_client1.run_job(BATCH_JOB, &marker).await?;

    let running = wait_for(Duration::from_secs(60), || async {
        let allocs = server.allocs("tutorial-svc").await?;
        let running = allocs
            .iter()
            .filter(|alloc| alloc["ClientStatus"] == "running")
            .count();
        Ok((running == 3).then_some(allocs))
    })
    .await?;
    let mut names: Vec<&str> = running
        .iter()
        .filter_map(|alloc| alloc["Name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "tutorial-svc.web[0]",
            "tutorial-svc.web[1]",
            "tutorial-svc.web[2]"
        ]
    );
    let batch = wait_for(Duration::from_secs(60), || async {
        let allocs = server.allocs("tutorial-batch").await?;
        Ok(allocs
            .into_iter()
            .find(|alloc| alloc["ClientStatus"] == "complete"))
    })
    .await?;
    let events: Vec<&str> = batch["TaskStates"]["echo"]["Events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|event| event["Type"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        events.contains(&"Started") && events.contains(&"Terminated"),
        "{events:?}"
    );

    // A task's log, asked of the server, is forwarded to the client that runs it.
    let alloc = &running[0];
    let alloc_id = alloc["ID"].as_str().unwrap_or_default();
    let log = wait_for(Duration::from_secs(30), || async {
        let response = server
            .http
            .get(format!(
                "{}/v1/client/fs/logs/{alloc_id}?task=sleeper&type=stdout&plain=true",
                server.url
            ))
            .send()
            .await?;
        let text = response.text().await?;
        Ok(text.contains("started").then_some(text))
    })
    .await?;
    assert_eq!(
        log.trim(),
        format!("started {}", alloc["Name"].as_str().unwrap_or_default())
    );

    // The job's status as Nomad derives it.
    let job = server.get("/v1/job/tutorial-svc").await?;
    assert_eq!(job["Status"], "running");
    let summary = server.get("/v1/job/tutorial-svc/summary").await?;
    assert_eq!(summary["Summary"]["web"]["Running"], 3);

    // Job anti-affinity spreads the three allocations over both clients; crash client2.
    let on_client2 = running
        .iter()
        .filter(|alloc| alloc["NodeID"] == client2_id.as_str())
        .count();
    assert!(
        on_client2 >= 1,
        "anti-affinity puts some allocations on client2: {running:?}"
    );
    client2.kill()?;
    let replaced = wait_for(Duration::from_secs(60), || async {
        let node = server.get(&format!("/v1/node/{client2_id}")).await?;
        if node["Status"] != "down" {
            return Ok(None);
        }
        let allocs = server.allocs("tutorial-svc").await?;
        let lost = allocs
            .iter()
            .filter(|alloc| alloc["ClientStatus"] == "lost")
            .count();
        let running_elsewhere = allocs
            .iter()
            .filter(|alloc| {
                alloc["ClientStatus"] == "running" && alloc["NodeID"] != client2_id.as_str()
            })
            .count();
        Ok((lost == on_client2 && running_elsewhere == 3).then_some(allocs))
    })
    .await?;
    assert!(
        replaced
            .iter()
            .filter(|alloc| alloc["DesiredStatus"] == "run")
            .all(|alloc| alloc["NodeID"] != client2_id.as_str()),
        "nothing runs on the down node"
    );
    Ok(())
}
