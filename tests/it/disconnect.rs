//! A disconnected client, as separate processes: one server (short heartbeat TTL) and two
//! clients. The job's group has `disconnect { lost_after }`. The client running the allocation is
//! frozen with SIGSTOP: the servers mark its node `disconnected` and the allocation `unknown`,
//! and place a replacement on the other client. Thawed with SIGCONT, the client heartbeats
//! again: its allocation is `running` again with the same task process (same pid, no restart)
//! and the replacement is stopped.

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
    format!(
        r#"job "keep" {{
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_keeps_its_task_and_the_replacement_stops() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cleanup = Cleanup {
        marker: format!("caravan-disconnect-{}", std::process::id()),
        frozen: None,
    };
    let (server_http, server_rpc) = (free_port()?, free_port()?);
    let server_config = write(
        dir.path(),
        "server.hcl",
        &short_ttl_server_config(dir.path(), server_http, server_rpc),
    )?;
    let _server = AgentProcess::start(dir.path(), "server1", &server_config)?;
    let mut clients = Vec::new();
    for name in ["client1", "client2"] {
        let config = write(
            dir.path(),
            &format!("{name}.hcl"),
            &raw_exec_client_config(dir.path(), name, free_port()?, server_rpc),
        )?;
        clients.push(AgentProcess::start(dir.path(), name, &config)?);
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
        Ok((ready == 2).then_some(nodes))
    })
    .await?;

    let job_file = write(dir.path(), "keep.nomad.hcl", &job(&cleanup.marker))?;
    let run = caravan_async(
        dir.path(),
        &[
            "job",
            "run",
            "-detach",
            "-address",
            &url,
            &job_file.to_string_lossy(),
        ],
    )
    .await?;
    anyhow::ensure!(run.code == Some(0), "{run:?}");
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
    wait_for(WITHIN, || async {
        let node = get(&url, &format!("/v1/node/{node_id}")).await?;
        Ok((node["Status"] == "disconnected").then_some(()))
    })
    .await?;
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
    let alloc = get(&url, &format!("/v1/allocation/{original}")).await?;
    assert_eq!(alloc["TaskStates"]["t"]["Restarts"], 0, "{alloc:#}");
    let events = alloc["TaskStates"]["t"]["Events"].to_string();
    assert!(!events.contains("Restarting"), "{events}");
    Ok(())
}
