//! A `-dev` agent in this test process (server and client, raw_exec enabled) with small JSON
//! helpers, and the CLI run against it off the runtime's workers.

use std::time::Duration;

use caravan::agent::config::AgentConfig;
use caravan::agent::run::{RunningAgent, start_agent};
use serde_json::{Value, json};

use super::server::wait_for;

pub struct Dev {
    pub agent: RunningAgent,
    pub url: String,
    pub http: reqwest::Client,
}

impl Dev {
    /// Starts the agent and waits for its node to be ready with raw_exec healthy.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts the agent with `-dev`'s config changed by `change` (client host volumes...) and
    /// waits for its node to be ready.
    pub async fn start_with(change: impl FnOnce(&mut AgentConfig)) -> anyhow::Result<Self> {
        let mut config = AgentConfig::dev();
        change(&mut config);
        config.ports.http = Some(0);
        config.ports.rpc = Some(0);
        let agent = start_agent(config, true).await?;
        let url = format!("http://{}", agent.http_addr);
        let dev = Self {
            agent,
            url,
            http: reqwest::Client::new(),
        };
        // Ready with raw_exec fingerprinted: on a loaded machine the first fingerprint of a
        // driver can miss its deadline, and a job placed then fails with "missing drivers".
        wait_for(Duration::from_secs(60), || async {
            let nodes = dev.get("/v1/nodes").await?;
            Ok(nodes
                .as_array()
                .is_some_and(|nodes| {
                    nodes.iter().any(|node| {
                        node["Status"] == "ready"
                            && node["Drivers"]["raw_exec"]["Healthy"] == json!(true)
                    })
                })
                .then_some(()))
        })
        .await?;
        Ok(dev)
    }

    /// GETs `path` and decodes the JSON answer, failing on an error status.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.http.get(format!("{}{path}", self.url)).send().await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "GET {path}: {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    /// PUTs `body` to `path`: the status and the answer's text.
    pub async fn put_raw(&self, path: &str, body: &Value) -> anyhow::Result<(u16, String)> {
        let response = self
            .http
            .put(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// PUTs `body` to `path` and decodes the answer, failing on an error status.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let (status, text) = self.put_raw(path, body).await?;
        anyhow::ensure!(status < 300, "PUT {path}: {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    /// The first allocation of job `job_id` once its client status is `status` (polled for 30 s).
    pub async fn first_alloc(&self, job_id: &str, status: &str) -> anyhow::Result<Value> {
        let path = format!("/v1/job/{}/allocations", path_id(job_id));
        wait_for(Duration::from_secs(30), || async {
            let allocs = self.get(&path).await?;
            Ok(allocs
                .as_array()
                .and_then(|allocs| allocs.first())
                .filter(|alloc| alloc["ClientStatus"] == status)
                .cloned())
        })
        .await
    }

    /// The job's deployment of `version` once it has left `running` and `paused` (a later
    /// version's, such as an auto-revert's, may already have followed it); on a timeout the
    /// error shows the latest deployment and the allocations.
    pub async fn deployment_done(&self, job: &str, version: u64) -> anyhow::Result<Value> {
        let done = wait_for(Duration::from_secs(90), || async {
            let deployments = self.get(&format!("/v1/job/{job}/deployments")).await?;
            Ok(deployments.as_array().and_then(|deployments| {
                deployments
                    .iter()
                    .find(|deployment| {
                        deployment["JobVersion"] == version
                            && !matches!(deployment["Status"].as_str(), Some("running" | "paused"))
                    })
                    .cloned()
            }))
        })
        .await;
        match done {
            Ok(deployment) => Ok(deployment),
            Err(err) => {
                let deployment = self.get(&format!("/v1/job/{job}/deployment")).await?;
                let allocs = self.get(&format!("/v1/job/{job}/allocations")).await?;
                Err(err.context(format!(
                    "deployment of {job} version {version} not done: {deployment}; allocations: {allocs}"
                )))
            }
        }
    }

    /// Runs `caravan ARGS -address <this agent>` (the address goes after the subcommand).
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<super::Run> {
        super::caravan_at(&self.url, args).await
    }

    pub async fn shutdown(self) {
        self.agent.shutdown().await;
    }
}

/// A job ID as a path segment (`parent/periodic-1` → `parent%2Fperiodic-1`).
pub fn path_id(job_id: &str) -> String {
    job_id.replace('/', "%2F")
}

/// A register request for a one-group, one-task job running `/bin/sh -c script` with raw_exec,
/// that neither restarts nor reschedules a failed task (callers adjust the JSON they need).
pub fn shell_job(id: &str, job_type: &str, script: &str) -> Value {
    json!({ "Job": {
        "ID": id,
        "Type": job_type,
        "TaskGroups": [{
            "Name": "g",
            "RestartPolicy": { "Attempts": 0, "Mode": "fail" },
            "ReschedulePolicy": { "Attempts": 0, "Unlimited": false },
            "EphemeralDisk": { "SizeMB": 10 },
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sh", "args": ["-c", script] },
                "Resources": { "CPU": 20, "MemoryMB": 16 },
            }],
        }],
    }})
}
