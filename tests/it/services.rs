//! Native services and their checks on a real `-dev` agent with raw_exec tasks serving HTTP on
//! 127.0.0.1: a rolling update gated on `http` checks, a failing check reverted with
//! `auto_revert`, `check_restart` (counted by the restart policy), deregistration when the
//! job stops, and templates re-rendered as a service's instances come and go.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::caravan_async;
use crate::support::dev::Dev;
use crate::support::server::wait_for;

const SECOND: u64 = 1_000_000_000;
const MILLI: u64 = 1_000_000;

/// Serves the task directory over HTTP on the allocation's `http` port, loopback only.
const SERVE: &str = "exec /usr/bin/python3 -m http.server \"$NOMAD_PORT_http\" --bind 127.0.0.1";

/// What these tests read of services and health beyond the shared helper.
trait ServiceQueries {
    async fn healthy_allocs(&self, job: &str) -> anyhow::Result<Vec<Value>>;
    async fn instances(&self, service: &str) -> anyhow::Result<Vec<Value>>;
}

impl ServiceQueries for Dev {
    /// The job's allocations that run and are healthy in their deployment.
    async fn healthy_allocs(&self, job: &str) -> anyhow::Result<Vec<Value>> {
        let allocs = self.get(&format!("/v1/job/{job}/allocations")).await?;
        Ok(allocs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|alloc| {
                alloc["DesiredStatus"] == "run"
                    && alloc["ClientStatus"] == "running"
                    && alloc["DeploymentStatus"]["Healthy"] == true
            })
            .cloned()
            .collect())
    }

    async fn instances(&self, service: &str) -> anyhow::Result<Vec<Value>> {
        let instances = self.get(&format!("/v1/service/{service}")).await?;
        Ok(instances.as_array().cloned().unwrap_or_default())
    }
}

/// A service job of `count` raw_exec tasks running `script`, with a group service `web` on the
/// dynamic port `http` checked by `check`.
fn job(id: &str, count: u32, script: &str, check: Value, update: Value) -> Value {
    json!({ "Job": {
        "ID": id,
        "TaskGroups": [{
            "Name": "g",
            "Count": count,
            "Update": update,
            "RestartPolicy": { "Attempts": 0, "Mode": "fail" },
            // Small, so a development machine's full disk does not stop the placements.
            "EphemeralDisk": { "SizeMB": 10 },
            "ReschedulePolicy": { "Attempts": 0, "Unlimited": false },
            "Networks": [{ "DynamicPorts": [{ "Label": "http" }] }],
            "Services": [{
                "Name": "web",
                "PortLabel": "http",
                "Tags": ["v"],
                "Checks": [check],
            }],
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sh", "args": ["-c", script] },
                "Resources": { "CPU": 20, "MemoryMB": 64 },
            }],
        }],
    }})
}

fn http_check(path: &str) -> Value {
    json!({
        "Name": "alive",
        "Type": "http",
        "Path": path,
        "Interval": 300 * MILLI,
        "Timeout": SECOND,
    })
}

/// Checks gate health; `healthy_deadline` in seconds: long where the version should turn healthy
/// (a loaded machine must not fail it), short where its check fails on purpose.
fn update(auto_revert: bool, healthy_deadline: u64) -> Value {
    json!({
        "MaxParallel": 1,
        "HealthCheck": "checks",
        "MinHealthyTime": SECOND,
        "HealthyDeadline": healthy_deadline * SECOND,
        "ProgressDeadline": 60 * SECOND,
        "AutoRevert": auto_revert,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_gated_on_http_checks_keeps_three_healthy() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let v1 = format!("{SERVE} # v1");
    dev.put(
        "/v1/jobs",
        &job("web", 4, &v1, http_check("/"), update(false, 30)),
    )
    .await?;
    let first = dev.deployment_done("web", 0).await?;
    assert_eq!(first["Status"], "successful", "{first}");
    assert_eq!(first["TaskGroups"]["g"]["HealthyAllocs"], 4, "{first}");

    let v2 = format!("{SERVE} # v2");
    dev.put(
        "/v1/jobs",
        &job("web", 4, &v2, http_check("/"), update(false, 30)),
    )
    .await?;
    let mut fewest = usize::MAX;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let second = loop {
        fewest = fewest.min(dev.healthy_allocs("web").await?.len());
        let deployment = dev.get("/v1/job/web/deployment").await?;
        if deployment["JobVersion"] == 1 && deployment["Status"] != "running" {
            break deployment;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "rollout too slow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(second["Status"], "successful", "{second}");
    assert_eq!(second["TaskGroups"]["g"]["HealthyAllocs"], 4, "{second}");
    assert!(fewest >= 3, "at least 3 healthy throughout, saw {fewest}");

    // The catalog holds the 4 new allocations, every check passing.
    let new_allocs: Vec<String> = dev
        .healthy_allocs("web")
        .await?
        .iter()
        .filter(|alloc| alloc["JobVersion"] == 1)
        .filter_map(|alloc| alloc["ID"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(new_allocs.len(), 4);
    let instances = wait_for(Duration::from_secs(30), || async {
        let instances = dev.instances("web").await?;
        let settled = instances.len() == 4
            && instances.iter().all(|instance| {
                new_allocs.iter().any(|id| instance["AllocID"] == *id)
                    && instance["Checks"]["alive"] == "success"
            });
        Ok(settled.then_some(instances))
    })
    .await?;
    for instance in &instances {
        assert_eq!(instance["Address"], "127.0.0.1", "{instance}");
        assert_eq!(instance["JobID"], "web");
        let port = instance["Port"].as_u64().unwrap_or(0);
        assert!(port > 0, "{instance}");
        // The registered address serves.
        let page = reqwest::get(format!("http://127.0.0.1:{port}/")).await?;
        assert!(page.status().is_success());
    }

    let dir = tempfile::tempdir()?;
    let info = caravan_async(
        dir.path(),
        &["service", "info", "-address", &dev.url, "web"],
    )
    .await?;
    assert_eq!(info.code, Some(0), "{}", info.stderr);
    assert!(info.stdout.starts_with("Job ID"), "{}", info.stdout);
    let rows: Vec<&str> = info.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{}", info.stdout);
    assert!(
        rows.iter().all(|row| row.trim_end().ends_with("success")),
        "{}",
        info.stdout
    );
    let list = caravan_async(dir.path(), &["service", "list", "-address", &dev.url]).await?;
    assert!(list.stdout.contains("web"), "{}", list.stdout);
    assert!(list.stdout.contains("[v]"), "{}", list.stdout);

    let status = caravan_async(
        dir.path(),
        &["alloc", "status", "-address", &dev.url, &new_allocs[0]],
    )
    .await?;
    assert!(
        status.stdout.contains("Nomad Service Checks:"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.lines().any(|line| line.starts_with("web")
            && line.contains("alive")
            && line.contains("healthiness")
            && line.trim_end().ends_with("success")),
        "{}",
        status.stdout
    );
    let checks = dev
        .get(&format!("/v1/client/allocation/{}/checks", new_allocs[0]))
        .await?;
    let result = checks
        .as_object()
        .and_then(|checks| checks.values().next())
        .cloned()
        .unwrap_or_default();
    assert_eq!(result["Status"], "success", "{checks}");
    assert_eq!(result["StatusCode"], 200, "{checks}");

    // Stopping the job deregisters every instance.
    let response = dev
        .http
        .delete(format!("{}/v1/job/web", dev.url))
        .send()
        .await?;
    assert!(response.status().is_success());
    wait_for(Duration::from_secs(30), || async {
        Ok(dev.instances("web").await?.is_empty().then_some(()))
    })
    .await?;
    let list = caravan_async(dir.path(), &["service", "list", "-address", &dev.url]).await?;
    assert!(
        list.stdout.contains("No service registrations found"),
        "{}",
        list.stdout
    );
    dev.agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_failing_its_check_is_reverted() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let script = format!("{SERVE} # v1");
    dev.put(
        "/v1/jobs",
        &job("flaky", 2, &script, http_check("/"), update(true, 30)),
    )
    .await?;
    let first = dev.deployment_done("flaky", 0).await?;
    assert_eq!(first["Status"], "successful", "{first}");

    // The new version checks a path the server does not have: 404, never healthy.
    let broken = format!("{SERVE} # v2");
    dev.put(
        "/v1/jobs",
        &job("flaky", 2, &broken, http_check("/missing"), update(true, 5)),
    )
    .await?;
    let failed = dev.deployment_done("flaky", 1).await?;
    assert_eq!(failed["Status"], "failed", "{failed}");
    assert_eq!(
        failed["StatusDescription"],
        "Failed due to unhealthy allocations - rolling back to job version 0"
    );
    let reverted = wait_for(Duration::from_secs(30), || async {
        let job = dev.get("/v1/job/flaky").await?;
        Ok((job["Version"] == 2).then_some(job))
    })
    .await?;
    assert_eq!(
        reverted["TaskGroups"][0]["Services"][0]["Checks"][0]["Path"],
        "/"
    );
    assert_eq!(
        reverted["TaskGroups"][0]["Tasks"][0]["Config"]["args"][1],
        script.as_str()
    );
    // The instances left are all passing again, of the reverted version.
    wait_for(Duration::from_secs(60), || async {
        let instances = dev.instances("web").await?;
        let healthy = dev.healthy_allocs("flaky").await?;
        let settled = instances.len() == 2
            && instances
                .iter()
                .all(|instance| instance["Checks"]["alive"] == "success")
            && healthy.len() == 2
            && healthy.iter().all(|alloc| alloc["JobVersion"] == 2);
        Ok(settled.then_some(()))
    })
    .await?;
    // The reverted version rolls out as a deployment of its own, the allocation that kept
    // serving updated in place into it.
    let reverted = dev.deployment_done("flaky", 2).await?;
    assert_eq!(reverted["Status"], "successful", "{reverted}");
    dev.agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_change_updates_in_place_and_its_deployment_waits_for_the_new_check()
-> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let script = format!("{SERVE} # v1");
    dev.put(
        "/v1/jobs",
        &job("inplace", 2, &script, http_check("/"), update(true, 30)),
    )
    .await?;
    let first = dev.deployment_done("inplace", 0).await?;
    assert_eq!(first["Status"], "successful", "{first}");
    let ids = |allocs: &[Value]| -> std::collections::BTreeSet<String> {
        allocs
            .iter()
            .filter_map(|alloc| alloc["ID"].as_str().map(str::to_owned))
            .collect()
    };
    let before = ids(&dev.healthy_allocs("inplace").await?);
    assert_eq!(before.len(), 2);

    // Only the check changes: the allocations are updated in place, join the new deployment,
    // and its new check (a 404) keeps them from turning healthy.
    dev.put(
        "/v1/jobs",
        &job(
            "inplace",
            2,
            &script,
            http_check("/missing"),
            update(true, 5),
        ),
    )
    .await?;
    let failed = dev.deployment_done("inplace", 1).await?;
    assert_eq!(failed["Status"], "failed", "{failed}");
    assert_eq!(
        failed["StatusDescription"],
        "Failed due to unhealthy allocations - rolling back to job version 0"
    );
    let reverted = dev.deployment_done("inplace", 2).await?;
    assert_eq!(reverted["Status"], "successful", "{reverted}");
    let after = dev.healthy_allocs("inplace").await?;
    assert_eq!(
        ids(&after),
        before,
        "in place: the same allocations throughout"
    );
    assert!(
        after.iter().all(|alloc| alloc["JobVersion"] == 2),
        "{after:?}"
    );
    wait_for(Duration::from_secs(30), || async {
        let instances = dev.instances("web").await?;
        Ok((instances.len() == 2
            && instances
                .iter()
                .all(|instance| instance["Checks"]["alive"] == "success"))
        .then_some(()))
    })
    .await?;
    dev.agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_restart_restarts_a_task_whose_check_is_critical() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    // The first run serves nothing; after its restart the task serves.
    let script = format!(
        "if [ ! -e \"$NOMAD_ALLOC_DIR/first\" ]; then touch \"$NOMAD_ALLOC_DIR/first\"; \
         exec sleep 300; fi; {SERVE}"
    );
    let check = json!({
        "Name": "alive",
        "Type": "tcp",
        "Interval": 200 * MILLI,
        "Timeout": SECOND,
        "CheckRestart": { "Limit": 3, "Grace": SECOND },
    });
    let mut restarts = job("restarts", 1, &script, check, update(false, 30));
    restarts["Job"]["TaskGroups"][0]["RestartPolicy"] = json!({
        "Attempts": 2, "Interval": 300 * SECOND, "Delay": 100 * MILLI, "Mode": "fail",
    });
    dev.put("/v1/jobs", &restarts).await?;
    let alloc = wait_for(Duration::from_secs(60), || async {
        let allocs = dev.get("/v1/job/restarts/allocations").await?;
        Ok(allocs.as_array().and_then(|allocs| {
            allocs
                .iter()
                .find(|alloc| alloc["TaskStates"]["t"]["Restarts"].as_u64() >= Some(1))
                .cloned()
        }))
    })
    .await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default().to_owned();
    let alloc = dev.get(&format!("/v1/allocation/{alloc_id}")).await?;
    let events = alloc["TaskStates"]["t"]["Events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let signaled = events
        .iter()
        .find(|event| event["Type"] == "Restart Signaled")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        signaled["RestartReason"], "healthcheck: check \"alive\" unhealthy",
        "{events:?}"
    );
    // The restart is the restart policy's: counted, and delayed as it says.
    assert!(
        events.iter().any(|event| event["Type"] == "Restarting"
            && event["RestartReason"] == "Restart within policy"),
        "{events:?}"
    );
    // Restarted, the task serves and its check passes.
    wait_for(Duration::from_secs(30), || async {
        let instances = dev.instances("web").await?;
        Ok(instances
            .iter()
            .any(|instance| {
                instance["AllocID"] == alloc_id.as_str() && instance["Checks"]["alive"] == "success"
            })
            .then_some(()))
    })
    .await?;
    dev.agent.shutdown().await;
    Ok(())
}

/// A task whose check never passes: `check_restart` restarts it within the group's restart
/// policy, and once the policy's attempts are spent (mode "fail") the task fails, as Nomad's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_restarts_count_against_the_restart_policy() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let check = json!({
        "Name": "alive",
        "Type": "tcp",
        "Interval": 200 * MILLI,
        "Timeout": SECOND,
        "CheckRestart": { "Limit": 2, "Grace": 500 * MILLI },
    });
    let mut never = job("never", 1, "exec sleep 300", check, update(false, 60));
    never["Job"]["TaskGroups"][0]["RestartPolicy"] = json!({
        "Attempts": 1, "Interval": 300 * SECOND, "Delay": 100 * MILLI, "Mode": "fail",
    });
    dev.put("/v1/jobs", &never).await?;
    let alloc = wait_for(Duration::from_secs(60), || async {
        let allocs = dev.get("/v1/job/never/allocations").await?;
        Ok(allocs.as_array().and_then(|allocs| {
            allocs
                .iter()
                .find(|alloc| alloc["ClientStatus"] == "failed")
                .cloned()
        }))
    })
    .await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default();
    let alloc = dev.get(&format!("/v1/allocation/{alloc_id}")).await?;
    let task = &alloc["TaskStates"]["t"];
    assert_eq!(task["State"], "dead", "{task}");
    assert_eq!(task["Failed"], true, "{task}");
    assert_eq!(task["Restarts"], 1, "one restart within the policy: {task}");
    let events = task["Events"].as_array().cloned().unwrap_or_default();
    let types: Vec<&str> = events
        .iter()
        .filter_map(|event| event["Type"].as_str())
        .collect();
    // The second check_restart (the last ten events are kept) and the policy's verdict on it.
    assert!(
        events
            .iter()
            .any(|event| event["Type"] == "Restart Signaled"
                && event["RestartReason"] == "healthcheck: check \"alive\" unhealthy"),
        "{types:?}"
    );
    let verdict = events
        .iter()
        .find(|event| event["Type"] == "Not Restarting")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        verdict["DisplayMessage"],
        "Exceeded allowed attempts 1 in interval 5m0s and mode is \"fail\"",
        "{types:?}"
    );
    dev.agent.shutdown().await;
    Ok(())
}

/// The servers' side on a real server with two simulated nodes: a node registers only its own
/// allocations' instances, `/v1/service/:name` blocks until the catalog changes, and a node that
/// goes down loses its instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_goes_down_loses_its_instances() -> anyhow::Result<()> {
    use crate::support::server::{TestServer, index_header, service_job};
    let server = TestServer::start_with(|options| {
        options.heartbeat.min_ttl = Duration::from_millis(1000);
        options.heartbeat.grace = Duration::from_millis(300);
    })
    .await?;
    let heartbeat = |node_id: String, secret_id: &'static str| {
        let http = server.http.clone();
        let url = format!("{}/v1/internal/node/{node_id}/heartbeat", server.url);
        tokio::spawn(async move {
            loop {
                let _ = http
                    .put(&url)
                    .json(&json!({"Status": "ready", "SecretID": secret_id}))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let doomed = server.register_node(1).await?;
    let doomed_beat = heartbeat(doomed.clone(), "secret-1");
    server.run_job(service_job("cache", 1)).await?;
    let (allocs, _): (Vec<Value>, u64) = server.get_json("/v1/job/cache/allocations").await?;
    let alloc_id = allocs[0]["ID"].as_str().unwrap_or_default().to_owned();
    let other = server.register_node(2).await?;
    let other_beat = heartbeat(other.clone(), "secret-2");

    let (_, before) = server.get_json::<Value>("/v1/service/cache").await?;
    // A blocking query on the service wakes when it is registered.
    let blocked = tokio::spawn({
        let http = server.http.clone();
        let url = format!("{}/v1/service/cache?index={before}&wait=20s", server.url);
        async move { http.get(url).send().await }
    });
    let registration = |node_id: &str| {
        json!({ "Upserts": [{
            "ID": format!("_nomad-task-{alloc_id}-group-cache-cache-db"),
            "ServiceName": "cache",
            "Namespace": "default",
            "NodeID": node_id,
            "JobID": "cache",
            "AllocID": alloc_id,
            "Tags": ["primary"],
            "Address": "10.0.0.2",
            "Port": 20001,
        }]})
    };
    // Each node syncs with its own secret (`mock_node`'s `secret-<idx>`).
    let sync = |node_id: &str, body: &Value| {
        let secret = if node_id == doomed {
            "secret-1"
        } else {
            "secret-2"
        };
        server
            .http
            .put(format!(
                "{}/v1/internal/node/{node_id}/services",
                server.url
            ))
            .header("X-Nomad-Token", secret)
            .json(body)
            .send()
    };
    // Another node may not speak for this allocation.
    let refused = sync(&other, &registration(&other)).await?;
    assert_eq!(refused.status(), 403, "{}", refused.text().await?);
    let accepted = sync(&doomed, &registration(&doomed)).await?;
    assert!(accepted.status().is_success(), "{}", accepted.text().await?);
    let woke = blocked.await??;
    assert!(index_header(&woke)? > before);
    let instances: Vec<Value> = woke.json().await?;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0]["AllocID"], alloc_id.as_str());
    assert_eq!(instances[0]["Address"], "10.0.0.2");
    assert_eq!(instances[0]["Port"], 20001);
    let id = instances[0]["ID"].as_str().unwrap_or_default().to_owned();
    // The same registration again (a client's periodic resync) writes nothing.
    let (_, registered_at) = server.get_json::<Value>("/v1/service/cache").await?;
    assert!(
        sync(&doomed, &registration(&doomed))
            .await?
            .status()
            .is_success()
    );
    let (_, still) = server.get_json::<Value>("/v1/service/cache").await?;
    assert_eq!(still, registered_at);
    let stolen = sync(&other, &json!({ "Deletes": [id] })).await?;
    assert_eq!(stolen.status(), 403);
    // An operator deletes a second instance with the CLI.
    let mut second = registration(&doomed);
    second["Upserts"][0]["ID"] = json!(format!("_nomad-task-{alloc_id}-group-cache-cache-admin"));
    second["Upserts"][0]["Tags"] = json!([]);
    assert!(sync(&doomed, &second).await?.status().is_success());
    let dir = tempfile::tempdir()?;
    let second_id = second["Upserts"][0]["ID"].as_str().unwrap_or_default();
    let deleted = caravan_async(
        dir.path(),
        &[
            "service",
            "delete",
            "-address",
            &server.url,
            "cache",
            second_id,
        ],
    )
    .await?;
    assert_eq!(deleted.code, Some(0), "{}", deleted.stderr);
    assert_eq!(
        deleted.stdout.trim(),
        "Successfully deleted service registration"
    );
    let (instances, _): (Vec<Value>, u64) = server.get_json("/v1/service/cache").await?;
    assert_eq!(instances.len(), 1, "{instances:?}");
    let (listed, _): (Value, u64) = server.get_json("/v1/services").await?;
    assert_eq!(
        listed,
        json!([{ "Namespace": "default", "Services": [{ "ServiceName": "cache", "Tags": ["primary"] }] }])
    );

    // The node falls silent: once it is down its instance is gone.
    doomed_beat.abort();
    wait_for(Duration::from_secs(20), || async {
        let (instances, _): (Vec<Value>, u64) = server.get_json("/v1/service/cache").await?;
        Ok(instances.is_empty().then_some(()))
    })
    .await?;
    let (node, _): (Value, u64) = server.get_json(&format!("/v1/node/{doomed}")).await?;
    assert_eq!(node["Status"], "down");
    // An operator's delete of what is not there is a 404.
    let missing = server
        .http
        .delete(format!("{}/v1/service/cache/{}", server.url, "nope"))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    other_beat.abort();
    server.stop().await;
    Ok(())
}

/// A template in another job reads the instances of `web` through `nomadService` (the client's
/// link to the servers) before its task starts, and renders again as they come and go: the
/// `noop` file follows `web` scaled to 2 and stopped; the `restart` template restarts the task
/// with Nomad's event; the `signal` template's SIGHUP reaches the task's trap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_re_renders_as_instances_of_a_service_come_and_go() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put(
        "/v1/jobs",
        &job("web", 1, SERVE, http_check("/"), update(false, 30)),
    )
    .await?;
    wait_for(Duration::from_secs(60), || async {
        Ok((dev.instances("web").await?.len() == 1).then_some(()))
    })
    .await?;
    let upstreams = "{{ range nomadService \"v.web\" }}{{ .Address }}:{{ .Port }}\n{{ end }}";
    let template = |dest: &str, mode: &str| {
        json!({
            "EmbeddedTmpl": upstreams,
            "DestPath": dest,
            "ChangeMode": mode,
            "ChangeSignal": "SIGHUP",
            "Splay": 100 * MILLI,
        })
    };
    let trap = "trap 'echo hup >> local/hups' HUP; while :; do sleep 0.1; done";
    dev.put(
        "/v1/jobs",
        &json!({ "Job": {
            "ID": "reader",
            "TaskGroups": [{
                "Name": "g",
                "Count": 1,
                "EphemeralDisk": { "SizeMB": 10 },
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "raw_exec",
                        "Config": { "command": "/bin/sh", "args": ["-c", "exec sleep 300"] },
                        "Resources": { "CPU": 20, "MemoryMB": 64 },
                        "Templates": [
                            template("local/upstreams", "noop"),
                            template("local/restart", "restart"),
                        ],
                    },
                    {
                        "Name": "s",
                        "Driver": "raw_exec",
                        "Config": { "command": "/bin/sh", "args": ["-c", trap] },
                        "Resources": { "CPU": 20, "MemoryMB": 64 },
                        "Templates": [template("local/upstreams", "signal")],
                    },
                ],
            }],
        }}),
    )
    .await?;
    let alloc_id = wait_for(Duration::from_secs(60), || async {
        let allocs = dev.get("/v1/job/reader/allocations").await?;
        Ok(allocs.as_array().and_then(|allocs| {
            allocs
                .iter()
                .find(|alloc| alloc["ClientStatus"] == "running")
                .and_then(|alloc| alloc["ID"].as_str().map(str::to_owned))
        }))
    })
    .await?;
    let cat = |path: &'static str| {
        let (dev, alloc_id) = (&dev, &alloc_id);
        async move {
            let response = dev
                .http
                .get(format!(
                    "{}/v1/client/fs/cat/{alloc_id}?path={path}",
                    dev.url
                ))
                .send()
                .await?;
            anyhow::Ok(if response.status().is_success() {
                response.text().await?
            } else {
                String::new()
            })
        }
    };
    // The file lists exactly the instances the catalog has (in any order).
    let follows = |count: usize| {
        let (dev, cat) = (&dev, &cat);
        async move {
            wait_for(Duration::from_secs(60), || async {
                let instances = dev.instances("web").await?;
                let mut want: Vec<String> = instances
                    .iter()
                    .map(|i| format!("{}:{}", i["Address"].as_str().unwrap_or(""), i["Port"]))
                    .collect();
                want.sort();
                let mut have: Vec<String> = cat("t/local/upstreams")
                    .await?
                    .lines()
                    .map(str::to_owned)
                    .collect();
                have.sort();
                let signalled = cat("s/local/upstreams").await?;
                let mut also: Vec<String> = signalled.lines().map(str::to_owned).collect();
                also.sort();
                Ok((want.len() == count && have == want && also == want).then_some(have))
            })
            .await
        }
    };
    assert_eq!(follows(1).await?.len(), 1);
    dev.put(
        "/v1/jobs",
        &job("web", 2, SERVE, http_check("/"), update(false, 30)),
    )
    .await?;
    assert_eq!(follows(2).await?.len(), 2);
    // The restart template restarted `t` (once per change, with Nomad's event); the signal
    // template's SIGHUP reached `s`, which kept running.
    let alloc = wait_for(Duration::from_secs(30), || async {
        let alloc = dev.get(&format!("/v1/allocation/{alloc_id}")).await?;
        let restarted = alloc["TaskStates"]["t"]["Events"]
            .as_array()
            .is_some_and(|events| {
                events.iter().any(|event| {
                    event["Type"] == "Restart Signaled"
                        && event["DisplayMessage"]
                            == "Template with change_mode restart re-rendered"
                })
            });
        let running = alloc["TaskStates"]["t"]["State"] == "running";
        Ok((restarted && running).then_some(alloc))
    })
    .await?;
    assert_eq!(alloc["TaskStates"]["s"]["Restarts"], 0, "{alloc}");
    let signalled = alloc["TaskStates"]["s"]["Events"]
        .as_array()
        .is_some_and(|events| {
            events.iter().any(|event| {
                event["Type"] == "Signaling" && event["DisplayMessage"] == "Template re-rendered"
            })
        });
    assert!(signalled, "{alloc}");
    wait_for(Duration::from_secs(30), || async {
        Ok(cat("s/local/hups").await?.contains("hup").then_some(()))
    })
    .await?;
    // `web` stopped: its instances go, and the file empties.
    dev.http
        .delete(format!("{}/v1/job/web", dev.url))
        .send()
        .await?
        .error_for_status()?;
    wait_for(Duration::from_secs(60), || async {
        Ok(cat("t/local/upstreams").await?.is_empty().then_some(()))
    })
    .await?;
    dev.agent.shutdown().await;
    Ok(())
}
