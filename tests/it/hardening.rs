//! Hostile and careless requests against a real `caravan agent -dev` process on loopback (issue
//! 17): each gets a 4xx with a reason, the agent's peak RSS stays under a stated bound, other
//! endpoints answer within a second meanwhile, and no task is touched by a body that did not
//! decode.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::support::server::wait_for;
use crate::support::{caravan_bin, free_port};

/// The agent's peak resident memory may not pass this, whatever it is sent.
const MAX_PEAK_RSS_KB: u64 = 1024 * 1024;
/// Nor grow by more than this over the hostile requests.
const MAX_RSS_GROWTH_KB: u64 = 300 * 1024;
/// Bodies over this are refused (set small here to test the limit).
const BODY_LIMIT: usize = 1 << 20;

struct DevAgent {
    child: std::process::Child,
    url: String,
}

impl Drop for DevAgent {
    /// SIGTERM first: a `-dev` agent that stops stops its tasks and their log collectors, where
    /// a SIGKILL would leave them running. SIGKILL only if it does not go within 20 s.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DevAgent {
    fn start(dir: &Path) -> Result<Self> {
        let (http, rpc) = (free_port()?, free_port()?);
        let config = dir.join("ports.hcl");
        std::fs::write(
            &config,
            format!(
                "ports {{\n  http = {http}\n  rpc = {rpc}\n}}\nserver {{\n  max_request_body_size = {BODY_LIMIT}\n}}\n"
            ),
        )?;
        let log = std::fs::File::create(dir.join("agent.log"))?;
        let child = Command::new(caravan_bin())
            .args(["agent", "-dev", "-config"])
            .arg(&config)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting caravan agent -dev")?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{http}"),
        })
    }

    /// `VmRSS` and `VmHWM` (peak) of the agent, in kB.
    fn rss_kb(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .context("field in /proc status")?
                .parse()
                .context("a number of kB")
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// What a hostile request must get: its status and a part of the reason.
struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    body: Vec<u8>,
    status: u16,
    reason: &'static str,
}

fn case(
    name: &'static str,
    method: &str,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    reason: &'static str,
) -> Case {
    Case {
        name,
        method: method.parse().unwrap_or(reqwest::Method::PUT),
        path: path.to_owned(),
        body: body.into(),
        status,
        reason,
    }
}

fn job_with(group: Value) -> Vec<u8> {
    let mut group = group;
    if group.get("Tasks").is_none() {
        group["Tasks"] =
            json!([{ "Name": "t", "Driver": "raw_exec", "Config": { "command": "/bin/true" } }]);
    }
    if group.get("Name").is_none() {
        group["Name"] = json!("g");
    }
    json!({ "Job": { "ID": "hostile", "TaskGroups": [group] } })
        .to_string()
        .into_bytes()
}

fn job_with_task(task: Value) -> Vec<u8> {
    let mut task = task;
    if task.get("Name").is_none() {
        task["Name"] = json!("t");
    }
    task["Driver"] = json!("raw_exec");
    task["Config"] = json!({ "command": "/bin/true" });
    job_with(json!({ "Tasks": [task] }))
}

/// The issue's 875-byte parse body: 29 nested `replace(..., "a", "aa")` in a meta value.
fn nested_replace_body() -> Vec<u8> {
    let mut expr = "\"aaaaaaaaaa\"".to_owned();
    for _ in 0..29 {
        expr = format!("replace({expr},\"a\",\"aa\")");
    }
    let hcl = format!(
        "job \"x\" {{\n meta {{ x = {expr} }}\n group \"g\" {{\n  task \"t\" {{ driver = \"raw_exec\" }}\n }}\n}}\n"
    );
    json!({ "JobHCL": hcl }).to_string().into_bytes()
}

/// Polls `GET /v1/status/leader` until stopped and keeps the slowest answer, in ms.
fn probe_latency(
    url: String,
    stop: Arc<AtomicBool>,
    slowest_ms: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let answered = http
                .get(format!("{url}/v1/status/leader"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            let elapsed = if answered {
                started.elapsed().as_millis() as u64
            } else {
                u64::MAX
            };
            slowest_ms.fetch_max(elapsed, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

async fn json_of(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let text = response.text().await?;
    ensure!(status.is_success(), "status {status}: {text}");
    Ok(serde_json::from_str(&text)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_and_the_agent_stays_small() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agent = DevAgent::start(dir.path())?;
    let url = agent.url.clone();
    // A refused request may close its connection (the over-long body is not read): no
    // connection is reused, so the next case never lands on one the agent closed.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let node: Value = wait_for(Duration::from_secs(60), || async {
        let Ok(response) = http.get(format!("{url}/v1/nodes")).send().await else {
            return Ok(None);
        };
        let nodes: Vec<Value> = response.json().await.unwrap_or_default();
        Ok(nodes.into_iter().find(|node| node["Status"] == "ready"))
    })
    .await?;
    let node_id = node["ID"].as_str().context("node ID")?.to_owned();

    // A task whose pid must not change: it writes its pid once and sleeps.
    let pid_file = dir.path().join("task.pid");
    let task_job = json!({ "Job": {
        "ID": "victim",
        "TaskGroups": [{ "Name": "g", "Tasks": [{
            "Name": "t",
            "Driver": "raw_exec",
            "Config": { "command": "/bin/sh", "args": ["-c", format!("echo $$ > {}; exec sleep 600", pid_file.display())] },
            "Resources": { "CPU": 20, "MemoryMB": 16 },
        }]}],
    }});
    json_of(
        http.put(format!("{url}/v1/jobs"))
            .json(&task_job)
            .send()
            .await?,
    )
    .await?;
    let pid: String = wait_for(Duration::from_secs(30), || async {
        Ok(std::fs::read_to_string(&pid_file)
            .ok()
            .filter(|text| text.ends_with('\n')))
    })
    .await?;
    let allocs = json_of(
        http.get(format!("{url}/v1/job/victim/allocations"))
            .send()
            .await?,
    )
    .await?;
    let alloc_id = allocs[0]["ID"]
        .as_str()
        .context("victim's allocation")?
        .to_owned();

    let (_, baseline_peak) = agent.rss_kb()?;
    let stop = Arc::new(AtomicBool::new(false));
    let slowest_ms = Arc::new(AtomicU64::new(0));
    let prober = probe_latency(url.clone(), stop.clone(), slowest_ms.clone());

    let long_name = "n".repeat(4096);
    let mut cases = vec![
        case("a billion allocations", "PUT", "/v1/jobs", job_with(json!({ "Count": 1_000_000_000 })), 400, "server.job_max_placements"),
        case("a billion allocations, planned", "PUT", "/v1/job/hostile/plan", job_with(json!({ "Count": 1_000_000_000 })), 400, "server.job_max_placements"),
        case("101 groups", "PUT", "/v1/jobs", json!({ "Job": { "ID": "hostile", "TaskGroups": (0..101).map(|idx| json!({ "Name": format!("g{idx}"), "Tasks": [{ "Name": "t", "Driver": "raw_exec" }] })).collect::<Vec<_>>() } }).to_string(), 400, "server.job_max_task_groups"),
        case("101 tasks", "PUT", "/v1/jobs", job_with(json!({ "Tasks": (0..101).map(|idx| json!({ "Name": format!("t{idx}"), "Driver": "raw_exec" })).collect::<Vec<_>>() })), 400, "server.job_max_tasks_per_group"),
        case("a body over the limit", "PUT", "/v1/jobs", vec![b' '; BODY_LIMIT + 1], 400, "server.max_request_body_size"),
        case("29 nested replace()", "POST", "/v1/jobs/parse", nested_replace_body(), 400, "bytes per value"),
        case("a task named ..", "PUT", "/v1/jobs", job_with_task(json!({ "Name": ".." })), 400, "task name \"..\" is not allowed"),
        case("a task named .", "PUT", "/v1/jobs", job_with_task(json!({ "Name": "." })), 400, "is not allowed"),
        case("a backslash", "PUT", "/v1/jobs", job_with_task(json!({ "Name": "a\\b" })), 400, "must not contain '\\\\'"),
        case("a NUL", "PUT", "/v1/jobs", job_with_task(json!({ "Name": "a\u{0}b" })), 400, "must not contain '\\0'"),
        case("a 4096-character name", "PUT", "/v1/jobs", job_with_task(json!({ "Name": long_name.as_str() })), 400, "the limit is 128"),
        case("a group named ../x", "PUT", "/v1/jobs", job_with(json!({ "Name": "../x" })), 400, "task group name"),
        case("kill timeout -1", "PUT", "/v1/jobs", job_with_task(json!({ "KillTimeout": -1 })), 400, "Job.TaskGroups[0].Tasks[0].KillTimeout: duration must be a positive value"),
        case("restart interval -1", "PUT", "/v1/jobs", job_with(json!({ "RestartPolicy": { "Interval": -1 } })), 400, "RestartPolicy.Interval"),
        case("disk -1", "PUT", "/v1/jobs", job_with(json!({ "EphemeralDisk": { "SizeMB": -1 } })), 400, "minimum DiskMB value is 10; got -1"),
        case("cpu -1", "PUT", "/v1/jobs", job_with_task(json!({ "Resources": { "CPU": -1 } })), 400, "cpu can't be negative"),
        case("an array as the job", "PUT", "/v1/jobs", r#"{"Job": ["hostile", "service"]}"#, 400, "Job: invalid type: sequence, expected struct"),
        case("an array as the body", "PUT", "/v1/jobs", r#"[{"ID": "hostile"}]"#, 400, "invalid type: sequence"),
        case("not json", "PUT", "/v1/jobs", "this is not json", 400, "failed to decode request body"),
        case("an invalid cron spec", "PUT", "/v1/jobs", json!({ "Job": { "ID": "hostile", "Type": "batch", "Periodic": { "Enabled": true, "Spec": "61 * * * *" }, "TaskGroups": [{ "Name": "g", "Tasks": [{ "Name": "t", "Driver": "raw_exec" }] }] } }).to_string(), 400, "Invalid cron spec \"61 * * * *\""),
        case("[] as a drain body", "POST", &format!("/v1/node/{node_id}/drain"), "[]", 400, "invalid type: sequence"),
        case("an absurd node", "PUT", "/v1/internal/node/register", json!({ "Node": { "ID": "11111111-2222-4333-8444-555555555555", "SecretID": "s", "NodeResources": { "Cpu": { "CpuShares": 1_000_000_000_000i64 }, "Memory": { "MemoryMB": 1_000_000_000_000i64 } } } }).to_string(), 400, "NodeResources.Cpu.CpuShares"),
        case("another node's ID", "PUT", "/v1/internal/node/register", json!({ "Node": { "ID": node_id, "SecretID": "not-the-secret", "Status": "ready" } }).to_string(), 403, "node secret ID does not match. Not registering node."),
        case("another node's heartbeat", "PUT", &format!("/v1/internal/node/{node_id}/heartbeat"), r#"{"SecretID": "not-the-secret"}"#, 403, "Permission denied"),
        case("signal: not json", "POST", &format!("/v1/client/allocation/{alloc_id}/signal"), "this is not json", 400, "failed to decode request body"),
        case("signal: an array", "POST", &format!("/v1/client/allocation/{alloc_id}/signal"), r#"["SIGKILL"]"#, 400, "invalid type: sequence"),
        case("signal: no body", "POST", &format!("/v1/client/allocation/{alloc_id}/signal"), "", 400, "missing request body"),
        case("restart: {{{{", "POST", &format!("/v1/client/allocation/{alloc_id}/restart"), "{{{{", 400, "key must be a string"),
        case("restart: a string", "POST", &format!("/v1/client/allocation/{alloc_id}/restart"), r#""web""#, 400, "invalid type: string"),
    ];
    for case in cases.drain(..) {
        let started = Instant::now();
        let response = http
            .request(case.method.clone(), format!("{url}{}", case.path))
            .body(case.body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        ensure!(
            status == case.status && text.contains(case.reason),
            "{}: got {status} {text:?}, want {} containing {:?}",
            case.name,
            case.status,
            case.reason
        );
        ensure!(
            text.len() < 16 << 10,
            "{}: a small answer, got {} bytes",
            case.name,
            text.len()
        );
        ensure!(
            started.elapsed() < Duration::from_secs(5),
            "{}: answered in {:?}",
            case.name,
            started.elapsed()
        );
    }

    stop.store(true, Ordering::Relaxed);
    prober.await?;
    let slowest = slowest_ms.load(Ordering::Relaxed);
    ensure!(
        slowest < 1000,
        "another endpoint took {slowest} ms meanwhile"
    );

    let (rss, peak) = agent.rss_kb()?;
    ensure!(
        peak < MAX_PEAK_RSS_KB,
        "peak RSS {peak} kB over {MAX_PEAK_RSS_KB} kB"
    );
    ensure!(
        peak.saturating_sub(baseline_peak) < MAX_RSS_GROWTH_KB,
        "peak RSS grew from {baseline_peak} kB to {peak} kB (now {rss} kB)"
    );

    // No body that failed to decode touched the task: same pid, alive, no restart or signal.
    ensure!(
        std::fs::read_to_string(&pid_file)? == pid,
        "the task was restarted"
    );
    let pid: i32 = pid.trim().parse()?;
    ensure!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the task's process {pid} is gone"
    );
    let alloc: Value = json_of(
        http.get(format!("{url}/v1/allocation/{alloc_id}"))
            .send()
            .await?,
    )
    .await?;
    let events: Vec<&str> = alloc["TaskStates"]["t"]["Events"]
        .as_array()
        .context("task events")?
        .iter()
        .filter_map(|event| event["Type"].as_str())
        .collect();
    ensure!(
        !events
            .iter()
            .any(|event| matches!(*event, "Restarting" | "Signaling" | "Killing")),
        "events {events:?}"
    );
    // A drain deadline at the end of time saturates instead of wrapping into the past.
    json_of(
        http.post(format!("{url}/v1/node/{node_id}/drain"))
            .body(
                json!({ "DrainSpec": { "Deadline": i64::MAX }, "MarkEligible": false }).to_string(),
            )
            .send()
            .await?,
    )
    .await?;
    let drained: Value =
        json_of(http.get(format!("{url}/v1/node/{node_id}")).send().await?).await?;
    let force_deadline = drained["DrainStrategy"]["ForceDeadline"]
        .as_i64()
        .context("ForceDeadline")?;
    ensure!(force_deadline == i64::MAX, "ForceDeadline {force_deadline}");

    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_a_job_cancels_its_blocked_evaluation() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agent = DevAgent::start(dir.path())?;
    let url = agent.url.clone();
    let http = reqwest::Client::new();
    wait_for(Duration::from_secs(60), || async {
        let Ok(response) = http.get(format!("{url}/v1/nodes")).send().await else {
            return Ok(None);
        };
        let nodes: Vec<Value> = response.json().await.unwrap_or_default();
        Ok(nodes
            .iter()
            .any(|node| node["Status"] == "ready")
            .then_some(()))
    })
    .await?;
    // 100,000 allocations no node can take: the first failure ends the group's placement, so the
    // evaluation finishes at once and a blocked one waits for capacity.
    let job = json!({ "Job": {
        "ID": "unplaceable",
        "Constraints": [{ "LTarget": "${attr.kernel.name}", "RTarget": "plan9", "Operand": "=" }],
        "TaskGroups": [{ "Name": "g", "Count": 100_000, "Tasks": [{
            "Name": "t", "Driver": "raw_exec", "Config": { "command": "/bin/true" },
        }]}],
    }});
    let started = Instant::now();
    let registered = json_of(http.put(format!("{url}/v1/jobs")).json(&job).send().await?).await?;
    let eval_id = registered["EvalID"].as_str().context("EvalID")?.to_owned();
    let eval: Value = wait_for(Duration::from_secs(30), || async {
        let eval: Value = json_of(
            http.get(format!("{url}/v1/evaluation/{eval_id}"))
                .send()
                .await?,
        )
        .await?;
        Ok((eval["Status"] == "complete").then_some(eval))
    })
    .await?;
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    ensure!(
        eval["FailedTGAllocs"]["g"]["CoalescedFailures"] == 99_999,
        "failures coalesced without being generated: {}",
        eval["FailedTGAllocs"]
    );
    let blocked_id = eval["BlockedEval"]
        .as_str()
        .context("a blocked eval")?
        .to_owned();
    let (_, peak) = agent.rss_kb()?;
    ensure!(peak < MAX_PEAK_RSS_KB, "peak RSS {peak} kB");

    json_of(
        http.delete(format!("{url}/v1/job/unplaceable?purge=true"))
            .send()
            .await?,
    )
    .await?;
    wait_for(Duration::from_secs(10), || async {
        let blocked: Value = json_of(
            http.get(format!("{url}/v1/evaluation/{blocked_id}"))
                .send()
                .await?,
        )
        .await?;
        Ok((blocked["Status"] == "canceled").then_some(()))
    })
    .await
    .context("the blocked evaluation is cancelled by the purge")?;
    Ok(())
}

/// `caravan job validate` and `job run -output` evaluate under the same budget, var files
/// included: the issue's file fails fast with a short error instead of taking a gigabyte.
#[test]
fn the_cli_evaluates_job_files_within_the_budget() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut expr = "\"aaaaaaaaaa\"".to_owned();
    for _ in 0..29 {
        expr = format!("replace({expr}, \"a\", \"aa\")");
    }
    let job = format!(
        "variable \"x\" {{\n  default = \"\"\n}}\njob \"bomb\" {{\n  meta {{\n    x = {expr}\n    y = var.x\n  }}\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n    }}\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join("bomb.nomad.hcl"), &job)?;
    std::fs::write(dir.path().join("bomb.vars.hcl"), format!("x = {expr}\n"))?;
    std::fs::write(
        dir.path().join("ok.nomad.hcl"),
        job.replace(&expr, "\"fine\""),
    )?;
    for args in [
        vec!["job", "validate", "bomb.nomad.hcl"],
        vec!["job", "run", "-output", "bomb.nomad.hcl"],
        vec![
            "job",
            "validate",
            "-var-file",
            "bomb.vars.hcl",
            "ok.nomad.hcl",
        ],
    ] {
        let started = Instant::now();
        let run = crate::support::caravan(dir.path(), &args)?;
        ensure!(run.code == Some(1), "{args:?}: {run:?}");
        ensure!(
            run.stderr.contains("bytes per value"),
            "{args:?}: {}",
            run.stderr
        );
        ensure!(run.stderr.len() < 4096, "{args:?}: a short error");
        ensure!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    let run = crate::support::caravan(dir.path(), &["job", "validate", "ok.nomad.hcl"])?;
    ensure!(
        run.code == Some(0),
        "the same file within budget validates: {run:?}"
    );
    Ok(())
}
