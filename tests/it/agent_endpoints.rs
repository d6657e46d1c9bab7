//! The agent's own endpoints between separate processes, one server and one client agent:
//! `caravan node config -servers | -update-servers` over `/v1/agent/servers`, and `caravan
//! monitor` over `/v1/agent/monitor` streaming what the client logs while that happens, and
//! `/v1/agent/health` answering for the part each agent runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::server::wait_for;
use crate::support::{
    AgentProcess, Run, caravan_async, caravan_bin, free_port, raw_exec_client_config,
    short_ttl_server_config,
};

const WITHIN: Duration = Duration::from_secs(60);

async fn nodes(url: &str) -> anyhow::Result<Vec<Value>> {
    let nodes: Value = reqwest::get(format!("{url}/v1/nodes"))
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(nodes.as_array().cloned().unwrap_or_default())
}

async fn cli(dir: &Path, address: &str, args: &[&str]) -> anyhow::Result<Run> {
    let mut all = vec![args[0], args[1], "-address", address];
    all.extend_from_slice(&args[2..]);
    caravan_async(dir, &all).await
}

/// A `caravan monitor` process writing to `<dir>/<name>.out`, killed when dropped.
struct Monitor {
    child: Child,
    out: PathBuf,
}

impl Monitor {
    fn start(dir: &Path, name: &str, args: &[&str]) -> anyhow::Result<Self> {
        let out = dir.join(format!("{name}.out"));
        let child = Command::new(caravan_bin())
            .arg("monitor")
            .args(args)
            .stdout(std::fs::File::create(&out)?)
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Self { child, out })
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_config_lists_and_replaces_a_clients_servers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server_http, server_rpc, client_http) = (free_port()?, free_port()?, free_port()?);
    let server_config = dir.path().join("server.hcl");
    std::fs::write(
        &server_config,
        short_ttl_server_config(dir.path(), server_http, server_rpc),
    )?;
    let _server = AgentProcess::start(dir.path(), "server1", &server_config)?;
    let client_config = dir.path().join("client.hcl");
    std::fs::write(
        &client_config,
        raw_exec_client_config(dir.path(), "client1", client_http, server_rpc),
    )?;
    let _client = AgentProcess::start(dir.path(), "client1", &client_config)?;
    let server = format!("http://127.0.0.1:{server_http}");
    let client = format!("http://127.0.0.1:{client_http}");
    wait_for(WITHIN, || async {
        let ready = nodes(&server)
            .await
            .is_ok_and(|nodes| nodes.iter().any(|node| node["Status"] == "ready"));
        Ok(ready.then_some(()))
    })
    .await?;

    // Each agent answers for what it runs; a part named with `type` that it does not run fails.
    for (url, query, status, body) in [
        (&client, "", 200, r#"{"client":{"ok":true,"message":"ok"}}"#),
        (&server, "", 200, r#"{"server":{"ok":true,"message":"ok"}}"#),
        (
            &client,
            "?type=server",
            500,
            r#"{"server":{"ok":false,"message":"server not enabled"}}"#,
        ),
        (
            &server,
            "?type=client&type=server",
            500,
            r#"{"client":{"ok":false,"message":"client not enabled"},"server":{"ok":true,"message":"ok"}}"#,
        ),
    ] {
        let answer = reqwest::get(format!("{url}/v1/agent/health{query}")).await?;
        assert_eq!(answer.status().as_u16(), status, "{url}{query}");
        assert_eq!(answer.text().await?, body, "{url}{query}");
    }

    let listed = cli(dir.path(), &client, &["node", "config", "-servers"]).await?;
    assert_eq!(listed.code, Some(0), "{listed:?}");
    assert_eq!(listed.stdout, format!("127.0.0.1:{server_rpc}\n"));

    // A server-only agent has no client: Nomad's 501.
    let refused = cli(dir.path(), &server, &["node", "config", "-servers"]).await?;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("Error querying server list: Unexpected response code: 501"),
        "{refused:?}"
    );

    let misuse = cli(dir.path(), &client, &["node", "config"]).await?;
    assert_eq!(misuse.code, Some(1), "{misuse:?}");
    assert!(
        misuse
            .stderr
            .contains("The '-servers' or '-update-servers' flag(s) must be set"),
        "{misuse:?}"
    );
    let none = cli(dir.path(), &client, &["node", "config", "-update-servers"]).await?;
    assert_eq!(none.code, Some(1), "{none:?}");
    assert!(
        none.stderr.contains("at least one server argument"),
        "{none:?}"
    );
    let bad = cli(
        dir.path(),
        &client,
        &["node", "config", "-update-servers", "ftp://127.0.0.1:1"],
    )
    .await?;
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(
        bad.stderr.contains("Error updating server list")
            && bad
                .stderr
                .contains("invalid server address \"ftp://127.0.0.1:1\""),
        "{bad:?}"
    );

    // Watchers of the client's log: at debug through the server (`-node-id`, forwarded to the
    // client's agent), at error directly; the client logs at DEBUG itself but a watcher's level
    // is its own.
    let node_id = nodes(&server).await?[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let debug = Monitor::start(
        dir.path(),
        "debug",
        &[
            "-address",
            &server,
            "-log-level=debug",
            "-node-id",
            &node_id,
        ],
    )?;
    let errors = Monitor::start(
        dir.path(),
        "errors",
        &["-address", &client, "-log-level=error"],
    )?;
    let bad_level = reqwest::get(format!("{client}/v1/agent/monitor?log_level=loud")).await?;
    assert_eq!(bad_level.status().as_u16(), 400);
    assert_eq!(bad_level.text().await?, "Unknown log level: loud");
    // A dead address first: the client's link and the API calls it forwards move on to the
    // live server.
    let dead = format!("127.0.0.1:{}", free_port()?);
    let live = format!("127.0.0.1:{server_rpc}");
    // Set again until the debug watch, which may still be connecting, sees it logged.
    wait_for(WITHIN, || async {
        let updated = cli(
            dir.path(),
            &client,
            &["node", "config", "-update-servers", &dead, &live],
        )
        .await?;
        assert_eq!(updated.code, Some(0), "{updated:?}");
        assert_eq!(updated.stdout, "Updated server list\n");
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(debug
            .text()
            .contains("the operator set the servers")
            .then_some(()))
    })
    .await?;
    let listed = cli(dir.path(), &client, &["node", "config", "-servers"]).await?;
    let mut expected = [dead.clone(), live.clone()];
    expected.sort();
    assert_eq!(listed.stdout, format!("{}\n{}\n", expected[0], expected[1]));
    let status = cli(dir.path(), &client, &["job", "status"]).await?;
    assert_eq!(
        status.code,
        Some(0),
        "forwarded past the dead server: {status:?}"
    );
    assert!(status.stdout.contains("No running jobs"), "{status:?}");
    // Longer than the heartbeat TTL (2 s + 1 s grace): the node stays ready.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let nodes = nodes(&server).await?;
    assert_eq!(nodes[0]["Status"], "ready", "{nodes:?}");

    let logged = wait_for(WITHIN, || async {
        let text = debug.text();
        Ok(text
            .contains("the operator set the servers")
            .then_some(text))
    })
    .await?;
    assert!(
        logged.contains(" INFO ") && logged.contains(" DEBUG "),
        "a debug watch sees info and debug lines: {logged}"
    );
    let errors_seen = errors.text();
    assert!(
        !errors_seen.contains(" INFO ") && !errors_seen.contains(" DEBUG "),
        "an error watch sees no info or debug line: {errors_seen}"
    );
    Ok(())
}
