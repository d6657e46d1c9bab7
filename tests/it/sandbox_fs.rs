//! The allocation filesystem as an attacker's task code meets it, through the real `caravan agent`
//! binary (server and client in one process, raw_exec enabled) and its HTTP API: each test plants
//! a secret 0600 file outside the allocation, lets a task plant symbolic links to it (or floods
//! its logs), and checks that no host-side helper read, wrote, truncated or chmodded the secret,
//! and that the agent carried on. The docker cases run against the node's Docker daemon (they
//! skip, printing why, without one outside CI). The host-fs race under a concurrent swapper is
//! `driver_host::host::fs::tests::writes_never_land_outside_under_a_concurrent_swapper`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::support::free_port;

const SECRET: &str = "the host's secret\n";

/// A temp dir with a secret 0600 file in `outside/`, and an agent whose data dir is beside it.
struct Sandbox {
    dir: tempfile::TempDir,
    url: String,
    http: reqwest::Client,
    agent: Option<Child>,
    config: PathBuf,
}

impl Sandbox {
    async fn start(extra_client: &str) -> Result<Sandbox> {
        let dir = tempfile::tempdir()?;
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside)?;
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(outside.join("secret"), SECRET)?;
        std::fs::set_permissions(
            outside.join("secret"),
            std::fs::Permissions::from_mode(0o600),
        )?;
        let (http_port, rpc_port, serf_port) = (free_port()?, free_port()?, free_port()?);
        let config = dir.path().join("agent.hcl");
        std::fs::write(
            &config,
            format!(
                r#"
data_dir  = "{data}"
bind_addr = "127.0.0.1"
log_level = "DEBUG"
ports {{
  http = {http_port}
  rpc  = {rpc_port}
  serf = {serf_port}
}}
server {{
  enabled          = true
  bootstrap_expect = 1
}}
client {{
  enabled = true
  {extra_client}
}}
plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}
"#,
                data = dir.path().join("data").display(),
            ),
        )?;
        let mut sandbox = Sandbox {
            url: format!("http://127.0.0.1:{http_port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            agent: None,
            config,
            dir,
        };
        sandbox.spawn_agent().await?;
        Ok(sandbox)
    }

    async fn spawn_agent(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))?;
        let child = Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["agent", "-config"])
            .arg(&self.config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("spawn caravan agent")?;
        self.agent = Some(child);
        self.poll("a ready node", Duration::from_secs(60), async |sandbox| {
            let nodes = sandbox.get("/v1/nodes").await?;
            Ok(nodes
                .as_array()
                .is_some_and(|nodes| nodes.iter().any(|node| node["Status"] == "ready"))
                .then_some(()))
        })
        .await
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn secret(&self) -> PathBuf {
        self.outside().join("secret")
    }

    fn alloc_dir(&self, alloc_id: &str) -> PathBuf {
        self.dir.path().join("data/alloc").join(alloc_id)
    }

    /// The secret is as planted, nothing was created beside it, nothing was chmodded.
    fn assert_secret_untouched(&self) -> Result<()> {
        ensure!(
            std::fs::read_to_string(self.secret())? == SECRET,
            "the secret was written or truncated"
        );
        let mode = std::fs::metadata(self.secret())?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "the secret was chmodded to {mode:o}");
        let dir_mode = std::fs::metadata(self.outside())?.permissions().mode() & 0o777;
        ensure!(
            dir_mode == 0o755,
            "the outside dir was chmodded to {dir_mode:o}"
        );
        let names: Vec<_> = std::fs::read_dir(self.outside())?
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        ensure!(names == ["secret"], "files appeared outside: {names:?}");
        Ok(())
    }

    async fn get(&self, path: &str) -> Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// A GET answered as text with its status.
    async fn get_text(&self, path: &str) -> Result<(u16, String)> {
        let response = self.http.get(format!("{}{path}", self.url)).send().await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    async fn run_job(&self, job: Value) -> Result<()> {
        let response = self
            .http
            .put(format!("{}/v1/jobs", self.url))
            .json(&json!({ "Job": job }))
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "register: {}",
            response.status()
        );
        Ok(())
    }

    /// The job's first allocation once `check` accepts it.
    async fn alloc_where(
        &self,
        job: &str,
        what: &str,
        within: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        self.poll(what, within, async |sandbox| {
            let allocs = sandbox.get(&format!("/v1/job/{job}/allocations")).await?;
            let Some(stub) = allocs.as_array().and_then(|allocs| allocs.first()) else {
                return Ok(None);
            };
            let id = stub["ID"].as_str().context("alloc id")?;
            let alloc = sandbox.get(&format!("/v1/allocation/{id}")).await?;
            Ok(check(&alloc).then_some(alloc))
        })
        .await
    }

    async fn poll<T>(
        &self,
        what: &str,
        within: Duration,
        mut check: impl AsyncFnMut(&Sandbox) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + within;
        let mut last_error = None;
        loop {
            match check(self).await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(err) => last_error = Some(err),
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
                bail!(
                    "{what} not reached within {within:?} (last error: {last_error:?}); agent log, last lines first:\n{tail}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill_agent(&mut self) -> Result<()> {
        if let Some(mut child) = self.agent.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(child) = &self.agent {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while let Some(child) = self.agent.as_mut() {
                if !matches!(child.try_wait(), Ok(None)) || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.kill_agent();
        }
        // Collectors left by a killed agent: their FIFOs go with the data dir, so they exit.
        let _ = std::fs::remove_dir_all(self.dir.path().join("data/alloc"));
    }
}

fn task_state<'a>(alloc: &'a Value, task: &str) -> &'a Value {
    &alloc["TaskStates"][task]
}

fn events_text(alloc: &Value, task: &str) -> String {
    task_state(alloc, task)["Events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|event| {
                    format!(
                        "{}: {} {}",
                        event["Type"].as_str().unwrap_or_default(),
                        event["DisplayMessage"].as_str().unwrap_or_default(),
                        event["Message"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn sh_task(name: &str, script: &str) -> Value {
    json!({
        "Name": name,
        "Driver": "raw_exec",
        "Config": { "command": "/bin/sh", "args": ["-c", script] },
        "Resources": { "CPU": 20, "MemoryMB": 16 },
    })
}

fn batch_job(id: &str, tasks: Vec<Value>, restart_attempts: u32) -> Value {
    json!({
        "ID": id,
        "Type": "batch",
        "TaskGroups": [{
            "Name": "g",
            "RestartPolicy": {
                "Attempts": restart_attempts,
                "Interval": 600_000_000_000u64,
                "Delay": 200_000_000u64,
                "Mode": "fail",
            },
            "ReschedulePolicy": { "Attempts": 0, "Unlimited": false },
            "Tasks": tasks,
        }],
    })
}

/// A task plants `t.stdout.7 -> secret` and turns `t.stderr.0` into a link to it, then writes
/// enough to rotate: the logs API never serves the secret, `cat` refuses the link, and the
/// collector's rotation neither copies nor truncates the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_log_links_are_never_served_or_rotated() -> Result<()> {
    let sandbox = Sandbox::start("").await?;
    let secret = sandbox.secret().display().to_string();
    let script = format!(
        "logs=$NOMAD_ALLOC_DIR/logs; echo visible; echo first >&2; \
         ln -s {secret} $logs/t.stdout.7; rm -f $logs/t.stderr.0; ln -s {secret} $logs/t.stderr.0; \
         head -c 3000000 /dev/zero >&2; sleep 1; echo done"
    );
    let mut task = sh_task("t", &script);
    task["LogConfig"] = json!({ "MaxFiles": 2, "MaxFileSizeMB": 1 });
    sandbox
        .run_job(batch_job("planted-logs", vec![task], 0))
        .await?;
    let alloc = sandbox
        .alloc_where(
            "planted-logs",
            "the task's end",
            Duration::from_secs(60),
            |alloc| task_state(alloc, "t")["State"] == "dead",
        )
        .await?;
    let alloc_id = alloc["ID"].as_str().context("alloc id")?;
    let (status, stdout) = sandbox
        .get_text(&format!(
            "/v1/client/fs/logs/{alloc_id}?task=t&type=stdout&plain=true"
        ))
        .await?;
    ensure!(status == 200, "logs: {status} {stdout}");
    ensure!(
        stdout.contains("visible") && stdout.contains("done"),
        "{stdout:?}"
    );
    ensure!(
        !stdout.contains("secret"),
        "the planted link was served: {stdout:?}"
    );
    let (status, body) = sandbox
        .get_text(&format!(
            "/v1/client/fs/cat/{alloc_id}?path=alloc/logs/t.stdout.7"
        ))
        .await?;
    ensure!(
        status == 400 && body.contains("symbolic link"),
        "cat: {status} {body}"
    );
    ensure!(!body.contains("secret\n"), "{body}");
    let listing = sandbox
        .get(&format!("/v1/client/fs/ls/{alloc_id}?path=/alloc/logs"))
        .await?;
    let link = listing
        .as_array()
        .and_then(|entries| entries.iter().find(|entry| entry["Name"] == "t.stdout.7"))
        .context("the planted link is listed")?;
    ensure!(
        link["FileMode"]
            .as_str()
            .is_some_and(|mode| mode.starts_with('L')),
        "{link}"
    );
    // stderr rotated past the planted `.0`: capped, and the link went as a name only.
    let logs = sandbox.alloc_dir(alloc_id).join("alloc/logs");
    let stderr_files: Vec<String> = std::fs::read_dir(&logs)?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("t.stderr."))
        .collect();
    ensure!(stderr_files.len() <= 2, "max_files is 2: {stderr_files:?}");
    sandbox.assert_secret_untouched()
}

/// A task replaces `local/conf` and `secrets/` by links to the outside and exits; the restart's
/// task-dir and template hooks refuse them instead of writing or chmodding outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_hooks_do_not_follow_planted_links() -> Result<()> {
    let sandbox = Sandbox::start("").await?;
    let outside = sandbox.outside().display().to_string();
    let script = format!(
        "if [ -e local/ran ]; then exit 0; fi; touch local/ran; \
         rm -f local/conf; ln -s {outside}/secret local/conf; \
         rm -rf secrets; ln -s {outside} secrets; exit 1"
    );
    let mut task = sh_task("t", &script);
    task["Templates"] = json!([
        { "EmbeddedTmpl": "pwned", "DestPath": "local/conf", "Perms": "0666" },
        { "EmbeddedTmpl": "pwned", "DestPath": "secrets/app.env", "Perms": "0666" },
    ]);
    sandbox
        .run_job(batch_job("planted-dirs", vec![task], 1))
        .await?;
    let alloc = sandbox
        .alloc_where(
            "planted-dirs",
            "the restart's refusal",
            Duration::from_secs(60),
            |alloc| task_state(alloc, "t")["State"] == "dead",
        )
        .await?;
    let events = events_text(&alloc, "t");
    ensure!(events.contains("symbolic link"), "events: {events}");
    ensure!(
        alloc["ClientStatus"] == "failed",
        "{}",
        alloc["ClientStatus"]
    );
    sandbox.assert_secret_untouched()?;
    // The agent carried on.
    sandbox.get("/v1/nodes").await?;
    Ok(())
}

/// `file:///secret` is refused unless its directory is in the client's artifact allowlist; a
/// source from an allowed directory is fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_artifacts_only_from_allowed_directories() -> Result<()> {
    let allowed = tempfile::tempdir()?;
    std::fs::write(allowed.path().join("tool.txt"), "allowed tool\n")?;
    let sandbox = Sandbox::start(&format!(
        "artifact {{\n    file_allowlist = [\"{}\"]\n  }}",
        allowed.path().display()
    ))
    .await?;
    let mut stolen = sh_task("t", "cat local/secret");
    stolen["Artifacts"] =
        json!([{ "GetterSource": format!("file://{}", sandbox.secret().display()) }]);
    sandbox
        .run_job(batch_job("steal-artifact", vec![stolen], 0))
        .await?;
    let alloc = sandbox
        .alloc_where(
            "steal-artifact",
            "the refusal",
            Duration::from_secs(60),
            |alloc| task_state(alloc, "t")["State"] == "dead",
        )
        .await?;
    let events = events_text(&alloc, "t");
    ensure!(events.contains("file_allowlist"), "events: {events}");
    let task_dir = sandbox
        .alloc_dir(alloc["ID"].as_str().context("id")?)
        .join("t/local/secret");
    ensure!(
        !task_dir.exists(),
        "the secret was copied into the task dir"
    );
    let mut fetched = sh_task("t", "cat local/tool.txt");
    fetched["Artifacts"] =
        json!([{ "GetterSource": format!("file://{}/tool.txt", allowed.path().display()) }]);
    sandbox
        .run_job(batch_job("allowed-artifact", vec![fetched], 0))
        .await?;
    let alloc = sandbox
        .alloc_where(
            "allowed-artifact",
            "the task's end",
            Duration::from_secs(60),
            |alloc| task_state(alloc, "t")["State"] == "dead",
        )
        .await?;
    ensure!(
        alloc["ClientStatus"] == "complete",
        "{}",
        events_text(&alloc, "t")
    );
    let alloc_id = alloc["ID"].as_str().context("id")?;
    let (_, stdout) = sandbox
        .get_text(&format!(
            "/v1/client/fs/logs/{alloc_id}?task=t&type=stdout&plain=true"
        ))
        .await?;
    ensure!(stdout == "allowed tool\n", "{stdout:?}");
    sandbox.assert_secret_untouched()
}

/// The size on disk of the task's log files of `stream`.
fn logs_bytes(logs: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(logs)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum()
}

/// 2 GiB written at full speed with a 30 MB cap (3 files of 10 MiB): sampled while it writes,
/// the logs never exceed twice the cap and end within 1.2x of it, and the API answers meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_stays_capped_as_it_writes() -> Result<()> {
    const CAP: u64 = (3 * 10) << 20;
    let sandbox = Sandbox::start("").await?;
    let mut task = sh_task("flood", "head -c 2147483648 /dev/zero; echo tail-marker");
    task["LogConfig"] = json!({ "MaxFiles": 3, "MaxFileSizeMB": 10 });
    sandbox.run_job(batch_job("flood", vec![task], 0)).await?;
    let alloc = sandbox
        .alloc_where(
            "flood",
            "the flood running",
            Duration::from_secs(60),
            |alloc| !task_state(alloc, "flood")["State"].is_null(),
        )
        .await?;
    let alloc_id = alloc["ID"].as_str().context("id")?.to_owned();
    let logs = sandbox.alloc_dir(&alloc_id).join("alloc/logs");
    let started = Instant::now();
    let mut peak = 0u64;
    let mut slowest_api = Duration::ZERO;
    loop {
        peak = peak.max(logs_bytes(&logs, "flood.stdout."));
        let asked = Instant::now();
        let alloc = sandbox.get(&format!("/v1/allocation/{alloc_id}")).await?;
        slowest_api = slowest_api.max(asked.elapsed());
        if task_state(&alloc, "flood")["State"] == "dead" {
            ensure!(
                alloc["ClientStatus"] == "complete",
                "{}",
                events_text(&alloc, "flood")
            );
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(400),
            "the flood did not end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(peak <= 2 * CAP, "peak {peak} bytes > 2x the cap {CAP}");
    // The collector drains what the task wrote last.
    let (_, tail) = sandbox
        .poll("the last line", Duration::from_secs(20), async |sandbox| {
            let (status, text) = sandbox
                .get_text(&format!(
                    "/v1/client/fs/logs/{alloc_id}?task=flood&type=stdout&origin=end&offset=20&plain=true"
                ))
                .await?;
            Ok(text.contains("tail-marker").then_some((status, text)))
        })
        .await?;
    ensure!(tail.ends_with("tail-marker\n"), "{tail:?}");
    let end = logs_bytes(&logs, "flood.stdout.");
    ensure!(
        end <= CAP * 6 / 5,
        "{end} bytes at the end > 1.2x the cap {CAP}"
    );
    ensure!(
        slowest_api < Duration::from_secs(1),
        "the API took {slowest_api:?} during the flood"
    );
    eprintln!(
        "flood: peak {peak} bytes, end {end} bytes, {:?}, slowest API answer {slowest_api:?}",
        started.elapsed()
    );
    Ok(())
}

/// The collector is a process of its own: a task keeps writing while the agent is killed, and
/// what it wrote meanwhile is in its log when the next agent recovers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_collected_while_the_agent_is_down() -> Result<()> {
    let mut sandbox = Sandbox::start("").await?;
    let task = sh_task(
        "ticker",
        "i=0; while [ $i -lt 600 ]; do echo tick-$i; i=$((i+1)); sleep 0.05; done",
    );
    sandbox.run_job(batch_job("ticker", vec![task], 0)).await?;
    let alloc = sandbox
        .alloc_where(
            "ticker",
            "the ticker running",
            Duration::from_secs(60),
            |alloc| task_state(alloc, "ticker")["State"] == "running",
        )
        .await?;
    let alloc_id = alloc["ID"].as_str().context("id")?.to_owned();
    let log = sandbox
        .alloc_dir(&alloc_id)
        .join("alloc/logs/ticker.stdout.0");
    sandbox.kill_agent()?;
    let before = std::fs::read_to_string(&log).unwrap_or_default().len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&log).unwrap_or_default().len() < before + 100 {
        ensure!(
            Instant::now() < deadline,
            "nothing collected with the agent down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sandbox.spawn_agent().await?;
    sandbox
        .alloc_where(
            "ticker",
            "the ticker's end",
            Duration::from_secs(90),
            |alloc| task_state(alloc, "ticker")["State"] == "dead",
        )
        .await?;
    // (A recovered raw_exec task's exit status is unknown to the new agent, so the task may be
    // marked failed; what matters here is that no line was lost.)
    let (_, stdout) = sandbox
        .get_text(&format!(
            "/v1/client/fs/logs/{alloc_id}?task=ticker&type=stdout&plain=true"
        ))
        .await?;
    let expected: String = (0..600).map(|i| format!("tick-{i}\n")).collect();
    ensure!(
        stdout == expected,
        "lost lines: {} of {} bytes",
        stdout.len(),
        expected.len()
    );
    Ok(())
}

/// Docker, against the node's daemon: a container plants `ln -s / /alloc/data/hostroot`; another
/// task's `volumes = ["../alloc/data/hostroot:/host"]` is refused (host volumes enabled even),
/// and `network_mode = "host"` is refused without the plugin's `allow_host_network = true`.
#[tokio::test]
async fn docker_never_mounts_a_planted_link_nor_joins_the_host_network() -> Result<()> {
    use caravan::driver_host::{DriverHost, DriverHostConfig, Resources, TaskConfig, TaskScope};
    use std::collections::BTreeMap;

    if !crate::docker::docker_ready()? {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let alloc_id = format!("it-sandbox-{nanos:x}");
    let alloc_dir = dir.path().join(&alloc_id);
    let logs = alloc_dir.join("alloc/logs");
    std::fs::create_dir_all(&logs)?;
    std::fs::create_dir_all(alloc_dir.join("alloc/data"))?;
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let filter = format!("label=caravan.alloc_id={}", self.0);
            if let Ok(ids) = crate::docker::docker_cli(&["ps", "-aq", "--filter", &filter]) {
                for id in ids.lines() {
                    let _ = crate::docker::docker_cli(&["rm", "-f", id]);
                }
            }
        }
    }
    let _cleanup = Cleanup(alloc_id.clone());
    // A task's scope (the client's record) and config.
    let task = |name: &str, config: Value| -> Result<(TaskScope, TaskConfig)> {
        let mut scope = TaskScope::new(
            &alloc_id,
            name,
            &alloc_dir,
            logs.join(format!("{name}.stdout.0")),
            logs.join(format!("{name}.stderr.0")),
        );
        for sub in ["local", "secrets", "tmp"] {
            std::fs::create_dir_all(scope.task_dir.join(sub))?;
        }
        scope.resources = Resources {
            cpu_mhz: 100,
            memory_mb: 64,
            memory_max_mb: 0,
        };
        Ok((
            scope,
            TaskConfig {
                job_name: String::from("sandbox"),
                group_name: String::from("g"),
                config,
                env: BTreeMap::from([(String::from("NOMAD_ALLOC_DIR"), String::from("/alloc"))]),
                ..TaskConfig::default()
            },
        ))
    };
    let host = DriverHost::new(DriverHostConfig {
        plugins: BTreeMap::from([(
            String::from("docker"),
            json!({ "volumes": { "enabled": true } }),
        )]),
        ..DriverHostConfig::default()
    })?;
    let docker = host.driver("docker").await?;
    let planter = task(
        "planter",
        json!({
            "image": crate::docker::TEST_IMAGE,
            "command": "/bin/sh",
            "args": ["-c", "ln -s / /alloc/data/hostroot"],
        }),
    )?;
    let handle = docker.start_task(&planter.0, &planter.1).await?;
    let exit = docker.wait_task(&planter.0, &handle).await?;
    ensure!(exit.exit_code == 0, "{exit:?}");
    let planted = alloc_dir.join("alloc/data/hostroot");
    ensure!(
        planted.symlink_metadata()?.file_type().is_symlink(),
        "the container planted its link"
    );
    let victim = task(
        "victim",
        json!({
            "image": crate::docker::TEST_IMAGE,
            "command": "/bin/sh",
            "args": ["-c", "cat /host/etc/hostname"],
            "volumes": ["../alloc/data/hostroot:/host"],
        }),
    )?;
    let err = docker
        .start_task(&victim.0, &victim.1)
        .await
        .err()
        .context("a bind mount of the planted link must be refused")?;
    ensure!(err.to_string().contains("symbolic link"), "{err}");
    let host_network = task(
        "hostnet",
        json!({
            "image": crate::docker::TEST_IMAGE,
            "command": "/bin/true",
            "network_mode": "host",
        }),
    )?;
    let err = docker
        .start_task(&host_network.0, &host_network.1)
        .await
        .err()
        .context("network_mode host must be refused without the grant")?;
    ensure!(err.to_string().contains("allow_host_network"), "{err}");
    Ok(())
}
