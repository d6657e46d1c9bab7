//! Budgets per store and per driver against hostile guests: WASI workloads that declare many
//! memories or huge tables, a driver whose calls take every slot of its lane, a driver whose
//! fingerprint blocks, and one whose fingerprint floods the log and reports 200,000 attributes.
//! Each test states the memory bound it holds the agent to and checks that the other drivers and
//! tasks carried on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use caravan::driver_host::{
    DriverHost, DriverHostConfig, DriverLimits, Error, TaskHandle, TaskScope, WaitOn,
};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::server::wait_for;
use crate::support::{AgentProcess, free_port};

const TESTING_DRIVERS: &str = env!("CARAVAN_TESTING_DRIVERS_DIR");
const HELLO_WASM: &str = env!("CARAVAN_EXAMPLE_HELLO_WASM");

fn testing_driver(name: &str) -> PathBuf {
    Path::new(TESTING_DRIVERS).join(format!("{name}.wasm"))
}

/// `VmHWM` (peak) and `VmRSS` of a process, in bytes.
fn memory_of(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets this process's peak RSS, so `VmHWM` afterwards is the peak of what follows.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Held by the tests of this module that measure this process's memory, one at a time.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Hand-encoded core modules: shapes no compiler emits on purpose.
mod wasm {
    fn leb(mut value: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn sleb(mut value: i64, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
            out.push(if done { byte } else { byte | 0x80 });
            if done {
                return;
            }
        }
    }

    /// A core module with one memory of `pages` pages whose start function fills it.
    fn filler(pages: u64) -> Vec<u8> {
        let mut out = b"\0asm\x01\0\0\0".to_vec();
        section(1, &[0x01, 0x60, 0x00, 0x00], &mut out);
        section(3, &[0x01, 0x00], &mut out);
        let mut memory = vec![0x01, 0x00];
        leb(pages, &mut memory);
        section(5, &memory, &mut out);
        section(8, &[0x00], &mut out);
        let mut code = vec![0x00, 0x41, 0x00, 0x41];
        sleb(0xa5, &mut code);
        code.push(0x41);
        sleb(i64::try_from(pages * 65536).unwrap_or(i64::MAX), &mut code);
        code.extend_from_slice(&[0xfc, 0x0b, 0x00, 0x0b]);
        let mut body = vec![0x01];
        leb(code.len() as u64, &mut body);
        body.extend_from_slice(&code);
        section(10, &body, &mut out);
        out
    }

    /// `component` with `instances` core instances of a [`filler`] of `pages` grafted on: a
    /// core module section and a core instance section appended at the top level, so every index
    /// the component already uses stays the same.
    pub fn graft(component: &[u8], instances: u64, pages: u64) -> Vec<u8> {
        // Top-level core modules (section 1 holds one each): the grafted module's index.
        let mut modules = 0u64;
        let mut at = 8;
        while at < component.len() {
            let id = component[at];
            at += 1;
            let (mut size, mut shift) = (0u64, 0);
            loop {
                let byte = component[at];
                at += 1;
                size |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            if id == 1 {
                modules += 1;
            }
            at += usize::try_from(size).unwrap_or(usize::MAX);
        }
        let mut out = component.to_vec();
        section(1, &filler(pages), &mut out);
        let mut body = Vec::new();
        leb(instances, &mut body);
        for _ in 0..instances {
            body.push(0x00);
            leb(modules, &mut body);
            body.push(0x00);
        }
        section(2, &body, &mut out);
        out
    }

    fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    /// A WASI-less command: `memories` memories of 0 pages and `tables` funcref tables of
    /// `elements`; its `_start` grows every memory by `grow_pages` and fills what it got (an
    /// out-of-bounds fill traps when the growth was refused).
    pub fn bomb(memories: u64, grow_pages: i64, tables: u64, elements: u64) -> Vec<u8> {
        let mut out = b"\0asm\x01\0\0\0".to_vec();
        section(1, &[0x01, 0x60, 0x00, 0x00], &mut out);
        section(3, &[0x01, 0x00], &mut out);
        if tables > 0 {
            let mut body = Vec::new();
            leb(tables, &mut body);
            for _ in 0..tables {
                body.extend_from_slice(&[0x70, 0x00]);
                leb(elements, &mut body);
            }
            section(4, &body, &mut out);
        }
        if memories > 0 {
            let mut body = Vec::new();
            leb(memories, &mut body);
            for _ in 0..memories {
                body.extend_from_slice(&[0x00, 0x00]);
            }
            section(5, &body, &mut out);
        }
        let mut exports = vec![0x01, 6];
        exports.extend_from_slice(b"_start");
        exports.extend_from_slice(&[0x00, 0x00]);
        section(7, &exports, &mut out);
        let mut code = vec![0x00];
        for memory in 0..memories {
            code.push(0x41);
            sleb(grow_pages, &mut code);
            code.push(0x40);
            leb(memory, &mut code);
            code.push(0x1a);
            code.extend_from_slice(&[0x41, 0x00, 0x41]);
            sleb(0xa5, &mut code);
            code.push(0x41);
            sleb(grow_pages * 65536, &mut code);
            code.extend_from_slice(&[0xfc, 0x0b]);
            leb(memory, &mut code);
        }
        code.push(0x0b);
        let mut body = vec![0x01];
        leb(code.len() as u64, &mut body);
        body.extend_from_slice(&code);
        section(10, &body, &mut out);
        out
    }
}

/// A driver host in a temp dir, as `tests/it/driver_host.rs` makes them.
/// A task for a direct driver call: the host's record of it and what the driver is given.
struct Task {
    scope: TaskScope,
    config: caravan::driver_host::TaskConfig,
}

struct Fixture {
    dir: TempDir,
    host: DriverHost,
}

fn fixture(limits: DriverLimits, plugins: BTreeMap<String, Value>) -> Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir)?;
    let host = DriverHost::new(DriverHostConfig {
        cache_dir: Some(dir.path().join("cache")),
        plugin_dir: Some(plugin_dir),
        plugins,
        limits,
        ..DriverHostConfig::default()
    })?;
    Ok(Fixture { dir, host })
}

impl Fixture {
    fn task(&self, name: &str, config: Value) -> Result<Task> {
        let alloc_dir = self.dir.path().join("alloc");
        let logs = alloc_dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let scope = TaskScope::new(
            "alloc-1",
            name,
            &alloc_dir,
            logs.join(format!("{name}.stdout.0")),
            logs.join(format!("{name}.stderr.0")),
        );
        std::fs::create_dir_all(&scope.task_dir)?;
        Ok(Task {
            scope,
            config: caravan::driver_host::TaskConfig {
                job_name: String::from("budgets"),
                group_name: String::from("group"),
                config,
                ..caravan::driver_host::TaskConfig::default()
            },
        })
    }

    fn install_plugin(&self, name: &str) -> Result<()> {
        let source = testing_driver(name);
        std::fs::copy(
            &source,
            self.dir.path().join("plugins").join(format!("{name}.wasm")),
        )
        .with_context(|| format!("copy {}", source.display()))?;
        Ok(())
    }

    /// Runs `module` (written to the task dir) as a wasm task with `memory_limit_mb`; its exit.
    async fn run_workload(
        &self,
        name: &str,
        module: &[u8],
        memory_limit_mb: u64,
    ) -> Result<caravan::driver_host::ExitResult> {
        let wasm = self.host.driver("wasm").await?;
        let mut task = self.task(name, json!({}))?;
        let module_name = format!("{name}.wasm");
        std::fs::write(task.scope.task_dir.join(&module_name), module)?;
        task.config.config = json!({ "module": module_name, "memory_limit_mb": memory_limit_mb });
        let handle = wasm.start_task(&task.scope, &task.config).await?;
        Ok(tokio::time::timeout(
            Duration::from_secs(20),
            wasm.wait_task(&task.scope, &handle),
        )
        .await??)
    }

    /// The hello example still runs as a wasm task.
    async fn hello_still_runs(&self) -> Result<()> {
        let wasm = self.host.driver("wasm").await?;
        let task = self.task(
            &format!("hello-{}", std::process::id()),
            json!({ "module": "hello.wasm" }),
        )?;
        std::fs::copy(HELLO_WASM, task.scope.task_dir.join("hello.wasm"))?;
        let handle = wasm.start_task(&task.scope, &task.config).await?;
        let exit = wasm.wait_task(&task.scope, &handle).await?;
        ensure!(exit.successful(), "hello after the bombs: {exit:?}");
        Ok(())
    }
}

fn workload_limits() -> DriverLimits {
    DriverLimits {
        memory_cap_bytes: 32 << 20,
        max_instances: 64,
        ..DriverLimits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_memory_bomb_gets_one_memory_limit_for_all_its_memories() -> Result<()> {
    let _measuring = MEASURING.lock().await;
    let fixture = fixture(workload_limits(), BTreeMap::new())?;
    // Loaded (compiled) before measuring.
    fixture.host.driver("wasm").await?;
    // Three memories of 60 MiB each, filled, at memory_limit_mb = 64: the first fits, the second
    // growth is refused, and the workload ends naming the limit.
    let (_, rss_before) = memory_of("self");
    reset_peak_rss();
    let exit = fixture
        .run_workload("multi-memory", &wasm::bomb(3, 960, 0, 0), 64)
        .await?;
    let (peak, _) = memory_of("self");
    let err = exit.err.clone().unwrap_or_default();
    ensure!(
        exit.exit_code != 0 && err.contains("memory limit of 67108864 bytes"),
        "{exit:?}"
    );
    // Bound: the 64 MiB limit plus 40 MiB for the test process meanwhile (unbounded: 180 MiB).
    let grown = peak.saturating_sub(rss_before);
    ensure!(
        grown < (64 + 40) << 20,
        "the agent's peak grew by {} MiB",
        grown >> 20
    );
    // Sixteen memories are refused outright, by count.
    let exit = fixture
        .run_workload("sixteen-memories", &wasm::bomb(16, 1, 0, 0), 64)
        .await?;
    let err = exit.err.clone().unwrap_or_default();
    ensure!(exit.exit_code != 0 && err.contains("memor"), "{exit:?}");
    fixture.hello_still_runs().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_bomb_is_charged_to_the_memory_limit() -> Result<()> {
    let _measuring = MEASURING.lock().await;
    let fixture = fixture(workload_limits(), BTreeMap::new())?;
    // Loaded (compiled) before measuring.
    fixture.host.driver("wasm").await?;
    let (_, rss_before) = memory_of("self");
    reset_peak_rss();
    // Eight tables of 1,000,000 funcrefs (61 MiB of table) at memory_limit_mb = 1.
    let exit = fixture
        .run_workload("tables", &wasm::bomb(0, 0, 8, 1_000_000), 1)
        .await?;
    let (peak, _) = memory_of("self");
    let err = exit.err.clone().unwrap_or_default();
    ensure!(
        exit.exit_code != 0
            && err.contains("memory limit of 1048576 bytes")
            && err.contains("table"),
        "{exit:?}"
    );
    // Bound: 32 MiB for the test process meanwhile (unbounded: 64 MiB of tables).
    let grown = peak.saturating_sub(rss_before);
    ensure!(
        grown < 32 << 20,
        "the agent's peak grew by {} MiB",
        grown >> 20
    );
    // Sixty-four tables are refused by count.
    let exit = fixture
        .run_workload("many-tables", &wasm::bomb(0, 0, 64, 10), 64)
        .await?;
    ensure!(
        exit.exit_code != 0 && exit.err.as_deref().unwrap_or_default().contains("table"),
        "{exit:?}"
    );
    fixture.hello_still_runs().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_driver_cannot_take_every_slot_and_its_stop_task_still_runs() -> Result<()> {
    // 16 slots: 2 reserved for stop/destroy, 14 for ordinary calls, 7 per driver.
    let limits = DriverLimits {
        memory_cap_bytes: 32 << 20,
        max_instances: 16,
        call_timeout: Duration::from_secs(30),
        // A call over its driver's limit waits this long for its turn, then is refused.
        slot_wait: Duration::from_secs(1),
        ..DriverLimits::default()
    };
    let plugins = BTreeMap::from([
        (
            String::from("blocker"),
            json!({ "capabilities": ["process"] }),
        ),
        (String::from("raw_exec"), json!({ "enabled": true })),
    ]);
    let _measuring = MEASURING.lock().await;
    let fixture = fixture(limits, plugins)?;
    fixture.install_plugin("blocker")?;
    let blocker = fixture.host.driver("blocker").await?;
    let raw_exec = fixture.host.driver("raw_exec").await?;
    let (_, rss_before) = memory_of("self");
    reset_peak_rss();
    // Twenty start-task calls that block in the host: seven hold the driver's lane, the others
    // wait their turn (`slot_wait`) and, no slot freeing, are refused naming the limit.
    let mut flood = tokio::task::JoinSet::new();
    for index in 0..20 {
        let blocker = blocker.clone();
        let task = fixture.task(&format!("flood-{index}"), json!({}))?;
        flood.spawn(async move { blocker.start_task(&task.scope, &task.config).await });
    }
    let mut refused = 0;
    while refused < 13 {
        let joined = tokio::time::timeout(Duration::from_secs(10), flood.join_next())
            .await
            .context("the calls over the limit are refused once their wait is over")?
            .context("calls left")?;
        match joined? {
            Err(Error::Busy { reason, .. }) => {
                ensure!(reason.contains("7 calls in flight"), "{reason}");
                refused += 1;
            }
            other => anyhow::bail!("a blocked start-task returned: {other:?}"),
        }
    }
    ensure!(flood.len() == 7, "seven calls hold the lane");
    // Another driver's calls go on.
    let started = Instant::now();
    let task = fixture.task(
        "other",
        json!({ "command": "/bin/sh", "args": ["-c", "exit 0"] }),
    )?;
    let handle = raw_exec.start_task(&task.scope, &task.config).await?;
    ensure!(raw_exec.wait_task(&task.scope, &handle).await?.successful());
    raw_exec.fingerprint().await?;
    // The flooding driver's own stop-task and destroy-task get the reserved lane.
    let flood_0 = fixture.task("flood-0", json!({}))?;
    let handle = TaskHandle {
        driver: String::from("blocker"),
        id: flood_0.scope.task_id.clone(),
        driver_state: Vec::new(),
        wait_on: WaitOn::Poll,
    };
    blocker
        .stop_task(&flood_0.scope, &handle, Duration::from_secs(1), "SIGTERM")
        .await?;
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "the others waited on the flood: {:?}",
        started.elapsed()
    );
    // A further ordinary call of the flooding driver is still refused.
    let err = blocker.fingerprint().await.expect_err("its lane is full");
    ensure!(matches!(err, Error::Busy { .. }), "{err}");
    // Bound: 7 driver instances of at most 32 MiB (they allocate little) plus the test process.
    let (peak, _) = memory_of("self");
    let grown = peak.saturating_sub(rss_before);
    ensure!(grown < 128 << 20, "peak grew by {} MiB", grown >> 20);
    flood.abort_all();
    // Once the flood is gone, the driver's lane is free again.
    wait_for(Duration::from_secs(10), || async {
        Ok(blocker.config_schema().await.ok())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_with_grafted_instances_or_memories_does_not_load() -> Result<()> {
    let _measuring = MEASURING.lock().await;
    let limits = DriverLimits {
        memory_cap_bytes: 32 << 20,
        max_instances: 64,
        ..DriverLimits::default()
    };
    let fixture = fixture(limits, BTreeMap::new())?;
    fixture.host.driver("wasm").await?;
    let noisy = std::fs::read(testing_driver("noisy"))?;
    let plugins = fixture.dir.path().join("plugins");
    let (_, rss_before) = memory_of("self");
    reset_peak_rss();
    // The log-only driver with sixteen grafted core instances, each filling a 1 MiB memory: over
    // the pool's per-component count.
    std::fs::write(plugins.join("noisy.wasm"), wasm::graft(&noisy, 16, 16))?;
    let err = fixture
        .host
        .driver("noisy")
        .await
        .expect_err("16 instances");
    let message = err.to_string();
    ensure!(
        message.contains("\"noisy\"") && message.contains("maximum of 8"),
        "{message}"
    );
    // One grafted instance with a 31 MiB memory: within every count, but its memories together
    // pass the 32 MiB cap of a driver store.
    let fixture = self::fixture(limits, BTreeMap::new())?;
    let plugins = fixture.dir.path().join("plugins");
    std::fs::write(plugins.join("noisy.wasm"), wasm::graft(&noisy, 1, 500))?;
    let err = fixture
        .host
        .driver("noisy")
        .await
        .expect_err("over the cap");
    let message = err.to_string();
    ensure!(
        message.contains("\"noisy\"") && message.contains("memory cap of 33554432 bytes"),
        "{message}"
    );
    // Bound: neither filled its memories (unbounded: 16 MiB, then 31 MiB a call).
    let (peak, _) = memory_of("self");
    let grown = peak.saturating_sub(rss_before);
    ensure!(grown < 16 << 20, "peak grew by {} MiB", grown >> 20);
    // Grafted but small (one more instance of one page), it loads: the graft itself is sound.
    let fixture = self::fixture(limits, BTreeMap::new())?;
    let plugins = fixture.dir.path().join("plugins");
    std::fs::write(plugins.join("noisy.wasm"), wasm::graft(&noisy, 1, 1))?;
    fixture.host.driver("noisy").await?;
    fixture.hello_still_runs().await
}

/// An agent (server and client) whose plugin dir holds the blocker and noisy drivers.
fn hostile_agent(dir: &Path) -> Result<(AgentProcess, String, Instant)> {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    for name in ["blocker", "noisy"] {
        std::fs::copy(testing_driver(name), plugins.join(format!("{name}.wasm")))?;
    }
    let (http, rpc) = (free_port()?, free_port()?);
    let config = dir.join("agent.hcl");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir   = "{data}"
plugin_dir = "{plugins}"
bind_addr  = "127.0.0.1"
server {{
  enabled           = true
  bootstrap_expect  = 1
  min_heartbeat_ttl = "2s"
  heartbeat_grace   = "1s"
}}
client {{
  enabled = true
  options = {{
    "fingerprint.driver_timeout" = "5s"
  }}
  artifact {{
    file_allowlist = ["{examples}"]
  }}
}}
plugin "blocker" {{
  config {{
    capabilities = ["process"]
  }}
}}
ports {{
  http = {http}
  rpc  = {rpc}
}}
"#,
            data = dir.join("data").display(),
            plugins = plugins.display(),
            examples = Path::new(HELLO_WASM)
                .parent()
                .map(Path::display)
                .context("the examples' directory")?,
        ),
    )?;
    let started = Instant::now();
    let agent = AgentProcess::start(dir, "agent", &config)?;
    Ok((agent, format!("http://127.0.0.1:{http}"), started))
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Option<Value>> {
    match http.get(url).send().await {
        Ok(response) if response.status().is_success() => Ok(Some(response.json().await?)),
        _ => Ok(None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fingerprints_neither_stall_the_node_nor_flood_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (agent, url, started) = hostile_agent(dir.path())?;
    let pid = agent.child.id().to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    // The API answers at once: no fingerprint is on the start-up path.
    wait_for(Duration::from_secs(10), || async {
        Ok(http.get(format!("{url}/v1/agent/self")).send().await.ok())
    })
    .await?;
    let answered = started.elapsed();
    ensure!(
        answered < Duration::from_secs(1),
        "the API answered {answered:?} after start-up"
    );
    // The node registers once every driver answered or missed its 5 s deadline.
    let node_id = wait_for(Duration::from_secs(30), || async {
        let Some(nodes) = get_json(&http, &format!("{url}/v1/nodes")).await? else {
            return Ok(None);
        };
        Ok(nodes.as_array().and_then(|nodes| {
            nodes
                .iter()
                .find(|node| node["Status"] == "ready")
                .and_then(|node| node["ID"].as_str().map(str::to_owned))
        }))
    })
    .await?;
    let node = get_json(&http, &format!("{url}/v1/node/{node_id}"))
        .await?
        .context("the node")?;
    let drivers = &node["Drivers"];
    let blocker = &drivers["blocker"];
    ensure!(
        blocker["Healthy"] == false
            && blocker["HealthDescription"]
                .as_str()
                // Cut by the fingerprint's deadline or, first, by the driver's CPU budget.
                .is_some_and(|text| text.contains("no answer within 5s")
                    || text.contains("of guest execution")),
        "blocker: {blocker}"
    );
    let noisy = &drivers["noisy"];
    let noisy_attributes = noisy["Attributes"].as_object().map_or(0, |map| map.len());
    ensure!(
        noisy["Healthy"] == true
            && noisy_attributes == 128
            && noisy["HealthDescription"]
                .as_str()
                .is_some_and(|text| text.contains("199872 fingerprint attributes dropped")),
        "noisy: {} attributes, {}",
        noisy_attributes,
        noisy["HealthDescription"]
    );
    ensure!(
        drivers["wasm"]["Healthy"] == true,
        "wasm: {}",
        drivers["wasm"]
    );
    // The node stays ready past several TTLs (2 s + 1 s grace): heartbeats go on.
    let ready_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < ready_until {
        let node = get_json(&http, &format!("{url}/v1/node/{node_id}"))
            .await?
            .context("the node")?;
        ensure!(
            node["Status"] == "ready",
            "the node went {}",
            node["Status"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Another driver's task runs on the node.
    let job = json!({ "Job": {
        "ID": "budgets-hello",
        "Type": "batch",
        "TaskGroups": [{ "Name": "g", "Tasks": [{
            "Name": "hello",
            "Driver": "wasm",
            // Modules are relative to the task directory: the example arrives as an artifact.
            "Artifacts": [{ "GetterSource": format!("file://{HELLO_WASM}"), "RelativeDest": "local/" }],
            "Config": { "module": "local/hello.wasm" },
            "Resources": { "CPU": 20, "MemoryMB": 16 },
        }]}],
    }});
    let response = http.put(format!("{url}/v1/jobs")).json(&job).send().await?;
    ensure!(
        response.status().is_success(),
        "register: {}",
        response.status()
    );
    wait_for(Duration::from_secs(30), || async {
        let Some(allocs) =
            get_json(&http, &format!("{url}/v1/job/budgets-hello/allocations")).await?
        else {
            return Ok(None);
        };
        Ok(allocs
            .as_array()
            .is_some_and(|allocs| {
                allocs
                    .iter()
                    .any(|alloc| alloc["ClientStatus"] == "complete")
            })
            .then_some(()))
    })
    .await?;
    // The flood (5,000 lines of 16 KiB per fingerprint: 80 MB) left at most 100 lines of
    // 2 KiB a second, and said so.
    let log = std::fs::read_to_string(dir.path().join("agent.log"))?;
    ensure!(
        log.len() < 4 << 20,
        "the agent's log holds {} bytes",
        log.len()
    );
    ensure!(
        log.contains("driver log over its rate limit"),
        "the log says lines were dropped"
    );
    // Bound: the agent's peak RSS stays under 384 MiB (about 190 MiB seen: the server, the
    // compiled drivers, 200,000 attributes lifted from the noisy driver's memory).
    let (peak, _) = memory_of(&pid);
    ensure!(peak < 384 << 20, "the agent peaked at {} MiB", peak >> 20);
    Ok(())
}
