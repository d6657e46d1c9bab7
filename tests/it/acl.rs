//! ACLs on a real server (`acl { enabled = true }`): anonymous callers are refused on every route
//! class, `acl bootstrap` works once and then fails as Nomad's, a `namespace "web" { policy =
//! "write" }` token runs jobs in `web` and reads nothing in `default`, a management token does
//! everything, unknown and expired tokens are refused.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::support::caravan;
use crate::support::server::{TestServer, service_job, wait_for};

/// `Secret ID = ...` and `Accessor ID = ...` of a token the CLI printed.
fn token_field(stdout: &str, field: &str) -> anyhow::Result<String> {
    stdout
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once('=')?;
            (name.trim() == field).then(|| value.trim().to_owned())
        })
        .with_context(|| format!("no {field} in {stdout}"))
}

/// A request with `token` (none: anonymous); the status and the body's text.
async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, String)> {
    let mut request = server
        .http
        .request(method, format!("{}{path}", server.url))
        .timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.header("X-Nomad-Token", token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    // An accepted event stream never ends: its status is all that is read.
    if path.starts_with("/v1/event/stream") && status == 200 {
        return Ok((status, String::new()));
    }
    Ok((status, response.text().await?))
}

fn job_in(namespace: &str, id: &str) -> Value {
    let mut job = service_job(id, 1);
    job["Namespace"] = json!(namespace);
    json!({ "Job": job })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_gate_every_route_class() -> anyhow::Result<()> {
    let server = TestServer::start_with(|options| options.acl_enabled = true).await?;
    let dir = tempfile::tempdir()?;
    let address = server.url.clone();
    let denied = (403, "Permission denied".to_owned());

    // Anonymous, with no anonymous policy: refused on each route class.
    let get = reqwest::Method::GET;
    let put = reqwest::Method::PUT;
    let post = reqwest::Method::POST;
    let anonymous_calls = [
        (get.clone(), "/v1/jobs"),
        (put.clone(), "/v1/jobs"),
        (get.clone(), "/v1/job/web"),
        (get.clone(), "/v1/allocations"),
        (
            get.clone(),
            "/v1/allocation/00000000-0000-4000-8000-000000000001",
        ),
        (get.clone(), "/v1/evaluations"),
        (get.clone(), "/v1/deployments"),
        (get.clone(), "/v1/services"),
        (get.clone(), "/v1/nodes"),
        (
            post.clone(),
            "/v1/node/00000000-0000-4000-8000-000000000001/drain",
        ),
        (get.clone(), "/v1/agent/self"),
        (get.clone(), "/v1/operator/raft/configuration"),
        (get.clone(), "/v1/operator/snapshot"),
        (get.clone(), "/v1/acl/tokens"),
        (get.clone(), "/v1/acl/policies"),
        (get.clone(), "/v1/event/stream"),
        (
            get.clone(),
            "/v1/client/fs/logs/00000000-0000-4000-8000-000000000001?task=t&type=stdout",
        ),
        (
            get.clone(),
            "/v1/client/fs/cat/00000000-0000-4000-8000-000000000001?path=/",
        ),
        (
            get.clone(),
            "/v1/client/allocation/00000000-0000-4000-8000-000000000001/exec",
        ),
    ];
    for (method, path) in &anonymous_calls {
        let body = (*method != get).then(|| job_in("default", "anonymous"));
        let answer = call(&server, method.clone(), path, None, body.as_ref()).await?;
        assert_eq!(answer, denied, "anonymous {method} {path}");
    }
    // What stays open: the leader, agent health.
    assert_eq!(
        call(&server, get.clone(), "/v1/status/leader", None, None)
            .await?
            .0,
        200
    );

    // Bootstrap once through the CLI; a second time fails as Nomad's.
    let first = caravan(dir.path(), &["acl", "bootstrap", "-address", &address])?;
    assert_eq!(first.code, Some(0), "{first:?}");
    let management = token_field(&first.stdout, "Secret ID")?;
    assert_eq!(token_field(&first.stdout, "Type")?, "management");
    let second = caravan(dir.path(), &["acl", "bootstrap", "-address", &address])?;
    assert_eq!(second.code, Some(1), "{second:?}");
    assert!(
        second.stderr.contains(
            "Error bootstrapping: Unexpected response code: 400 (ACL bootstrap already done (reset index: "
        ),
        "{second:?}"
    );

    // A policy and a token for namespace web, made by the management token.
    let rules = dir.path().join("web.hcl");
    std::fs::write(&rules, "namespace \"web\" {\n  policy = \"write\"\n}\n")?;
    let rules = rules.to_string_lossy().into_owned();
    let applied = caravan(
        dir.path(),
        &[
            "acl",
            "policy",
            "apply",
            "-address",
            &address,
            "-token",
            &management,
            "web",
            &rules,
        ],
    )?;
    assert_eq!(
        applied.stdout.trim(),
        "Successfully wrote \"web\" ACL policy!",
        "{applied:?}"
    );
    let created = caravan(
        dir.path(),
        &[
            "acl",
            "token",
            "create",
            "-address",
            &address,
            "-token",
            &management,
            "-name",
            "web-deployer",
            "-policy",
            "web",
        ],
    )?;
    assert_eq!(created.code, Some(0), "{created:?}");
    let web = token_field(&created.stdout, "Secret ID")?;
    assert_eq!(token_field(&created.stdout, "Policies")?, "web");

    // Namespaces are the operator's: the web token cannot make one, the management token does,
    // and the web token lists only the namespace its policy names.
    let namespace = json!({ "Name": "web", "Description": "the web team" });
    assert_eq!(
        call(
            &server,
            put.clone(),
            "/v1/namespace/web",
            Some(&web),
            Some(&namespace)
        )
        .await?,
        denied
    );
    let (status, text) = call(
        &server,
        put.clone(),
        "/v1/namespace/web",
        Some(&management),
        Some(&namespace),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let (status, text) = call(&server, get.clone(), "/v1/namespaces", Some(&web), None).await?;
    assert_eq!(status, 200, "{text}");
    let listed: Vec<Value> = serde_json::from_str(&text)?;
    let names: Vec<&str> = listed.iter().filter_map(|ns| ns["Name"].as_str()).collect();
    assert_eq!(names, ["web"]);
    assert_eq!(
        call(
            &server,
            get.clone(),
            "/v1/namespace/default",
            Some(&web),
            None
        )
        .await?,
        denied
    );

    // The web token runs jobs in web ...
    let (status, text) = call(
        &server,
        put.clone(),
        "/v1/jobs",
        Some(&web),
        Some(&job_in("web", "site")),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let (status, text) = call(
        &server,
        get.clone(),
        "/v1/job/site?namespace=web",
        Some(&web),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    // ... and reads nor writes nothing in default, whatever ?namespace= says.
    for (method, path, body) in [
        (get.clone(), "/v1/jobs", None),
        (get.clone(), "/v1/job/site", None),
        (put.clone(), "/v1/jobs", Some(job_in("default", "intruder"))),
        (
            put.clone(),
            "/v1/jobs?namespace=web",
            Some(job_in("default", "intruder")),
        ),
        (get.clone(), "/v1/nodes", None),
        (get.clone(), "/v1/acl/tokens", None),
    ] {
        let answer = call(&server, method.clone(), path, Some(&web), body.as_ref()).await?;
        assert_eq!(answer, denied, "web token {method} {path}");
    }

    // Management does everything: a job in default, nodes, operator, tokens; lists across
    // namespaces show both jobs to it and only web's to the web token.
    let (status, text) = call(
        &server,
        put.clone(),
        "/v1/jobs",
        Some(&management),
        Some(&job_in("default", "core")),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    for path in [
        "/v1/nodes",
        "/v1/operator/raft/configuration",
        "/v1/acl/tokens",
        "/v1/agent/self",
    ] {
        let (status, text) = call(&server, get.clone(), path, Some(&management), None).await?;
        assert_eq!(status, 200, "management GET {path}: {text}");
    }
    let listed = |token: String| {
        let server = &server;
        async move {
            let (status, text) = call(
                server,
                reqwest::Method::GET,
                "/v1/jobs?namespace=*",
                Some(&token),
                None,
            )
            .await?;
            anyhow::ensure!(status == 200, "{status} {text}");
            let jobs: Vec<Value> = serde_json::from_str(&text)?;
            let mut ids: Vec<String> = jobs
                .iter()
                .filter_map(|job| job["ID"].as_str().map(str::to_owned))
                .collect();
            ids.sort();
            Ok(ids)
        }
    };
    assert_eq!(listed(management.clone()).await?, ["core", "site"]);
    assert_eq!(listed(web.clone()).await?, ["site"]);

    // Unknown and expired tokens are refused with Nomad's words.
    let unknown = call(
        &server,
        get.clone(),
        "/v1/jobs?namespace=web",
        Some("00000000-0000-4000-8000-00000000dead"),
        None,
    )
    .await?;
    assert_eq!(unknown, (403, "ACL token not found".to_owned()));
    let (status, text) = call(
        &server,
        put.clone(),
        "/v1/acl/token",
        Some(&management),
        Some(&json!({ "Name": "brief", "Type": "client", "Policies": ["web"], "ExpirationTTL": 200_000_000 })),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let brief: Value = serde_json::from_str(&text)?;
    let brief = brief["SecretID"].as_str().context("a secret")?.to_owned();
    wait_for(Duration::from_secs(10), || async {
        let answer = call(
            &server,
            reqwest::Method::GET,
            "/v1/jobs?namespace=web",
            Some(&brief),
            None,
        )
        .await?;
        Ok((answer == (403, "ACL token expired".to_owned())).then_some(()))
    })
    .await?;

    // The anonymous policy opens what it grants, and only that.
    let (status, text) = call(
        &server,
        put.clone(),
        "/v1/acl/policy/anonymous",
        Some(&management),
        Some(
            &json!({ "Name": "anonymous", "Rules": "namespace \"default\" { policy = \"read\" }" }),
        ),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let (status, text) = call(&server, get.clone(), "/v1/jobs", None, None).await?;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"core\""), "{text}");
    assert_eq!(
        call(&server, get.clone(), "/v1/nodes", None, None).await?,
        denied
    );

    // token self, from the CLI with NOMAD_TOKEN's flag twin.
    let own = caravan(
        dir.path(),
        &["acl", "token", "self", "-address", &address, "-token", &web],
    )?;
    assert_eq!(token_field(&own.stdout, "Name")?, "web-deployer", "{own:?}");

    server.stop().await;
    Ok(())
}
