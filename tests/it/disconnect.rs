//! A disconnected client, as separate processes: one server (short heartbeat TTL) and two
//! clients. The job's group has `disconnect { lost_after }`. The client running the allocation is
//! frozen with SIGSTOP: the servers mark its node `disconnected` and the allocation `unknown`,
//! and place a replacement on the other client. Thawed with SIGCONT, the client heartbeats
//! again: its allocation is `running` again with the same task process (same pid, no restart)
//! and the replacement is stopped. A system job's allocation on the frozen client becomes
//! `unknown` too, is not stopped, and runs on with the same pid once the client is back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::server::wait_for;
use crate::support::{
    AgentProcess, caravan_async, free_port, raw_exec_client_config, short_ttl_server_config,
};

const WITHIN: Duration = Duration::from_secs(60);

/// Ends every process whose command line holds the marker, and thaws a frozen agent.
struct Cleanup {
    marker: String,
    frozen: Option<i32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.frozen {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
        let _ = std::process::Command::new("pkill")
            .args(["-f", &self.marker])
            .status();
    }
}

fn job(marker: &str) -> String {
    job_of_type(marker, "service")
}

fn job_of_type(marker: &str, job_type: &str) -> String {
    format!(
        r#"job "keep" {{
  type = "{job_type}"
  group "g" {{
    disconnect {{
      lost_after = "5m"
    }}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo $$ > $NOMAD_ALLOC_DIR/pid; while :; do sleep 1; done", "{marker}"]
      }}
      resources {{
        cpu    = 50
        memory = 32
      }}
    }}
  }}
}}
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

async fn get(url: &str, path: &str) -> anyhow::Result<Value> {
    Ok(reqwest::get(format!("{url}{path}"))
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The job's allocations once `check` accepts them.
async fn allocs_when(
    url: &str,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let found = wait_for(WITHIN, || async {
        let allocs = get(url, "/v1/job/keep/allocations").await?;
        let allocs = allocs.as_array().cloned().unwrap_or_default();
        Ok(check(&allocs).then_some(allocs))
    })
    .await;
    match found {
        Ok(allocs) => Ok(allocs),
        Err(err) => {
            let allocs = get(url, "/v1/job/keep/allocations").await?;
            Err(err.context(format!("{what}: allocations {allocs:#}")))
        }
    }
}

fn pid_of(client_dir: &Path, alloc_id: &str) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(client_dir.join("alloc").join(alloc_id).join("alloc/pid"))?;
    Ok(text.trim().parse()?)
}

/// A server with a short heartbeat TTL and the named raw_exec clients, all ready: the agents,
/// the server's URL and the nodes.
async fn cluster(
    dir: &Path,
    client_names: &[&str],
) -> anyhow::Result<(AgentProcess, Vec<AgentProcess>, String, Vec<Value>)> {
    let (server_http, server_rpc) = (free_port()?, free_port()?);
    let server_config = write(
        dir,
        "server.hcl",
        &short_ttl_server_config(dir, server_http, server_rpc),
    )?;
    let server = AgentProcess::start(dir, "server1", &server_config)?;
    let mut clients = Vec::new();
    for name in client_names {
        let config = write(
            dir,
            &format!("{name}.hcl"),
            &raw_exec_client_config(dir, name, free_port()?, server_rpc),
        )?;
        clients.push(AgentProcess::start(dir, name, &config)?);
    }
    let url = format!("http://127.0.0.1:{server_http}");
    let nodes = wait_for(WITHIN, || async {
        let Ok(nodes) = get(&url, "/v1/nodes").await else {
            return Ok(None);
        };
        let nodes = nodes.as_array().cloned().unwrap_or_default();
        let ready = nodes
            .iter()
            .filter(|node| node["Status"] == "ready")
            .count();
        Ok((ready == client_names.len()).then_some(nodes))
    })
    .await?;
    Ok((server, clients, url, nodes))
}

/// Runs `text` as a job file through the CLI, detached.
async fn run_job(dir: &Path, url: &str, text: &str) -> anyhow::Result<()> {
    let job_file = write(dir, "keep.nomad.hcl", text)?;
    let run = caravan_async(
        dir,
        &[
            "job",
            "run",
            "-detach",
            "-address",
            url,
            &job_file.to_string_lossy(),
        ],
    )
    .await?;
    anyhow::ensure!(run.code == Some(0), "{run:?}");
    Ok(())
}

/// Waits until the node is `status`.
async fn node_becomes(url: &str, node_id: &str, status: &str) -> anyhow::Result<()> {
    wait_for(WITHIN, || async {
        let node = get(url, &format!("/v1/node/{node_id}")).await?;
        Ok((node["Status"] == status).then_some(()))
    })
    .await
}

/// The task of `alloc_id` ran on without a restart.
async fn never_restarted(url: &str, alloc_id: &str) -> anyhow::Result<()> {
    let alloc = get(url, &format!("/v1/allocation/{alloc_id}")).await?;
    assert_eq!(alloc["TaskStates"]["t"]["Restarts"], 0, "{alloc:#}");
    let events = alloc["TaskStates"]["t"]["Events"].to_string();
    assert!(!events.contains("Restarting"), "{events}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_keeps_its_task_and_the_replacement_stops() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cleanup = Cleanup {
        marker: format!("caravan-disconnect-{}", std::process::id()),
        frozen: None,
    };
    let (_server, clients, url, nodes) = cluster(dir.path(), &["client1", "client2"]).await?;
    run_job(dir.path(), &url, &job(&cleanup.marker)).await?;
    let allocs = allocs_when(&url, "running", |allocs| {
        allocs.len() == 1 && allocs[0]["ClientStatus"] == "running"
    })
    .await?;
    let original = allocs[0]["ID"].as_str().unwrap_or_default().to_owned();
    let node_id = allocs[0]["NodeID"].as_str().unwrap_or_default().to_owned();
    let node_name = nodes
        .iter()
        .find(|node| node["ID"] == node_id.as_str())
        .and_then(|node| node["Name"].as_str())
        .unwrap_or_default()
        .to_owned();
    let index = if node_name == "client1" { 0 } else { 1 };
    let client_dir = dir.path().join(&node_name);
    let pid = wait_for(WITHIN, || async { Ok(pid_of(&client_dir, &original).ok()) }).await?;

    // Frozen: no heartbeat. The node becomes disconnected, the allocation unknown, and a
    // replacement runs on the other client.
    let agent_pid = i32::try_from(clients[index].child.id())?;
    kill(Pid::from_raw(agent_pid), Signal::SIGSTOP)?;
    cleanup.frozen = Some(agent_pid);
    node_becomes(&url, &node_id, "disconnected").await?;
    let allocs = allocs_when(&url, "unknown and replaced", |allocs| {
        let unknown = allocs
            .iter()
            .any(|alloc| alloc["ID"] == original.as_str() && alloc["ClientStatus"] == "unknown");
        let replaced = allocs.iter().any(|alloc| {
            alloc["ID"] != original.as_str()
                && alloc["ClientStatus"] == "running"
                && alloc["NodeID"] != node_id.as_str()
        });
        unknown && replaced
    })
    .await?;
    let replacement = allocs
        .iter()
        .find(|alloc| alloc["ID"] != original.as_str())
        .and_then(|alloc| alloc["ID"].as_str())
        .unwrap_or_default()
        .to_owned();

    // Thawed: the client reports its allocation running again; the replacement gives way.
    kill(Pid::from_raw(agent_pid), Signal::SIGCONT)?;
    cleanup.frozen = None;
    allocs_when(&url, "reconnected", |allocs| {
        let back = allocs.iter().any(|alloc| {
            alloc["ID"] == original.as_str()
                && alloc["ClientStatus"] == "running"
                && alloc["DesiredStatus"] == "run"
        });
        let stopped = allocs
            .iter()
            .any(|alloc| alloc["ID"] == replacement.as_str() && alloc["DesiredStatus"] == "stop");
        back && stopped
    })
    .await?;
    let node = get(&url, &format!("/v1/node/{node_id}")).await?;
    assert_eq!(node["Status"], "ready");
    // The same process, never restarted.
    assert_eq!(pid_of(&client_dir, &original)?, pid);
    assert!(
        kill(Pid::from_raw(pid), None).is_ok(),
        "the task's process {pid} is gone"
    );
    never_restarted(&url, &original).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_jobs_allocation_is_unknown_while_its_client_is_away_and_resumes()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cleanup = Cleanup {
        marker: format!("caravan-disconnect-system-{}", std::process::id()),
        frozen: None,
    };
    let (_server, clients, url, _nodes) = cluster(dir.path(), &["client1"]).await?;
    run_job(dir.path(), &url, &job_of_type(&cleanup.marker, "system")).await?;
    let allocs = allocs_when(&url, "running", |allocs| {
        allocs.len() == 1 && allocs[0]["ClientStatus"] == "running"
    })
    .await?;
    let alloc_id = allocs[0]["ID"].as_str().unwrap_or_default().to_owned();
    let node_id = allocs[0]["NodeID"].as_str().unwrap_or_default().to_owned();
    let client_dir = dir.path().join("client1");
    let pid = wait_for(WITHIN, || async { Ok(pid_of(&client_dir, &alloc_id).ok()) }).await?;

    let agent_pid = i32::try_from(clients[0].child.id())?;
    kill(Pid::from_raw(agent_pid), Signal::SIGSTOP)?;
    cleanup.frozen = Some(agent_pid);
    node_becomes(&url, &node_id, "disconnected").await?;
    allocs_when(&url, "unknown, still desired to run", |allocs| {
        allocs.len() == 1
            && allocs[0]["ClientStatus"] == "unknown"
            && allocs[0]["DesiredStatus"] == "run"
    })
    .await?;

    kill(Pid::from_raw(agent_pid), Signal::SIGCONT)?;
    cleanup.frozen = None;
    allocs_when(&url, "running again", |allocs| {
        allocs.len() == 1
            && allocs[0]["ID"] == alloc_id.as_str()
            && allocs[0]["ClientStatus"] == "running"
            && allocs[0]["DesiredStatus"] == "run"
    })
    .await?;
    node_becomes(&url, &node_id, "ready").await?;
    assert_eq!(pid_of(&client_dir, &alloc_id)?, pid);
    assert!(
        kill(Pid::from_raw(pid), None).is_ok(),
        "the task's process {pid} is gone"
    );
    never_restarted(&url, &alloc_id).await
}
