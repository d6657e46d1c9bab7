//! Several servers as one cluster (issue #20): real `caravan agent` processes on loopback ports.
//!
//! - Three servers started in any order bootstrap one cluster; jobs registered in parallel through
//!   all three while the leader is SIGKILLed are all there afterwards on every server, placed; a
//!   client that knew only one server keeps its task running and its node never goes down; the
//!   killed server rejoins; all three restarted have the state back; a wiped server rejoins under
//!   a new ID and catches up by snapshot (Raft paper §7).
//! - `operator snapshot save` on that cluster and `restore` onto a new single server: the same
//!   jobs and allocations.
//! - Five servers: losing two keeps writes working; losing three makes writes fail with Nomad's
//!   "No cluster leader" within the request timeout; one coming back makes them work again.
//!
//! `CARAVAN_HA_JOBS` sets how many jobs the first test registers (default 200).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::support::cluster::{
    ServerProcess, get_json, http, leader_index, raft_peers, servers, servers_expecting,
    wait_for_cluster,
};
use crate::support::server::wait_for;
use crate::support::{AgentProcess, caravan, free_port};

/// A batch job placed on the fake node of datacenter `dc2`, never run.
fn parked_job(id: &str) -> Value {
    json!({
        "ID": id,
        "Name": id,
        "Type": "batch",
        "Datacenters": ["dc2"],
        "TaskGroups": [{
            "Name": "g",
            "Count": 1,
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/true" },
                "Resources": { "CPU": 10, "MemoryMB": 10 },
            }],
        }],
    })
}

async fn register(http: &reqwest::Client, url: &str, job: &Value) -> anyhow::Result<()> {
    let response = http
        .put(format!("{url}/v1/jobs"))
        .json(&json!({ "Job": job }))
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "{status}: {text}");
    Ok(())
}

/// The job IDs a server holds, read from its own state.
async fn job_ids(
    http: &reqwest::Client,
    server: &ServerProcess,
) -> anyhow::Result<BTreeSet<String>> {
    let jobs = get_json(http, &format!("{}/v1/jobs?stale", server.url())).await?;
    Ok(jobs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|job| job["ID"].as_str().map(str::to_owned))
        .collect())
}

/// Waits until every running server holds every job of `expected`.
async fn wait_for_jobs_everywhere(
    http: &reqwest::Client,
    servers: &[ServerProcess],
    expected: &BTreeSet<String>,
) -> anyhow::Result<()> {
    for server in servers.iter().filter(|server| server.process.is_some()) {
        let result = wait_for(Duration::from_secs(30), || async {
            let held = job_ids(http, server).await.unwrap_or_default();
            Ok(expected.is_subset(&held).then_some(()))
        })
        .await
        .map_err(|error| {
            let server_name = &server.name;
            anyhow::anyhow!("{server_name} lacks jobs: {error}")
        });
        if let Err(error) = result {
            let held = job_ids(http, server).await.unwrap_or_default();
            let missing: Vec<&String> = expected.difference(&held).collect();
            anyhow::bail!("{error}: {missing:?}");
        }
    }
    Ok(())
}

fn client_config(dir: &Path, http: u16, server_rpc: u16) -> anyhow::Result<PathBuf> {
    let path = dir.join("client.hcl");
    std::fs::write(
        &path,
        format!(
            r#"
name      = "client1"
log_level = "DEBUG"
data_dir  = "{data}"
bind_addr = "127.0.0.1"
ports {{
  http = {http}
}}
client {{
  enabled = true
  servers = ["127.0.0.1:{server_rpc}"]
}}
plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}
"#,
            data = dir.join("client-data").display()
        ),
    )?;
    Ok(path)
}

/// Runs a scenario in a temp dir; when it fails, prints the end of every agent's log.
async fn with_logs<F, Fut>(scenario: F) -> anyhow::Result<()>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let dir = tempfile::tempdir()?;
    let result = scenario(dir.path().to_owned()).await;
    if result.is_err() {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.path())?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        logs.sort();
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|line| !line.contains("DEBUG"))
                .collect();
            eprintln!("==> {}", log.display());
            let all: Vec<&str> = text.lines().collect();
            for (at, line) in all.iter().enumerate() {
                if line.contains("panicked at") {
                    eprintln!("{}", all[at..all.len().min(at + 3)].join("\n"));
                }
            }
            for line in &lines[lines.len().saturating_sub(30)..] {
                eprintln!("{line}");
            }
        }
    }
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_survive_a_leader_kill_a_full_restart_and_a_wiped_server()
-> anyhow::Result<()> {
    with_logs(three_servers).await
}

async fn three_servers(dir: PathBuf) -> anyhow::Result<()> {
    let dir = dir.as_path();
    let http = http()?;
    let mut servers = servers(dir, 3)?;
    // Any start order.
    for index in [2, 0, 1] {
        servers[index].start()?;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let leader = wait_for_cluster(&http, &servers, 3)
        .await
        .context("three servers formed a cluster")?;

    // A client that knows only the first server; its task must run through the failover.
    let client_http = free_port()?;
    let client_config = client_config(dir, client_http, servers[0].rpc)?;
    let _client = AgentProcess::start(dir, "client", &client_config)?;
    let keeper = json!({
        "ID": "keeper",
        "Name": "keeper",
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [{
            "Name": "g",
            "Count": 1,
            // Small, so a nearly full disk on the test machine still fits it.
            "EphemeralDisk": { "SizeMB": 10 },
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sleep", "args": ["120"] },
                "Resources": { "CPU": 10, "MemoryMB": 10 },
            }],
        }],
    });
    let follower = (leader_index(&servers, &leader)? + 1) % 3;
    register(&http, &servers[follower].url(), &keeper).await?;
    let (keeper_alloc, node_id) = wait_for(Duration::from_secs(60), || async {
        let allocs = get_json(
            &http,
            &format!("{}/v1/job/keeper/allocations", servers[follower].url()),
        )
        .await?;
        Ok(allocs.as_array().and_then(|allocs| {
            allocs
                .iter()
                .find(|alloc| alloc["ClientStatus"] == "running")
                .map(|alloc| {
                    (
                        alloc["ID"].as_str().unwrap_or_default().to_owned(),
                        alloc["NodeID"].as_str().unwrap_or_default().to_owned(),
                    )
                })
        }))
    })
    .await
    .context("the client runs the keeper job")?;

    // A node of datacenter dc2 that never runs anything, heartbeating through every server in
    // turn, so the parked jobs are placed without running a process each.
    let fake_node = crate::support::server::mock_node(77);
    let mut fake_node_body = fake_node.clone();
    fake_node_body["Datacenter"] = json!("dc2");
    let fake_id = fake_node["ID"].as_str().unwrap_or_default().to_owned();
    let urls: Vec<String> = servers.iter().map(ServerProcess::url).collect();
    http.put(format!("{}/v1/internal/node/register", urls[follower]))
        .json(&json!({ "Node": fake_node_body }))
        .send()
        .await?
        .error_for_status()?;
    let stop = Arc::new(AtomicBool::new(false));
    let fake_heartbeats = tokio::spawn({
        let (http, urls, stop, fake_id) =
            (http.clone(), urls.clone(), stop.clone(), fake_id.clone());
        async move {
            let mut turn = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let url = format!(
                    "{}/v1/internal/node/{fake_id}/heartbeat",
                    urls[turn % urls.len()]
                );
                let _ = http
                    .put(url)
                    .json(&json!({ "SecretID": "secret-77" }))
                    .send()
                    .await;
                turn += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    // Watches the client's node as every server sees it: it must never be down.
    let saw_down = Arc::new(AtomicBool::new(false));
    let node_watch = tokio::spawn({
        let (http, urls, stop, saw_down, node_id) = (
            http.clone(),
            urls.clone(),
            stop.clone(),
            saw_down.clone(),
            node_id.clone(),
        );
        async move {
            while !stop.load(Ordering::Relaxed) {
                for url in &urls {
                    if let Ok(node) =
                        get_json(&http, &format!("{url}/v1/node/{node_id}?stale")).await
                        && node["Status"] == "down"
                    {
                        saw_down.store(true, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // Many registrations in parallel through all three servers; the leader is killed a third of
    // the way in.
    let count: usize = std::env::var("CARAVAN_HA_JOBS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(200);
    let registrations: Vec<_> = (0..count)
        .map(|index| {
            let (http, url) = (http.clone(), urls[index % 3].clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10 * index as u64)).await;
                let id = format!("parked-{index}");
                register(&http, &url, &parked_job(&id))
                    .await
                    .ok()
                    .map(|()| id)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10 * count as u64 / 3)).await;
    let killed = leader_index(&servers, &leader)?;
    servers[killed].kill()?;
    let killed_at = Instant::now();
    let survivor = servers
        .iter()
        .find(|server| server.process.is_some())
        .map(ServerProcess::url)
        .unwrap_or_default();
    wait_for(Duration::from_secs(20), || async {
        Ok(register(&http, &survivor, &parked_job("probe")).await.ok())
    })
    .await
    .context("a write accepted after the leader was killed")?;
    let failover = killed_at.elapsed();
    let mut acknowledged = BTreeSet::new();
    for registration in registrations {
        if let Some(id) = registration.await? {
            acknowledged.insert(id);
        }
    }
    println!(
        "ha: {} of {count} registrations acknowledged; failover (kill to a write accepted) {failover:?}",
        acknowledged.len()
    );
    // Those sent to the killed server fail, and so may those in flight to it as it died.
    assert!(
        acknowledged.len() >= count / 4,
        "registrations succeed around the failover: {}",
        acknowledged.len()
    );
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );
    let new_leader = wait_for_cluster(&http, &servers, 3)
        .await
        .or_else(|_| anyhow::Ok(String::new()))?;
    assert_ne!(new_leader, leader, "a new leader was elected");

    wait_for_jobs_everywhere(&http, &servers, &acknowledged).await?;
    // Every acknowledged job is placed.
    wait_for(Duration::from_secs(60), || async {
        let allocs = get_json(&http, &format!("{survivor}/v1/allocations?stale")).await?;
        let placed: BTreeSet<String> = allocs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|alloc| alloc["NodeID"] == fake_id.as_str())
            .filter_map(|alloc| alloc["JobID"].as_str().map(str::to_owned))
            .collect();
        Ok(acknowledged.is_subset(&placed).then_some(()))
    })
    .await
    .context("every acknowledged job placed")?;
    // The client's task kept running in the same allocation.
    let keeper_allocs = get_json(&http, &format!("{survivor}/v1/job/keeper/allocations")).await?;
    let running: Vec<&str> = keeper_allocs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|alloc| alloc["ClientStatus"] == "running")
        .filter_map(|alloc| alloc["ID"].as_str())
        .collect();
    assert_eq!(running, vec![keeper_alloc.as_str()]);

    // The killed server comes back on its data dir and catches up.
    servers[killed].start()?;
    wait_for_cluster(&http, &servers, 3)
        .await
        .context("the killed server rejoined")?;
    wait_for_jobs_everywhere(&http, &servers, &acknowledged).await?;
    stop.store(true, Ordering::Relaxed);
    node_watch.await?;
    fake_heartbeats.await?;
    assert!(
        !saw_down.load(Ordering::Relaxed),
        "the client's node was marked down during the failover"
    );

    // All three stopped and started again: the state is back.
    for server in &mut servers {
        server.kill()?;
    }
    for server in &mut servers {
        server.start()?;
    }
    wait_for_cluster(&http, &servers, 3)
        .await
        .context("the restarted servers formed the cluster again")?;
    wait_for_jobs_everywhere(&http, &servers, &acknowledged).await?;

    // A server with a wiped data dir rejoins under a new ID and catches up by snapshot.
    let wiped = 1;
    let old_peers = raft_peers(&http, &servers[0]).await?;
    servers[wiped].kill()?;
    std::fs::remove_dir_all(servers[wiped].data_dir())?;
    servers[wiped].start()?;
    let wiped_addr = format!("127.0.0.1:{}", servers[wiped].rpc);
    let id_at = |peers: &[(String, String, bool, bool)]| {
        peers
            .iter()
            .find(|peer| peer.1 == wiped_addr && peer.3)
            .map(|peer| peer.0.clone())
    };
    let old_id = id_at(&old_peers).context("the server was a voter")?;
    wait_for(Duration::from_secs(30), || async {
        let peers = raft_peers(&http, &servers[0]).await.unwrap_or_default();
        let replaced = peers.len() == 3 && id_at(&peers).is_some_and(|id| id != old_id);
        Ok(replaced.then_some(()))
    })
    .await
    .context("the wiped server rejoined under a new ID, replacing the old one")?;
    wait_for_cluster(&http, &servers, 3)
        .await
        .context("the cluster agrees again")?;
    wait_for_jobs_everywhere(&http, &servers, &acknowledged).await?;
    let info = get_json(&http, &format!("{}/v1/agent/self", servers[wiped].url())).await?;
    let snapshot_index: u64 = info["stats"]["raft"]["snapshot_index"]
        .as_str()
        .unwrap_or("0")
        .parse()?;
    assert!(snapshot_index > 0, "the wiped server was sent a snapshot");

    // `operator snapshot save` through a follower, `restore` onto a new single server: the
    // same jobs and allocations.
    let snapshot_file = dir.join("cluster.snap");
    let saved = caravan(
        dir,
        &[
            "operator",
            "snapshot",
            "save",
            "-address",
            &servers[wiped].url(),
            &snapshot_file.display().to_string(),
        ],
    )?;
    assert_eq!(saved.code, Some(0), "{saved:?}");
    let inspected = caravan(
        dir,
        &[
            "operator",
            "snapshot",
            "inspect",
            &snapshot_file.display().to_string(),
        ],
    )?;
    assert_eq!(inspected.code, Some(0), "{inspected:?}");
    let cluster_jobs = job_ids(&http, &servers[0]).await?;
    let cluster_allocs = alloc_ids(&http, &servers[0].url()).await?;
    let jobs_line = format!("= {}", cluster_jobs.len());
    assert!(
        inspected
            .stdout
            .lines()
            .any(|line| line.starts_with("Jobs ") && line.ends_with(&jobs_line)),
        "{inspected:?}"
    );
    let mut single = servers_expecting(dir, 1, "single")?.remove(0);
    single.start()?;
    wait_for_cluster(&http, std::slice::from_ref(&single), 1)
        .await
        .context("a new single server")?;
    let restored = caravan(
        dir,
        &[
            "operator",
            "snapshot",
            "restore",
            "-address",
            &single.url(),
            &snapshot_file.display().to_string(),
        ],
    )?;
    assert_eq!(restored.code, Some(0), "{restored:?}");
    assert_eq!(job_ids(&http, &single).await?, cluster_jobs);
    assert_eq!(alloc_ids(&http, &single.url()).await?, cluster_allocs);
    Ok(())
}

/// The allocation IDs a server holds.
async fn alloc_ids(http: &reqwest::Client, url: &str) -> anyhow::Result<BTreeSet<String>> {
    let allocs = get_json(http, &format!("{url}/v1/allocations?stale")).await?;
    Ok(allocs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|alloc| alloc["ID"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_servers_write_with_three_and_refuse_without_a_leader() -> anyhow::Result<()> {
    with_logs(five_servers).await
}

async fn five_servers(dir: PathBuf) -> anyhow::Result<()> {
    let dir = dir.as_path();
    let http = http()?;
    let mut servers = servers(dir, 5)?;
    for server in &mut servers {
        server.start()?;
    }
    let leader = wait_for_cluster(&http, &servers, 5)
        .await
        .context("five servers formed a cluster")?;
    let leader = leader_index(&servers, &leader)?;
    // Lose two, the leader among them.
    let lost: Vec<usize> = vec![leader, (leader + 1) % 5];
    for &index in &lost {
        servers[index].kill()?;
    }
    let survivors: Vec<usize> = (0..5).filter(|index| !lost.contains(index)).collect();
    wait_for(Duration::from_secs(20), || async {
        Ok(register(
            &http,
            &servers[survivors[0]].url(),
            &parked_job("with-three"),
        )
        .await
        .ok())
    })
    .await?;
    // Lose a third: no quorum.
    servers[survivors[0]].kill()?;
    let asked_at = Instant::now();
    let response = http
        .put(format!("{}/v1/jobs", servers[survivors[1]].url()))
        .json(&json!({ "Job": parked_job("without-quorum") }))
        .send()
        .await?;
    let waited = asked_at.elapsed();
    let status = response.status();
    let text = response.text().await?;
    assert_eq!(status.as_u16(), 500, "{text}");
    assert_eq!(text, "No cluster leader");
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );
    // One comes back: writes work again.
    servers[survivors[0]].start()?;
    wait_for(Duration::from_secs(30), || async {
        Ok(register(
            &http,
            &servers[survivors[1]].url(),
            &parked_job("recovered"),
        )
        .await
        .ok())
    })
    .await?;
    let held = job_ids(&http, &servers[survivors[2]]).await?;
    assert!(held.contains("with-three"));
    Ok(())
}
