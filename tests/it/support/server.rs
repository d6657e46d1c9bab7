//! An in-process server on loopback port 0, driven over HTTP like any client would.

use std::time::Duration;

use anyhow::Context;
use caravan::agent::start::{RunningServer, ServerOptions, start_server};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A `-dev` server in this process, with an HTTP client pointed at it.
pub struct TestServer {
    pub running: RunningServer,
    pub http: reqwest::Client,
    pub url: String,
}

impl TestServer {
    /// A `-dev` server on free loopback ports with one scheduler worker.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServerOptions)) -> anyhow::Result<Self> {
        let mut options = ServerOptions {
            http_addr: "127.0.0.1:0".parse()?,
            rpc_addr: "127.0.0.1:0".parse()?,
            dev: true,
            num_workers: 1,
            node_name: "test-server".to_owned(),
            ..ServerOptions::default()
        };
        configure(&mut options);
        let running = start_server(options).await?;
        let url = running.http_url();
        let server = Self {
            running,
            http: reqwest::Client::new(),
            url,
        };
        anyhow::ensure!(
            server
                .running
                .server
                .wait_for_leadership(Duration::from_secs(10))
                .await,
            "the test server did not become leader"
        );
        Ok(server)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        self.get_as(path, None).await
    }

    /// GETs `path` with `token` (a node's secret) in `X-Nomad-Token`.
    pub async fn get_as(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<reqwest::Response> {
        with_token(self.http.get(format!("{}{path}", self.url)), token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))
    }

    /// GETs `path`, checks for 200, and returns the body and `X-Nomad-Index`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<(T, u64)> {
        self.get_json_as(path, None).await
    }

    /// As [`TestServer::get_json`], with `token` in `X-Nomad-Token`.
    pub async fn get_json_as<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(T, u64)> {
        let response = self.get_as(path, token).await?;
        let status = response.status();
        // Not every endpoint is a query with an index (`/v1/status/leader` is not).
        let index = index_header(&response).unwrap_or(0);
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "GET {path}: {status}: {text}");
        let body = serde_json::from_str(&text).with_context(|| format!("GET {path}: {text}"))?;
        Ok((body, index))
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<reqwest::Response> {
        self.put_as(path, None, body).await
    }

    /// PUTs `body` to `path` with `token` (a node's secret) in `X-Nomad-Token`.
    pub async fn put_as(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<reqwest::Response> {
        with_token(self.http.put(format!("{}{path}", self.url)), token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("PUT {path}"))
    }

    /// PUTs `body` to `path`, checks for 200 and returns the reply.
    pub async fn put_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.put_json_as(path, None, body).await
    }

    /// As [`TestServer::put_json`], with `token` in `X-Nomad-Token`.
    pub async fn put_json_as(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let response = self.put_as(path, token, body).await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "PUT {path}: {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    /// Registers the simulated node `idx` through the client-facing endpoint.
    pub async fn register_node(&self, idx: usize) -> anyhow::Result<String> {
        let node = mock_node(idx);
        let node_id = node["ID"].as_str().unwrap_or_default().to_owned();
        self.put_json("/v1/internal/node/register", &json!({ "Node": node }))
            .await?;
        Ok(node_id)
    }

    /// Registers a job and waits for its evaluation to finish; returns the evaluation.
    pub async fn run_job(&self, job: Value) -> anyhow::Result<Value> {
        let reply = self.put_json("/v1/jobs", &json!({ "Job": job })).await?;
        let eval_id = reply["EvalID"]
            .as_str()
            .context("register reply has an EvalID")?
            .to_owned();
        self.wait_for_eval(&eval_id).await
    }

    pub async fn wait_for_eval(&self, eval_id: &str) -> anyhow::Result<Value> {
        wait_for(Duration::from_secs(20), || async {
            let (eval, _): (Value, u64) =
                self.get_json(&format!("/v1/evaluation/{eval_id}")).await?;
            Ok(matches!(
                eval["Status"].as_str(),
                Some("complete" | "failed" | "canceled")
            )
            .then_some(eval))
        })
        .await
    }

    pub async fn stop(self) {
        self.running.shutdown().await;
    }
}

fn with_token(request: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(token) => request.header("X-Nomad-Token", token),
        None => request,
    }
}

pub fn index_header(response: &reqwest::Response) -> anyhow::Result<u64> {
    response
        .headers()
        .get("X-Nomad-Index")
        .context("missing X-Nomad-Index")?
        .to_str()?
        .parse()
        .context("X-Nomad-Index is a number")
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The secret `mock_node(idx)` registers with: its proof of identity on every later call.
pub fn mock_node_secret(idx: usize) -> String {
    format!("secret-{idx}")
}

/// A ready client node with 4000 MHz, 8192 MB and the raw_exec and wasm drivers.
pub fn mock_node(idx: usize) -> Value {
    json!({
        "ID": format!("00000000-0000-4000-8000-{idx:012}"),
        "SecretID": mock_node_secret(idx),
        "Name": format!("node-{idx}"),
        "Datacenter": "dc1",
        "HTTPAddr": format!("10.0.0.{}:4646", idx % 250 + 1),
        "Status": "ready",
        "Attributes": { "kernel.name": "linux", "unique.network.ip-address": format!("10.0.0.{}", idx % 250 + 1) },
        "Drivers": {
            "raw_exec": { "Detected": true, "Healthy": true },
            "wasm": { "Detected": true, "Healthy": true },
        },
        "NodeResources": {
            "Cpu": { "CpuShares": 4000, "TotalCpuCores": 4 },
            "Memory": { "MemoryMB": 8192 },
            "Disk": { "DiskMB": 102400 },
            "MinDynamicPort": 20000,
            "MaxDynamicPort": 32000,
        },
    })
}

/// A service job with one group `cache` of `count` raw_exec tasks.
pub fn service_job(id: &str, count: u32) -> Value {
    json!({
        "ID": id,
        "Name": id,
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [{
            "Name": "cache",
            "Count": count,
            "Tasks": [{
                "Name": "redis",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sleep", "args": ["1000"] },
                "Resources": { "CPU": 500, "MemoryMB": 256 },
            }],
        }],
    })
}
