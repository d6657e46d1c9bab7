//! The exec driver end to end: the real `caravan agent` (server and client in one process on
//! loopback ports), the real exec driver and `host-isolated`: a task sees only its own PID
//! namespace and its chroot, is OOM-killed past its memory (the task event says so), and its
//! children die with it on `job stop`; `node status -verbose` lists exec healthy.
//!
//! exec needs root (as Nomad's); without it the tests skip, printing why, except with `CI` set.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::support::free_port;

const WITHIN: Duration = Duration::from_secs(60);

fn exec_ready() -> Result<bool> {
    if nix::unistd::geteuid().is_root() {
        return Ok(true);
    }
    if std::env::var_os("CI").is_some() {
        bail!("CI is set but the tests do not run as root: exec needs root");
    }
    eprintln!("skipping: the exec driver needs root");
    Ok(false)
}

/// A running `caravan agent`; SIGTERM on drop.
struct Agent {
    child: Child,
    dir: tempfile::TempDir,
    config: PathBuf,
    url: String,
    http: reqwest::Client,
}

impl Agent {
    fn start() -> Result<Agent> {
        Agent::start_with_client("")
    }

    /// An agent whose `client` block also holds `client_extra` (host volumes...).
    fn start_with_client(client_extra: &str) -> Result<Agent> {
        let dir = tempfile::tempdir()?;
        let (http_port, rpc_port) = (free_port()?, free_port()?);
        let config = dir.path().join("agent.hcl");
        std::fs::write(
            &config,
            format!(
                "data_dir = {data:?}\nbind_addr = \"127.0.0.1\"\nports {{\n  http = {http_port}\n  rpc = {rpc_port}\n}}\n\
                 server {{\n  enabled = true\n  bootstrap_expect = 1\n}}\nclient {{\n  enabled = true\n  network_interface = \"lo\"\n{client_extra}\n}}\n",
                data = dir.path().join("data").display().to_string()
            ),
        )?;
        let child = spawn_agent(&config, &dir.path().join("agent.log"))?;
        Ok(Agent {
            child,
            dir,
            config,
            url: format!("http://127.0.0.1:{http_port}"),
            http: reqwest::Client::new(),
        })
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

    fn cli(&self, args: &[&str]) -> Result<String> {
        let output = Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(args)
            .env("CARAVAN_ADDR", &self.url)
            .env_remove("NOMAD_ADDR")
            .output()?;
        ensure!(
            output.status.success(),
            "caravan {args:?} exited {:?}: {}{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn run_job(&self, name: &str, hcl: &str) -> Result<()> {
        let file = self.dir.path().join(format!("{name}.nomad.hcl"));
        std::fs::write(&file, hcl)?;
        self.cli(&["job", "run", "-detach", &file.display().to_string()])?;
        Ok(())
    }

    /// The node's id once exec is healthy on it.
    async fn wait_for_exec(&self) -> Result<String> {
        poll("a node with exec healthy", WITHIN, async || {
            let nodes = self.get("/v1/nodes").await?;
            let Some(id) = nodes[0]["ID"].as_str() else {
                return Ok(None);
            };
            let node = self.get(&format!("/v1/node/{id}")).await?;
            Ok((node["Drivers"]["exec"]["Healthy"] == json!(true)).then(|| id.to_owned()))
        })
        .await
    }

    /// The allocation id and state of task `t` of the job, once it is `state`.
    async fn wait_task(&self, job: &str, state: &str) -> Result<(String, Value)> {
        let found = poll(&format!("task t {state}"), WITHIN, async || {
            let allocs = self.get(&format!("/v1/job/{job}/allocations")).await?;
            let Some(id) = allocs.get(0).and_then(|alloc| alloc["ID"].as_str()) else {
                return Ok(None);
            };
            let alloc = self.get(&format!("/v1/allocation/{id}")).await?;
            let task = alloc["TaskStates"]["t"].clone();
            Ok((task["State"] == json!(state)).then(|| (id.to_owned(), task)))
        })
        .await;
        found.with_context(|| {
            let log =
                std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            format!("agent log (newest first):\n{}", tail.join("\n"))
        })
    }
}

impl Agent {
    /// SIGTERM, as an operator stops it, waiting up to 30 s.
    fn stop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        self.child = spawn_agent(&self.config, &self.dir.path().join("agent.2.log"))?;
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_agent(config: &Path, log: &Path) -> Result<Child> {
    let log = std::fs::File::create(log)?;
    Command::new(env!("CARGO_BIN_EXE_caravan"))
        .args(["agent", "-config"])
        .arg(config)
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .context("spawn caravan agent")
}

async fn poll<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + within;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(err) => last_error = Some(err),
        }
        if Instant::now() > deadline {
            bail!("{what} not reached within {within:?} (last error: {last_error:?})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn nanos() -> Result<u128> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos())
}

/// A job of one exec task `t` running `/bin/sh -c SCRIPT`, never restarted.
fn job(name: &str, kind: &str, script: &str, memory: u32) -> String {
    format!(
        r#"job "{name}" {{
  type = "{kind}"
  group "g" {{
    restart {{
      attempts = 0
      mode     = "fail"
    }}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "t" {{
      driver       = "exec"
      kill_timeout = "2s"
      config {{
        command = "/bin/sh"
        args    = ["-c", {script:?}]
      }}
      resources {{
        cpu    = 100
        memory = {memory}
      }}
    }}
  }}
}}"#
    )
}

/// The pids of processes on the node whose command line is exactly `words`.
fn pids_running(words: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = words
        .iter()
        .flat_map(|word| [word.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (cmdline == wanted).then_some(pid)
        })
        .collect()
}

fn task_log(agent: &Agent, alloc: &str) -> Result<String> {
    agent.cli(&["alloc", "logs", alloc, "t"])
}

#[tokio::test]
async fn an_exec_task_sees_only_its_pid_namespace_and_its_chroot() -> Result<()> {
    if !exec_ready()? {
        return Ok(());
    }
    let secret: PathBuf = Path::new("/root").join(format!("caravan-exec-secret-{:x}", nanos()?));
    std::fs::write(&secret, b"host secret")?;
    let agent = Agent::start()?;
    let node = agent.wait_for_exec().await?;
    let status = agent.cli(&["node", "status", "-verbose", &node])?;
    let drivers = status
        .lines()
        .find(|line| line.starts_with("Driver Status"))
        .context("no Driver Status line")?;
    ensure!(drivers.contains("exec"), "{status}");

    let script = format!(
        "echo pid1=$(cat /proc/1/comm); echo procs=$(ls /proc | grep -c '^[0-9]'); \
         cat {} || echo secret-absent; echo user=$(id -un); \
         echo data > /local/out && echo wrote-local",
        secret.display()
    );
    agent.run_job("isolated", &job("isolated", "batch", &script, 64))?;
    let waited = agent.wait_task("isolated", "dead").await;
    std::fs::remove_file(&secret)?;
    let (alloc, task) = waited?;
    ensure!(
        task["Failed"] == json!(false),
        "the task failed: {}",
        task["Events"]
    );
    let log = task_log(&agent, &alloc)?;
    // PID 1 of the task's namespace is its own shell, and /proc lists only its few processes.
    ensure!(log.contains("pid1=sh"), "{log}");
    let procs: usize = log
        .lines()
        .find_map(|line| line.strip_prefix("procs="))
        .context("no procs line")?
        .trim()
        .parse()?;
    ensure!((1..=5).contains(&procs), "{procs} processes visible: {log}");
    // A file outside the chroot is not there; the task runs as nobody.
    ensure!(
        log.contains("secret-absent") && !log.contains("host secret"),
        "{log}"
    );
    ensure!(log.contains("user=nobody"), "{log}");
    // Its own directories are its user's.
    ensure!(log.contains("wrote-local"), "{log}");
    Ok(())
}

#[tokio::test]
async fn an_exec_task_past_its_memory_is_oom_killed() -> Result<()> {
    if !exec_ready()? {
        return Ok(());
    }
    let agent = Agent::start()?;
    agent.wait_for_exec().await?;
    // dd's 256 MiB buffer, filled from /dev/zero, against a 32 MiB limit (memory_max unset:
    // memory is the hard limit).
    let script = "dd if=/dev/zero of=/dev/null bs=256M count=1";
    agent.run_job("hog", &job("hog", "batch", script, 32))?;
    let (alloc, task) = agent.wait_task("hog", "dead").await?;
    let events = task["Events"].to_string();
    ensure!(events.contains("OOM Killed"), "{events}");
    let log = task_log(&agent, &alloc)?;
    ensure!(
        !log.contains("dd-survived") || events.contains("OOM Killed"),
        "{log}"
    );
    Ok(())
}

#[tokio::test]
async fn an_exec_tasks_children_die_with_it_on_job_stop() -> Result<()> {
    if !exec_ready()? {
        return Ok(());
    }
    let agent = Agent::start()?;
    agent.wait_for_exec().await?;
    // Two children with a number no other process on the node sleeps for.
    let seconds = (100_000 + nanos()? % 800_000).to_string();
    let script = format!("sleep {seconds} & sleep {seconds} & wait");
    agent.run_job("tree", &job("tree", "service", &script, 64))?;
    agent.wait_task("tree", "running").await?;
    poll("both children running", WITHIN, async || {
        Ok((pids_running(&["sleep", &seconds]).len() == 2).then_some(()))
    })
    .await?;
    agent.cli(&["job", "stop", "-detach", "tree"])?;
    agent.wait_task("tree", "dead").await?;
    poll("no child left", WITHIN, async || {
        Ok(pids_running(&["sleep", &seconds]).is_empty().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_exec_task_keeps_running_across_an_agent_restart_and_stops_after() -> Result<()> {
    if !exec_ready()? {
        return Ok(());
    }
    let mut agent = Agent::start()?;
    agent.wait_for_exec().await?;
    let seconds = (100_000 + nanos()? % 800_000).to_string();
    let script = format!("sleep {seconds} & wait");
    agent.run_job("kept", &job("kept", "service", &script, 64))?;
    agent.wait_task("kept", "running").await?;
    let before = poll("the child running", WITHIN, async || {
        let pids = pids_running(&["sleep", &seconds]);
        Ok((pids.len() == 1).then_some(pids))
    })
    .await?;
    agent.restart()?;
    agent.wait_for_exec().await?;
    agent.wait_task("kept", "running").await?;
    // The same process, not a restarted task.
    ensure!(pids_running(&["sleep", &seconds]) == before, "{before:?}");
    agent.cli(&["job", "stop", "-detach", "kept"])?;
    agent.wait_task("kept", "dead").await?;
    poll("no child left", WITHIN, async || {
        Ok(pids_running(&["sleep", &seconds]).is_empty().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_exec_task_gets_its_host_volumes_bound_in_its_chroot() -> Result<()> {
    if !exec_ready()? {
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    let volumes = tempfile::tempdir()?;
    let (certs, scratch) = (volumes.path().join("certs"), volumes.path().join("scratch"));
    for dir in [&certs, &scratch] {
        std::fs::create_dir(dir)?;
        // Writable by the task's user: only the read-only mount can stop a write to `certs`.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))?;
    }
    std::fs::write(certs.join("greeting.txt"), "hi from the host\n")?;
    let agent = Agent::start_with_client(&format!(
        "  host_volume \"certs\" {{\n    path = {:?}\n    read_only = true\n  }}\n  \
         host_volume \"scratch\" {{\n    path = {:?}\n  }}",
        certs.display().to_string(),
        scratch.display().to_string()
    ))?;
    agent.wait_for_exec().await?;
    let script = "cat /certs/greeting.txt; (echo x > /certs/planted) 2>/dev/null && echo planted || echo ro-refused; \
                  echo out > /data/out && echo wrote-scratch";
    let hcl = job("volumes", "batch", script, 64).replacen(
        "    task \"t\" {\n",
        "    volume \"certs\" {\n      type = \"host\"\n      source = \"certs\"\n      read_only = true\n    }\n    \
         volume \"scratch\" {\n      type = \"host\"\n      source = \"scratch\"\n    }\n    \
         task \"t\" {\n      volume_mount {\n        volume = \"certs\"\n        destination = \"/certs\"\n      }\n      \
         volume_mount {\n        volume = \"scratch\"\n        destination = \"/data\"\n      }\n",
        1,
    );
    agent.run_job("volumes", &hcl)?;
    let (alloc, task) = agent.wait_task("volumes", "dead").await?;
    ensure!(
        task["Failed"] == json!(false),
        "the task failed: {}",
        task["Events"]
    );
    let log = task_log(&agent, &alloc)?;
    ensure!(log.contains("hi from the host"), "{log}");
    ensure!(log.contains("ro-refused"), "{log}");
    ensure!(!certs.join("planted").exists(), "{log}");
    ensure!(log.contains("wrote-scratch"), "{log}");
    ensure!(
        std::fs::read_to_string(scratch.join("out"))? == "out\n",
        "{log}"
    );
    Ok(())
}
