//! Variables on a real agent (server and client in one process, a data dir on disk): `var put`
//! writes `nomad/jobs/web` in `default`; the template of job `web` reads it through `nomadVar`
//! (its workload's implicit path); job `web` in another namespace and job `api` in `default`
//! cannot (their task events say why); the value is nowhere in plain text in the server's data
//! dir (Raft log, snapshots, key store); `var get`, `list`, `purge` and check-and-set answer as
//! Nomad's.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::server::wait_for;
use crate::support::{AgentProcess, Run, caravan, free_port};

struct Agent {
    http: reqwest::Client,
    url: String,
}

impl Agent {
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "{status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.url)))
            .await
    }

    async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.put(format!("{}{path}", self.url)).json(body))
            .await
    }

    /// The allocations of job `id` in `namespace` once one satisfies `done`.
    async fn alloc_where(
        &self,
        namespace: &str,
        id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let path = format!("/v1/job/{id}/allocations?namespace={namespace}");
        wait_for(Duration::from_secs(60), || async {
            let allocs = self.get(&path).await?;
            Ok(allocs
                .as_array()
                .and_then(|allocs| allocs.iter().find(|alloc| done(alloc)).cloned()))
        })
        .await
    }
}

/// A job `id` whose task renders `nomadVar "nomad/jobs/web"`'s `k` into `local/out` and sleeps.
fn reader_job(namespace: &str, id: &str) -> Value {
    json!({ "Job": {
        "ID": id,
        "Namespace": namespace,
        "TaskGroups": [{
            "Name": "g",
            "Count": 1,
            "EphemeralDisk": { "SizeMB": 10 },
            "RestartPolicy": { "Attempts": 0, "Mode": "fail" },
            "ReschedulePolicy": { "Attempts": 0, "Unlimited": false },
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sh", "args": ["-c", "exec sleep 120"] },
                "Resources": { "CPU": 20, "MemoryMB": 32 },
                "Templates": [{
                    "EmbeddedTmpl": "{{ with nomadVar \"nomad/jobs/web\" }}{{ .k }}{{ end }}",
                    "DestPath": "local/out",
                }],
            }],
        }],
    }})
}

/// Every file under `dir`, with its bytes; a zstd stream after caravan's 10-byte header
/// (snapshots) also decompressed.
fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files_under(&path, out)?;
            continue;
        }
        let bytes = std::fs::read(&path)?;
        if bytes.starts_with(b"\x89caravan")
            && let Ok(plain) = zstd::stream::decode_all(&bytes[10..])
        {
            out.push((format!("{} (decompressed)", path.display()), plain));
        }
        out.push((path.display().to_string(), bytes));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variable_is_read_only_by_its_jobs_templates_and_never_stored_in_plain_text()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (http_port, rpc_port) = (free_port()?, free_port()?);
    let data_dir = dir.path().join("agent");
    let config = dir.path().join("agent.hcl");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir  = "{data}"
name      = "vars"
bind_addr = "127.0.0.1"
server {{
  enabled                 = true
  bootstrap_expect        = 1
  raft_snapshot_threshold = 8
}}
client {{
  enabled = true
  servers = ["127.0.0.1:{rpc_port}"]
}}
plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}
ports {{
  http = {http_port}
  rpc  = {rpc_port}
}}
"#,
            data = data_dir.display()
        ),
    )?;
    let _agent_process = AgentProcess::start(dir.path(), "agent", &config)?;
    let agent = Agent {
        http: reqwest::Client::new(),
        url: format!("http://127.0.0.1:{http_port}"),
    };
    wait_for(Duration::from_secs(60), || async {
        let Ok(nodes) = agent.get("/v1/nodes").await else {
            return Ok(None);
        };
        Ok(nodes
            .as_array()
            .is_some_and(|nodes| nodes.iter().any(|node| node["Status"] == "ready"))
            .then_some(()))
    })
    .await?;
    let cli = |args: &[&str]| -> anyhow::Result<Run> {
        let mut all = args.to_vec();
        let position = all.len().min(2);
        all.splice(position..position, ["-address", agent.url.as_str()]);
        caravan(dir.path(), &all)
    };

    let secret = format!("plain-secret-{}", std::process::id());
    let put = cli(&[
        "var",
        "put",
        "-out",
        "none",
        "nomad/jobs/web",
        &format!("k={secret}"),
    ])?;
    assert_eq!(put.code, Some(0), "{put:?}");
    assert!(
        put.stdout
            .starts_with("Created variable \"nomad/jobs/web\" with modify index "),
        "{put:?}"
    );
    let item = cli(&["var", "get", "-item", "k", "nomad/jobs/web"])?;
    assert_eq!(item.stdout.trim(), secret, "{item:?}");
    let listed = cli(&["var", "list", "nomad/"])?;
    assert!(
        listed.stdout.contains("default    nomad/jobs/web"),
        "{listed:?}"
    );
    // Check-and-set: 0 means "only a new one", and this one exists.
    let conflict = cli(&[
        "var",
        "put",
        "-check-index",
        "0",
        "nomad/jobs/web",
        "k=other",
    ])?;
    assert_eq!(conflict.code, Some(1), "{conflict:?}");
    assert!(
        conflict.stderr.contains("Check-and-Set conflict"),
        "{conflict:?}"
    );

    // The job's template renders the value.
    agent.put("/v1/jobs", &reader_job("default", "web")).await?;
    let alloc = agent
        .alloc_where("default", "web", |alloc| alloc["ClientStatus"] == "running")
        .await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default().to_owned();
    let rendered = agent
        .http
        .get(format!(
            "{}/v1/client/fs/cat/{alloc_id}?path=t/local/out",
            agent.url
        ))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(rendered, secret);

    // Job web in another namespace reads its own namespace (no such variable there); job api in
    // default is refused the path of job web. Their task events say so.
    let namespace = cli(&["namespace", "apply", "-description", "elsewhere", "other"])?;
    assert_eq!(namespace.code, Some(0), "{namespace:?}");
    agent.put("/v1/jobs", &reader_job("other", "web")).await?;
    agent.put("/v1/jobs", &reader_job("default", "api")).await?;
    for (namespace, job, reason) in [
        ("other", "web", "variable \\\"nomad/jobs/web\\\" not found"),
        ("default", "api", "Permission denied"),
    ] {
        let alloc = agent
            .alloc_where(namespace, job, |alloc| {
                alloc["TaskStates"].to_string().contains(reason)
            })
            .await?;
        assert_ne!(alloc["ClientStatus"], "running", "{namespace}/{job}");
        let output = agent
            .http
            .get(format!(
                "{}/v1/client/fs/cat/{}?path=t/local/out",
                agent.url,
                alloc["ID"].as_str().unwrap_or_default()
            ))
            .send()
            .await?;
        assert!(!output.status().is_success(), "{namespace}/{job} rendered");
    }

    // Enough writes for a Raft snapshot; then nothing under the server's data dir holds the
    // value in plain text.
    for round in 0..10 {
        cli(&["var", "put", &format!("filler/{round}"), "x=y"])?;
    }
    let server_dir = data_dir.join("server");
    wait_for(Duration::from_secs(30), || async {
        let mut files = Vec::new();
        files_under(&server_dir, &mut files)?;
        Ok(files
            .iter()
            .any(|(name, _)| name.contains("snapshot") && name.contains("decompressed"))
            .then_some(()))
    })
    .await?;
    let mut files = Vec::new();
    files_under(&server_dir, &mut files)?;
    assert!(
        files.iter().any(|(name, _)| name.contains("keystore")),
        "a key store: {:?}",
        files.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    for (name, bytes) in &files {
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "{name} holds the value in plain text"
        );
    }

    // Purged, it is gone; the jobs stop before the agent does.
    let purged = cli(&["var", "purge", "nomad/jobs/web"])?;
    assert_eq!(
        purged.stdout.trim(),
        "Successfully purged variable \"nomad/jobs/web\"!",
        "{purged:?}"
    );
    let gone = cli(&["var", "get", "nomad/jobs/web"])?;
    assert_eq!(gone.code, Some(1), "{gone:?}");
    for (namespace, job) in [("default", "web"), ("other", "web"), ("default", "api")] {
        agent
            .send(
                agent
                    .http
                    .delete(format!("{}/v1/job/{job}?namespace={namespace}", agent.url)),
            )
            .await?;
    }
    agent
        .alloc_where("default", "web", |alloc| {
            alloc["ClientStatus"] != "running" && alloc["ClientStatus"] != "pending"
        })
        .await?;
    Ok(())
}
