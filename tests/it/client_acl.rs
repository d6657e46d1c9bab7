//! ACLs on a client-only agent's own routes: with `acl { enabled = true }`, the client asks the
//! servers what a caller's token grants before it serves logs, files, exec or stats, so an
//! anonymous or unknown caller is refused there as on the servers, and a token with
//! `read-logs` / `alloc-exec` works (the CLI's `alloc exec` sends its token too, and a server
//! relays the exec websocket to the client agent with it).

use std::time::Duration;

use anyhow::Context;
use caravan::agent::config::AgentConfig;
use caravan::agent::run::{RunningAgent, start_agent};
use serde_json::{Value, json};

use crate::support::server::{service_job, wait_for};

const WAIT: Duration = Duration::from_secs(30);

/// A call with `token` (none: anonymous): the status and the answer's text.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, String)> {
    let mut request = http.request(method, url).timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.header("X-Nomad-Token", token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// A client token holding one new policy with `rules`; its secret.
async fn token_with(
    http: &reqwest::Client,
    server: &str,
    management: &str,
    name: &str,
    rules: &str,
) -> anyhow::Result<String> {
    let put = reqwest::Method::PUT;
    let policy = json!({ "Name": name, "Rules": rules });
    let (status, text) = call(
        http,
        put.clone(),
        format!("{server}/v1/acl/policy/{name}"),
        Some(management),
        Some(&policy),
    )
    .await?;
    anyhow::ensure!(status == 200, "policy {name}: {status} {text}");
    let token = json!({ "Name": name, "Type": "client", "Policies": [name] });
    let (status, text) = call(
        http,
        put,
        format!("{server}/v1/acl/token"),
        Some(management),
        Some(&token),
    )
    .await?;
    anyhow::ensure!(status == 200, "token {name}: {status} {text}");
    let token: Value = serde_json::from_str(&text)?;
    token["SecretID"]
        .as_str()
        .map(str::to_owned)
        .context("the token has a secret")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_only_agent_checks_tokens_on_its_own_routes() -> anyhow::Result<()> {
    let mut config = AgentConfig::dev();
    config.client.enabled = Some(false);
    config.ports.http = Some(0);
    config.ports.rpc = Some(0);
    config.acl.enabled = Some(true);
    let server_agent: RunningAgent = start_agent(config, true).await?;
    let server = format!("http://{}", server_agent.http_addr);
    let http = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let (status, text) = call(
        &http,
        post.clone(),
        format!("{server}/v1/acl/bootstrap"),
        None,
        None,
    )
    .await?;
    anyhow::ensure!(status == 200, "bootstrap: {status} {text}");
    let bootstrap: Value = serde_json::from_str(&text)?;
    let management = bootstrap["SecretID"]
        .as_str()
        .context("the bootstrap token has a secret")?
        .to_owned();

    let mut config = AgentConfig::dev();
    config.name = Some("worker".to_owned());
    config.server.enabled = Some(false);
    config.ports.http = Some(0);
    config.client.servers = Some(vec![server.clone()]);
    config.acl.enabled = Some(true);
    let client_agent = start_agent(config, true).await?;
    let client = format!("http://{}", client_agent.http_addr);

    let mut job = service_job("guarded", 1);
    job["TaskGroups"][0]["Tasks"][0]["Config"] = json!({
        "command": "/bin/sh",
        "args": ["-c", "echo secret-output; exec sleep 1000"],
    });
    let (status, text) = call(
        &http,
        reqwest::Method::PUT,
        format!("{server}/v1/jobs"),
        Some(&management),
        Some(&json!({ "Job": job })),
    )
    .await?;
    anyhow::ensure!(status == 200, "register: {status} {text}");
    let alloc_id = wait_for(WAIT, || async {
        let (_, text) = call(
            &http,
            get.clone(),
            format!("{server}/v1/job/guarded/allocations"),
            Some(&management),
            None,
        )
        .await?;
        let allocs: Value = serde_json::from_str(&text).unwrap_or_default();
        Ok(allocs.as_array().and_then(|allocs| {
            allocs
                .iter()
                .find(|alloc| alloc["ClientStatus"] == "running")
                .and_then(|alloc| alloc["ID"].as_str().map(str::to_owned))
        }))
    })
    .await?;

    let logs = format!("{client}/v1/client/fs/logs/{alloc_id}?task=redis&type=stdout&plain=true");
    let denied = (403, "Permission denied".to_owned());
    // Anonymous (no anonymous policy): refused on each of the client's route classes.
    for path in [
        logs.clone(),
        format!("{client}/v1/client/fs/ls/{alloc_id}?path=/"),
        format!("{client}/v1/client/fs/cat/{alloc_id}?path=alloc/logs/redis.stdout.0"),
        format!("{client}/v1/client/allocation/{alloc_id}/exec?task=redis&command=%5B%22id%22%5D"),
        format!("{client}/v1/client/allocation/{alloc_id}/stats"),
        format!("{client}/v1/client/stats"),
    ] {
        let answer = call(&http, get.clone(), path.clone(), None, None).await?;
        assert_eq!(answer, denied, "anonymous GET {path}");
    }
    let restart = format!("{client}/v1/client/allocation/{alloc_id}/restart");
    let answer = call(&http, post.clone(), restart.clone(), None, Some(&json!({}))).await?;
    assert_eq!(answer, denied, "anonymous restart");
    // A secret the servers do not know.
    let answer = call(
        &http,
        get.clone(),
        logs.clone(),
        Some("00000000-0000-4000-8000-00000000dead"),
        None,
    )
    .await?;
    assert_eq!(answer, (403, "ACL token not found".to_owned()));

    // read-logs reads the logs; with read-job, nothing else of the client's.
    let reader = token_with(
        &http,
        &server,
        &management,
        "logs",
        r#"namespace "default" { capabilities = ["read-job", "read-logs"] }"#,
    )
    .await?;
    let output = wait_for(WAIT, || async {
        let (status, text) = call(&http, get.clone(), logs.clone(), Some(&reader), None).await?;
        anyhow::ensure!(status == 200, "logs with read-logs: {status} {text}");
        Ok(text.contains("secret-output").then_some(text))
    })
    .await?;
    assert_eq!(output, "secret-output\n");
    let answer = call(
        &http,
        get.clone(),
        format!("{client}/v1/client/fs/ls/{alloc_id}?path=/"),
        Some(&reader),
        None,
    )
    .await?;
    assert_eq!(answer, denied, "read-logs does not list files");
    let answer = call(
        &http,
        post.clone(),
        restart,
        Some(&reader),
        Some(&json!({})),
    )
    .await?;
    assert_eq!(answer, denied, "read-logs does not restart");
    let (status, text) = call(
        &http,
        get.clone(),
        format!("{client}/v1/client/stats"),
        Some(&management),
        None,
    )
    .await?;
    assert_eq!(status, 200, "management reads the host's stats: {text}");

    // alloc exec through the client agent, and through the server, which relays the websocket
    // to the client: refused without alloc-exec, runs with it.
    let executor = token_with(
        &http,
        &server,
        &management,
        "exec",
        r#"namespace "default" { capabilities = ["read-job", "alloc-exec"] }"#,
    )
    .await?;
    let exec = |address: &str, token: Option<String>| {
        let mut args = vec![
            "alloc".to_owned(),
            "exec".to_owned(),
            "-address".to_owned(),
            address.to_owned(),
        ];
        if let Some(token) = token {
            args.extend(["-token".to_owned(), token]);
        }
        args.extend([
            alloc_id.clone(),
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "echo exec-as-$NOMAD_TASK_NAME".to_owned(),
        ]);
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::support::caravan(&std::env::temp_dir(), &args)
        })
    };
    for address in [&client, &server] {
        let refused = exec(address, Some(reader.clone())).await??;
        assert_ne!(refused.code, Some(0), "{address}: {refused:?}");
        assert!(
            refused.stderr.contains("403 (Permission denied)"),
            "{address}: a token without alloc-exec is refused: {refused:?}"
        );
        let ran = exec(address, Some(executor.clone())).await??;
        assert_eq!(
            (ran.code, ran.stdout.as_str()),
            (Some(0), "exec-as-redis\n"),
            "{address}: {ran:?}"
        );
    }

    client_agent.shutdown().await;
    server_agent.shutdown().await;
    Ok(())
}
