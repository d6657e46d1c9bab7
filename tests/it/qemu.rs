//! The qemu driver end to end: the real `caravan agent` (server and client in one process on
//! loopback ports), the real qemu-system-x86_64 under TCG and the test guest that
//! `scripts/build-qemu-guest.sh` builds (Debian's cloud kernel + a busybox initramfs; cached
//! under the target directory, built once). The CLI is the user's view: `node status -verbose`,
//! `alloc logs`, `job stop`.
//!
//! Skips (printing why) when qemu-system-x86_64 is absent, except with `CI` set, where that is a
//! failure. Each test boots at most two VMs (about 5 CPU-seconds each under TCG).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::support::free_port;

/// How long a VM may take to boot on a loaded 2-core machine.
const BOOT: Duration = Duration::from_secs(120);

/// Whether qemu is here; `false` (with the reason printed) only outside CI.
fn qemu_ready() -> Result<bool> {
    let found = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            bail!("CI is set but qemu-system-x86_64 is not installed: run scripts/setup.sh");
        }
        eprintln!("skipping: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)");
        return Ok(false);
    }
    Ok(true)
}

/// The test guest, built once per target directory by scripts/build-qemu-guest.sh.
fn guest() -> Result<PathBuf> {
    let dir = Path::new(env!("CARAVAN_WASM_GUESTS_DIR"))
        .parent()
        .context("target dir")?
        .join("qemu-guest");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-qemu-guest.sh");
    let output = Command::new(&script)
        .arg(&dir)
        .output()
        .with_context(|| format!("run {}", script.display()))?;
    ensure!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(dir)
}

/// A running `caravan agent` with the qemu plugin configured; SIGTERM on drop.
struct Agent {
    child: Child,
    dir: tempfile::TempDir,
    config: PathBuf,
    url: String,
    http: reqwest::Client,
}

impl Agent {
    /// An agent whose qemu plugin config has `image_paths = [<its images dir>]` and then
    /// `plugin_config`.
    fn start(plugin_config: &str) -> Result<Agent> {
        let dir = tempfile::tempdir()?;
        let images = dir.path().join("images");
        std::fs::create_dir(&images)?;
        let plugin_config = format!(
            "image_paths = [{:?}]\n{plugin_config}",
            images.display().to_string()
        );
        let (http_port, rpc_port) = (free_port()?, free_port()?);
        let config = dir.path().join("agent.hcl");
        std::fs::write(
            &config,
            format!(
                "data_dir = {data:?}\nbind_addr = \"127.0.0.1\"\nports {{\n  http = {http_port}\n  rpc = {rpc_port}\n}}\n\
                 server {{\n  enabled = true\n  bootstrap_expect = 1\n}}\nclient {{\n  enabled = true\n  network_interface = \"lo\"\n}}\n\
                 plugin \"qemu\" {{\n  config {{\n{plugin_config}\n  }}\n}}\n",
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

    /// Stops the agent as an operator would (SIGTERM) and starts it again on the same config.
    fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.child = spawn_agent(&self.config, &self.dir.path().join("agent.2.log"))?;
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("the agent did not exit within 30s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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

    /// `caravan ARGS` against this agent; fails unless it exits 0.
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

    /// A private copy of the guest's data disk (qemu locks an image it has open).
    fn image(&self, guest: &Path, name: &str) -> Result<PathBuf> {
        let path = self.dir.path().join("images").join(format!("{name}.qcow2"));
        std::fs::copy(guest.join("data.qcow2"), &path)?;
        Ok(path)
    }

    /// Submits the HCL job through `caravan job run -detach`.
    fn run_job(&self, name: &str, hcl: &str) -> Result<()> {
        let file = self.dir.path().join(format!("{name}.nomad.hcl"));
        std::fs::write(&file, hcl)?;
        self.cli(&["job", "run", "-detach", &file.display().to_string()])?;
        Ok(())
    }

    async fn wait_for_qemu(&self) -> Result<Value> {
        poll(
            "a node with qemu healthy",
            Duration::from_secs(60),
            async || {
                let nodes = self.get("/v1/nodes").await?;
                let Some(id) = nodes[0]["ID"].as_str() else {
                    return Ok(None);
                };
                let node = self.get(&format!("/v1/node/{id}")).await?;
                Ok((node["Drivers"]["qemu"]["Healthy"] == json!(true)).then_some(node))
            },
        )
        .await
    }

    /// The job's only allocation and its task `vm`.
    async fn task(&self, job: &str) -> Result<Option<(Value, Value)>> {
        let allocs = self.get(&format!("/v1/job/{job}/allocations")).await?;
        let Some(id) = allocs.get(0).and_then(|alloc| alloc["ID"].as_str()) else {
            return Ok(None);
        };
        let alloc = self.get(&format!("/v1/allocation/{id}")).await?;
        let task = alloc["TaskStates"]["vm"].clone();
        Ok((!task.is_null()).then_some((alloc, task)))
    }

    async fn wait_task(&self, job: &str, state: &str) -> Result<(Value, Value)> {
        let result = poll(&format!("task vm {state}"), BOOT, async || {
            Ok(self
                .task(job)
                .await?
                .filter(|(_, task)| task["State"] == json!(state)))
        })
        .await;
        if result.is_err() {
            let found = self.task(job).await.ok().flatten();
            let stderr = found
                .as_ref()
                .and_then(|(alloc, _)| alloc["ID"].as_str())
                .and_then(|id| self.cli(&["alloc", "logs", "-stderr", id, "vm"]).ok())
                .unwrap_or_default();
            let seen = found.map(|(_, task)| task["Events"].clone());
            let log =
                std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
            return result.with_context(|| {
                format!(
                    "task events: {seen:?}\nstderr: {stderr}\nagent log (newest first):\n{tail}"
                )
            });
        }
        result
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.stop();
        }
        // Tasks outlive their agent by design: a failed test's VMs go here. Their command
        // lines name this agent's directory (images, sockets).
        for pid in qemu_pids(&self.dir.path().display().to_string()) {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
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

/// The pids of qemu processes whose command line holds `marker`.
fn qemu_pids(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with("qemu-system-x86_64") && cmdline.contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

fn unique(prefix: &str) -> Result<String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    Ok(format!("{prefix}-{nanos:x}"))
}

/// A job booting the test guest with the kernel and initrd as task args (as Nomad users pass
/// them), forwarding the guest's HTTP port.
fn vm_job(
    job: &str,
    guest: &Path,
    image: &Path,
    marker: &str,
    extra_config: &str,
    kill_timeout: &str,
) -> String {
    let kernel = guest.join("vmlinuz").display().to_string();
    let initrd = guest.join("initrd.gz").display().to_string();
    let image = image.display().to_string();
    format!(
        r#"job "{job}" {{
  group "g" {{
    network {{
      port "http" {{}}
    }}
    restart {{
      attempts = 0
      mode     = "fail"
    }}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "vm" {{
      driver       = "qemu"
      kill_timeout = "{kill_timeout}"
      config {{
        image_path = "{image}"
        args       = ["-kernel", "{kernel}", "-initrd", "{initrd}", "-append", "console=ttyS0 quiet {marker}"]
        port_map {{
          http = 80
        }}
        {extra_config}
      }}
      resources {{
        cpu    = 500
        memory = 128
      }}
    }}
  }}
}}"#
    )
}

fn event_types(task: &Value) -> Vec<String> {
    task["Events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|event| event["Type"].as_str().map(str::to_owned))
        .collect()
}

fn event<'a>(task: &'a Value, kind: &str) -> Option<&'a Value> {
    task["Events"]
        .as_array()?
        .iter()
        .rev()
        .find(|event| event["Type"] == json!(kind))
}

/// The guest's HTTP page on `host:port`, retried while the guest brings up its network.
async fn http_answer(http: &reqwest::Client, host: &str) -> Result<String> {
    poll("the guest's HTTP answer", BOOT, async || {
        let response = http
            .get(format!("http://{host}/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await?;
        Ok(Some(response.error_for_status()?.text().await?))
    })
    .await
}

/// A booted VM of a job.
struct Vm {
    job: String,
    /// The guest's kernel command line marker, unique to the job.
    marker: String,
    alloc_id: String,
    /// The host address and port its HTTP port is forwarded on.
    host: String,
}

/// Runs a VM job with graceful_shutdown and waits until its guest answers HTTP on the port the
/// scheduler chose (on loopback) and its serial console is in `alloc logs`.
async fn boot_vm(agent: &Agent, guest: &Path, prefix: &str) -> Result<Vm> {
    let job = unique(prefix)?;
    let marker = format!("marker={job}");
    let image = agent.image(guest, &job)?;
    let hcl = vm_job(
        &job,
        guest,
        &image,
        &marker,
        "graceful_shutdown = true\n        guest_agent       = true",
        "30s",
    )
    // A core of its own: the VM gets as many virtual CPUs (`-smp`) as cores it reserved.
    .replace("cpu    = 500", "cores  = 1");
    agent.run_job(&job, &hcl)?;
    let (alloc, _) = agent.wait_task(&job, "running").await?;
    let alloc_id = alloc["ID"].as_str().context("alloc id")?.to_owned();
    let reserved = &alloc["AllocatedResources"]["Tasks"]["vm"]["Cpu"]["ReservedCores"];
    ensure!(
        reserved.as_array().is_some_and(|cores| cores.len() == 1),
        "{reserved}"
    );
    let smp = qemu_pids(&marker).into_iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| cmdline.windows(7).any(|arg| arg == b"-smp\x001\x00"))
    });
    ensure!(smp, "qemu runs with -smp 1 for one reserved core");
    let port = &alloc["AllocatedResources"]["Shared"]["Ports"][0];
    let host_ip = port["HostIP"].as_str().context("host ip")?;
    ensure!(host_ip == "127.0.0.1", "{port}");
    let host = format!("{host_ip}:{}", port["Value"].as_u64().context("port")?);
    let answer = http_answer(&agent.http, &host).await?;
    ensure!(answer.trim() == format!("caravan-guest {job}"), "{answer}");
    // The serial console is the task's stdout.
    let logs = poll("the console in alloc logs", BOOT, async || {
        let logs = agent.cli(&["alloc", "logs", &alloc_id, "vm"])?;
        Ok(logs.contains("CARAVAN_GUEST_READY").then_some(logs))
    })
    .await?;
    ensure!(
        logs.contains(&format!("CARAVAN_GUEST_BOOTED {marker}")),
        "{logs}"
    );
    Ok(Vm {
        job,
        marker,
        alloc_id,
        host,
    })
}

/// `job stop` of a VM with graceful_shutdown: the guest's own power-down message is in the logs,
/// the Killed event has no error and qemu is gone. Returns the dead task.
async fn stop_gracefully(agent: &Agent, vm: &Vm) -> Result<Value> {
    agent.cli(&["job", "stop", "-detach", &vm.job])?;
    let (_, task) = agent.wait_task(&vm.job, "dead").await?;
    let logs = agent.cli(&["alloc", "logs", &vm.alloc_id, "vm"])?;
    ensure!(logs.contains("CARAVAN_GUEST_POWERDOWN"), "{logs}");
    let killed = event(&task, "Killed").context("no Killed event")?;
    ensure!(
        killed["KillError"].as_str().unwrap_or("").is_empty(),
        "{killed}"
    );
    ensure!(qemu_pids(&vm.marker).is_empty(), "qemu is gone");
    Ok(task)
}

/// The tutorial's node status, then a VM from boot to a graceful `job stop` (qemu exits 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_boots_serves_its_port_logs_its_console_and_powers_off_on_job_stop() -> Result<()> {
    if !qemu_ready()? {
        return Ok(());
    }
    let guest = guest()?;
    let agent = Agent::start("")?;

    // `caravan node status -verbose`: qemu detected and healthy, with qemu's own version.
    let node = agent.wait_for_qemu().await?;
    let node_id = node["ID"].as_str().context("node id")?.to_owned();
    let version = String::from_utf8(
        Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()?
            .stdout,
    )?;
    let status = agent.cli(&["node", "status", "-verbose", &node_id])?;
    let drivers = status
        .lines()
        .find(|line| line.starts_with("Driver Status"))
        .context("no Driver Status line")?;
    ensure!(drivers.contains("qemu"), "{status}");
    let reported = status
        .lines()
        .find(|line| line.starts_with("driver.qemu.version"))
        .context("no driver.qemu.version attribute")?;
    let reported = reported.rsplit(' ').next().unwrap_or_default();
    ensure!(
        !reported.is_empty() && version.contains(&format!("version {reported}")),
        "{reported:?} vs {version}"
    );

    let vm = boot_vm(&agent, &guest, "qemu-vm").await?;
    let pids = qemu_pids(&vm.marker);
    ensure!(pids.len() == 1, "one qemu for the job: {pids:?}");
    // guest_agent: the guest's agent port answers on qa.sock in the task directory.
    let socket = agent
        .dir
        .path()
        .join("data/alloc")
        .join(&vm.alloc_id)
        .join("vm/qa.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket)
        .with_context(|| format!("connect {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    std::io::Write::write_all(&mut stream, b"{\"execute\":\"guest-ping\"}\n")?;
    let mut reply = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stream), &mut reply)?;
    ensure!(reply.trim() == r#"{"return": {}}"#, "{reply:?}");
    // The VM's resource usage (what `alloc status -stats` shows): qemu's own RSS and pid.
    let stats = agent
        .get(&format!("/v1/client/allocation/{}/stats", vm.alloc_id))
        .await?;
    let usage = &stats["Tasks"]["vm"];
    let rss = usage["ResourceUsage"]["MemoryStats"]["RSS"]
        .as_u64()
        .unwrap_or(0);
    ensure!(rss > 32 << 20, "a VM's RSS: {usage}");
    ensure!(
        usage["Pids"].get(pids[0].to_string()).is_some(),
        "qemu's pid {} in {usage}",
        pids[0]
    );
    let task = stop_gracefully(&agent, &vm).await?;
    let terminated = event(&task, "Terminated").context("no Terminated event")?;
    ensure!(
        terminated["ExitCode"] == json!(0) && terminated["Signal"] == json!(0),
        "qemu exits 0: {terminated}"
    );
    Ok(())
}

/// An agent restart re-attaches to the running VM (same pid, not rebooted) and `job stop` still
/// powers it off. (Its exit code is unknown then: qemu is no longer the agent's child.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_keeps_the_vm_running_and_job_stop_still_stops_it() -> Result<()> {
    if !qemu_ready()? {
        return Ok(());
    }
    let guest = guest()?;
    let mut agent = Agent::start("")?;
    agent.wait_for_qemu().await?;
    let vm = boot_vm(&agent, &guest, "qemu-restart").await?;
    let pids = qemu_pids(&vm.marker);
    ensure!(pids.len() == 1, "one qemu for the job: {pids:?}");

    agent.restart()?;
    agent.wait_for_qemu().await?;
    poll("the recovered task", Duration::from_secs(60), async || {
        let alloc = agent
            .get(&format!("/v1/allocation/{}", vm.alloc_id))
            .await?;
        Ok((alloc["TaskStates"]["vm"]["State"] == json!("running")).then_some(()))
    })
    .await?;
    ensure!(qemu_pids(&vm.marker) == pids, "the same qemu process");
    http_answer(&agent.http, &vm.host).await?;
    let logs = agent.cli(&["alloc", "logs", &vm.alloc_id, "vm"])?;
    ensure!(
        logs.matches("CARAVAN_GUEST_BOOTED").count() == 1,
        "booted once: {logs}"
    );
    stop_gracefully(&agent, &vm).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_is_killed_after_kill_timeout_when_it_ignores_the_power_button_or_has_no_monitor()
-> Result<()> {
    if !qemu_ready()? {
        return Ok(());
    }
    let guest = guest()?;
    let agent = Agent::start("")?;
    agent.wait_for_qemu().await?;

    // graceful_shutdown, but the guest runs no acpid: after kill_timeout the VM is killed, and
    // the task's Killed event says so.
    let job = unique("qemu-stubborn")?;
    let marker = format!("marker={job} caravan.acpid=off");
    agent.run_job(
        &job,
        &vm_job(
            &job,
            &guest,
            &agent.image(&guest, &job)?,
            &marker,
            "graceful_shutdown = true",
            "3s",
        ),
    )?;
    let (alloc, _) = agent.wait_task(&job, "running").await?;
    let alloc_id = alloc["ID"].as_str().context("alloc id")?.to_owned();
    poll("the guest ready", BOOT, async || {
        let logs = agent.cli(&["alloc", "logs", &alloc_id, "vm"])?;
        Ok(logs.contains("CARAVAN_GUEST_READY uptime").then_some(()))
    })
    .await?;
    let stopped = Instant::now();
    agent.cli(&["job", "stop", "-detach", &job])?;
    let (_, task) = agent.wait_task(&job, "dead").await?;
    ensure!(
        stopped.elapsed() >= Duration::from_secs(3),
        "{:?}",
        stopped.elapsed()
    );
    let killed = event(&task, "Killed").context("no Killed event")?;
    let error = killed["KillError"].as_str().unwrap_or("");
    ensure!(
        error.contains("did not stop within 3000 ms of system_powerdown: killed with SIGKILL"),
        "{killed}"
    );
    let terminated = event(&task, "Terminated").context("no Terminated event")?;
    ensure!(terminated["Signal"] == json!(9), "{terminated}");
    let logs = agent.cli(&["alloc", "logs", &alloc_id, "vm"])?;
    ensure!(!logs.contains("CARAVAN_GUEST_POWERDOWN"), "{logs}");
    ensure!(qemu_pids(&job).is_empty(), "qemu is gone");

    // Without graceful_shutdown there is no monitor: job stop sends the kill signal, on which
    // qemu terminates at once (it says so on stderr) without the guest powering off.
    let job = unique("qemu-plain")?;
    let marker = format!("marker={job}");
    agent.run_job(
        &job,
        &vm_job(
            &job,
            &guest,
            &agent.image(&guest, &job)?,
            &marker,
            "",
            "30s",
        ),
    )?;
    let (alloc, _) = agent.wait_task(&job, "running").await?;
    let alloc_id = alloc["ID"].as_str().context("alloc id")?.to_owned();
    // Once the guest runs, qemu has its signal handlers (before, SIGTERM just kills it).
    poll("the guest booted", BOOT, async || {
        let logs = agent.cli(&["alloc", "logs", &alloc_id, "vm"])?;
        Ok(logs.contains("CARAVAN_GUEST_BOOTED").then_some(()))
    })
    .await?;
    let stopped = Instant::now();
    agent.cli(&["job", "stop", "-detach", &job])?;
    let (_, task) = agent.wait_task(&job, "dead").await?;
    ensure!(
        stopped.elapsed() < Duration::from_secs(30),
        "not the kill_timeout"
    );
    // The log collector may still be copying qemu's last line when the task is dead.
    poll(
        "qemu's own word on stderr",
        Duration::from_secs(20),
        async || {
            let stderr = agent.cli(&["alloc", "logs", "-stderr", &alloc_id, "vm"])?;
            Ok(stderr.contains("terminating on signal 15").then_some(()))
        },
    )
    .await
    .with_context(|| format!("events: {}", task["Events"]))?;
    let logs = agent.cli(&["alloc", "logs", &alloc_id, "vm"])?;
    ensure!(!logs.contains("CARAVAN_GUEST_POWERDOWN"), "{logs}");
    ensure!(
        !task["Events"].to_string().contains("SIGKILL"),
        "{}",
        task["Events"]
    );
    ensure!(qemu_pids(&job).is_empty(), "qemu is gone");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_corrupt_images_and_unlisted_args_fail_the_task_with_the_reason() -> Result<()> {
    if !qemu_ready()? {
        return Ok(());
    }
    let guest = guest()?;
    let agent = Agent::start("args_allowlist = [\"-kernel\", \"-initrd\", \"-append\"]")?;
    agent.wait_for_qemu().await?;
    // A truncated qcow2 and a name with no file, both where images may be.
    let corrupt = agent.image(&guest, "corrupt")?;
    let data = std::fs::read(&corrupt)?;
    std::fs::write(&corrupt, &data[..100])?;
    let missing = corrupt.with_file_name("missing.qcow2");
    let cases = [
        (
            "missing",
            format!("image_path = {:?}", missing.display().to_string()),
            format!("Could not open '{}'", missing.display()),
        ),
        (
            "corrupt",
            format!("image_path = {:?}", corrupt.display().to_string()),
            String::from("qcow2 header too short"),
        ),
        (
            "unlisted",
            format!(
                "image_path = {:?}\n        args = [\"-kernel\", \"k\", \"-device\", \"virtio-rng-pci\"]",
                agent.image(&guest, "unlisted")?.display().to_string()
            ),
            String::from("argument \"-device\" is not in the plugin's args_allowlist"),
        ),
    ];
    for (name, config, expected) in cases {
        let job = unique(&format!("qemu-{name}"))?;
        let hcl = format!(
            r#"job "{job}" {{
  group "g" {{
    restart {{
      attempts = 0
      mode     = "fail"
    }}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "vm" {{
      driver = "qemu"
      config {{
        {config}
      }}
      resources {{
        memory = 128
      }}
    }}
  }}
}}"#
        );
        agent.run_job(&job, &hcl)?;
        let task = poll(&format!("{name}: a driver failure"), BOOT, async || {
            Ok(agent
                .task(&job)
                .await?
                .map(|(_, task)| task)
                .filter(|task| event(task, "Driver Failure").is_some()))
        })
        .await?;
        let failure = event(&task, "Driver Failure").context("driver failure")?;
        ensure!(
            failure.to_string().contains(&expected.replace('"', "\\\"")),
            "{name}: {failure} (events {:?})",
            event_types(&task)
        );
        ensure!(qemu_pids(&job).is_empty(), "{name}: no qemu started");
    }
    Ok(())
}
