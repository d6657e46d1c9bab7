//! A cluster of real server processes on loopback ports: their configs, starting and killing
//! them, and waiting for one leader (shared by the HA and keyring tests).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::server::wait_for;
use super::{AgentProcess, free_port};

/// One server process of a test cluster.
pub struct ServerProcess {
    pub name: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub http: u16,
    pub rpc: u16,
    pub process: Option<AgentProcess>,
}

impl ServerProcess {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        self.process = Some(AgentProcess::start(&self.dir, &self.name, &self.config)?);
        Ok(())
    }

    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill()?;
        }
        Ok(())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join(format!("{}-data", self.name))
    }
}

/// Writes the configs of `count` servers that expect each other.
pub fn servers(dir: &Path, count: usize) -> anyhow::Result<Vec<ServerProcess>> {
    servers_expecting(dir, count, "server")
}

/// Writes the configs of `count` servers named `<prefix>N` that expect each other.
pub fn servers_expecting(
    dir: &Path,
    count: usize,
    prefix: &str,
) -> anyhow::Result<Vec<ServerProcess>> {
    servers_with(dir, count, prefix, "")
}

/// Writes the configs of `count` servers named `<prefix>N` that expect each other, each with
/// `extra` appended (a `tls` block, ...).
pub fn servers_with(
    dir: &Path,
    count: usize,
    prefix: &str,
    extra: &str,
) -> anyhow::Result<Vec<ServerProcess>> {
    let ports: Vec<(u16, u16)> = (0..count)
        .map(|_| Ok((free_port()?, free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    let joins: Vec<String> = ports
        .iter()
        .map(|(_, rpc)| format!("\"127.0.0.1:{rpc}\""))
        .collect();
    ports
        .iter()
        .enumerate()
        .map(|(index, &(http, rpc))| {
            let name = format!("{prefix}{}", index + 1);
            let config = dir.join(format!("{name}.hcl"));
            std::fs::write(
                &config,
                format!(
                    r#"
name      = "{name}"
log_level = "DEBUG"
data_dir  = "{data}"
bind_addr = "127.0.0.1"
ports {{
  http = {http}
  rpc  = {rpc}
}}
server {{
  enabled                 = true
  bootstrap_expect        = {count}
  num_schedulers          = 1
  raft_snapshot_threshold = 64
  raft_trailing_logs      = 16
  server_join {{
    retry_join     = [{joins}]
    retry_interval = "100ms"
  }}
}}
{extra}
"#,
                    data = dir.join(format!("{name}-data")).display(),
                    joins = joins.join(", "),
                ),
            )?;
            Ok(ServerProcess {
                name,
                dir: dir.to_owned(),
                config,
                http,
                rpc,
                process: None,
            })
        })
        .collect()
}

pub fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?)
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let response = http.get(url).send().await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "GET {url}: {status}: {text}");
    Ok(serde_json::from_str(&text)?)
}

/// The Raft configuration one server reports, as (ID, address, leader, voter).
pub async fn raft_peers(
    http: &reqwest::Client,
    server: &ServerProcess,
) -> anyhow::Result<Vec<(String, String, bool, bool)>> {
    let configuration = get_json(
        http,
        &format!("{}/v1/operator/raft/configuration", server.url()),
    )
    .await?;
    Ok(configuration["Servers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|peer| {
            (
                peer["ID"].as_str().unwrap_or_default().to_owned(),
                peer["Address"].as_str().unwrap_or_default().to_owned(),
                peer["Leader"].as_bool().unwrap_or(false),
                peer["Voter"].as_bool().unwrap_or(false),
            )
        })
        .collect())
}

/// Waits until every running server names the same leader among `voters` voters, all of them
/// running servers; returns the leader's RPC address.
pub async fn wait_for_cluster(
    http: &reqwest::Client,
    servers: &[ServerProcess],
    voters: usize,
) -> anyhow::Result<String> {
    wait_for(Duration::from_secs(30), || async {
        let mut leaders = BTreeSet::new();
        for server in servers.iter().filter(|server| server.process.is_some()) {
            let Ok(leader) = get_json(http, &format!("{}/v1/status/leader", server.url())).await
            else {
                return Ok(None);
            };
            let Ok(peers) = raft_peers(http, server).await else {
                return Ok(None);
            };
            if peers.iter().filter(|peer| peer.3).count() != voters {
                return Ok(None);
            }
            leaders.insert(leader.as_str().unwrap_or_default().to_owned());
        }
        Ok(match leaders.into_iter().collect::<Vec<_>>().as_slice() {
            [leader] if !leader.is_empty() => Some(leader.clone()),
            _ => None,
        })
    })
    .await
}

pub fn leader_index(servers: &[ServerProcess], leader_rpc: &str) -> anyhow::Result<usize> {
    servers
        .iter()
        .position(|server| leader_rpc.ends_with(&format!(":{}", server.rpc)))
        .ok_or_else(|| anyhow::anyhow!("leader {leader_rpc} is none of the servers"))
}
