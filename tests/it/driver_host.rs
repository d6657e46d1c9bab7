//! The driver host against real processes and real Wasm: raw_exec runs `/bin/sh`, the wasm driver
//! runs the `hello` and `counter` examples, the misbehaving fixtures of `drivers/testing` are
//! contained, user drivers load from `plugin_dir`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use caravan::driver_host::{
    Capability, Driver, DriverError, DriverHost, DriverHostConfig, DriverLimits, Error, Health,
    HostRecord, TaskConfig, TaskHandle, TaskScope, TaskState,
};
use serde_json::json;
use tempfile::TempDir;

const TESTING_DRIVERS: &str = env!("CARAVAN_TESTING_DRIVERS_DIR");
const HELLO_WASM: &str = env!("CARAVAN_EXAMPLE_HELLO_WASM");
const COUNTER_WASM: &str = env!("CARAVAN_EXAMPLE_COUNTER_WASM");
const HELLO_COMPONENT_WASM: &str = env!("CARAVAN_EXAMPLE_HELLO_COMPONENT_WASM");
const CUSTOM_DRIVER_WASM: &str = env!("CARAVAN_EXAMPLE_CUSTOM_DRIVER_WASM");

/// A temp dir with a driver host whose raw_exec is enabled.
struct Fixture {
    dir: TempDir,
    host: DriverHost,
}

fn fixture() -> Result<Fixture> {
    fixture_with(|_| {})
}

fn fixture_with(adjust: impl FnOnce(&mut DriverHostConfig)) -> Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir)?;
    let mut config = DriverHostConfig {
        cache_dir: Some(dir.path().join("cache")),
        plugin_dir: Some(plugin_dir),
        plugins: BTreeMap::from([(String::from("raw_exec"), json!({ "enabled": true }))]),
        limits: test_limits(),
        ..DriverHostConfig::default()
    };
    adjust(&mut config);
    let host = DriverHost::new(config)?;
    Ok(Fixture { dir, host })
}

fn test_limits() -> DriverLimits {
    DriverLimits {
        memory_cap_bytes: 32 << 20,
        cpu_budget: Duration::from_millis(300),
        // One driver gets half of the ordinary slots (60 here): room for the 40 waits of
        // `waiting_tasks_hold_no_threads`.
        max_instances: 128,
        ..DriverLimits::default()
    }
}

/// A task as the client would describe it: its scope (the client's record) and its config.
struct Task {
    scope: TaskScope,
    config: TaskConfig,
}

impl Fixture {
    /// A task of allocation `alloc-1` with its own task dir and log files.
    fn task(&self, name: &str, config: serde_json::Value) -> Result<Task> {
        let alloc_dir = self.dir.path().join("alloc");
        let logs = alloc_dir.join("alloc").join("logs");
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
            config: TaskConfig {
                job_name: String::from("example"),
                group_name: String::from("group"),
                config,
                env: BTreeMap::from([(String::from("NOMAD_TASK_NAME"), name.to_owned())]),
                ..TaskConfig::default()
            },
        })
    }

    /// Copies a file of the examples into the task directory (modules are relative to it).
    fn copy_into(&self, task: &Task, source: &str, name: &str) -> Result<()> {
        std::fs::copy(source, task.scope.task_dir.join(name))
            .with_context(|| format!("copy {source}"))?;
        Ok(())
    }

    fn install_plugin(&self, source: &Path, name: &str) -> Result<()> {
        let plugin_dir = self.dir.path().join("plugins");
        std::fs::copy(source, plugin_dir.join(format!("{name}.wasm")))
            .with_context(|| format!("copy {}", source.display()))?;
        Ok(())
    }
}

/// Starts a task given as a [`Task`] (scope and config).
trait StartOf {
    async fn start_task_of(&self, task: &Task) -> caravan::driver_host::Result<TaskHandle>;
}

impl StartOf for Driver {
    async fn start_task_of(&self, task: &Task) -> caravan::driver_host::Result<TaskHandle> {
        self.start_task(&task.scope, &task.config).await
    }
}

fn sh(script: &str) -> serde_json::Value {
    json!({ "command": "/bin/sh", "args": ["-c", script] })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Polls until `path` contains `needle` or the deadline passes.
async fn wait_for_text(path: &Path, needle: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if read(path).contains(needle) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!(
        "{} does not contain {needle:?} after {within:?}: {:?}",
        path.display(),
        read(path)
    )
}

fn testing_driver(name: &str) -> PathBuf {
    Path::new(TESTING_DRIVERS).join(format!("{name}.wasm"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_runs_sh_with_output_in_the_log_files_and_reports_the_exit_code() -> Result<()> {
    let fixture = fixture()?;
    let raw_exec = fixture.host.driver("raw_exec").await?;
    assert_eq!(raw_exec.info().name, "raw_exec");
    assert_eq!(raw_exec.fingerprint().await?.health, Health::Healthy);
    let task = fixture.task(
        "web",
        sh("echo out-$NOMAD_TASK_NAME; pwd; echo oops >&2; exit 3"),
    )?;
    let handle = raw_exec.start_task(&task.scope, &task.config).await?;
    let exit = raw_exec.wait_task(&task.scope, &handle).await?;
    assert_eq!((exit.exit_code, exit.signal), (3, 0), "{exit:?}");
    let stdout = read(&task.scope.stdout_path);
    assert!(stdout.contains("out-web"), "{stdout}");
    assert!(
        stdout.contains(&task.scope.task_dir.canonicalize()?.display().to_string()),
        "cwd is the task dir: {stdout}"
    );
    assert_eq!(read(&task.scope.stderr_path), "oops\n");
    // The handle survives a trip through JSON, as the client persists it.
    let persisted: TaskHandle = serde_json::from_str(&serde_json::to_string(&handle)?)?;
    assert_eq!(persisted, handle);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_reports_the_signal_that_killed_the_task() -> Result<()> {
    let fixture = fixture()?;
    let raw_exec = fixture.host.driver("raw_exec").await?;
    let task = fixture.task("doomed", sh("kill -KILL $$"))?;
    let handle = raw_exec.start_task(&task.scope, &task.config).await?;
    let exit = raw_exec.wait_task(&task.scope, &handle).await?;
    assert_eq!((exit.exit_code, exit.signal), (-1, 9), "{exit:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_stop_escalates_to_sigkill_after_the_kill_timeout() -> Result<()> {
    let fixture = fixture()?;
    let raw_exec = fixture.host.driver("raw_exec").await?;
    let task = fixture.task("stubborn", sh("trap '' TERM; echo ready; sleep 30"))?;
    let handle = raw_exec.start_task(&task.scope, &task.config).await?;
    wait_for_text(&task.scope.stdout_path, "ready", Duration::from_secs(5)).await?;
    // The host's wait runs concurrently with the stop (which has an instance of its own).
    let waiter = {
        let raw_exec = raw_exec.clone();
        let handle = handle.clone();
        let scope = task.scope.clone();
        tokio::spawn(async move { raw_exec.wait_task(&scope, &handle).await })
    };
    let started = Instant::now();
    raw_exec
        .stop_task(&task.scope, &handle, Duration::from_millis(500), "SIGTERM")
        .await?;
    let took = started.elapsed();
    ensure!(
        took >= Duration::from_millis(500),
        "SIGTERM was ignored, so the stop waits the kill timeout: {took:?}"
    );
    ensure!(took < Duration::from_secs(5), "stop took {took:?}");
    let exit = waiter.await??;
    assert_eq!(exit.signal, 9, "killed by SIGKILL: {exit:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_stop_with_a_handled_signal_needs_no_sigkill() -> Result<()> {
    let fixture = fixture()?;
    let raw_exec = fixture.host.driver("raw_exec").await?;
    let task = fixture.task(
        "polite",
        sh("trap 'echo bye; exit 0' INT; echo ready; while true; do sleep 0.05; done"),
    )?;
    let handle = raw_exec.start_task(&task.scope, &task.config).await?;
    wait_for_text(&task.scope.stdout_path, "ready", Duration::from_secs(5)).await?;
    let started = Instant::now();
    raw_exec
        .stop_task(&task.scope, &handle, Duration::from_secs(10), "SIGINT")
        .await?;
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "a handled signal ends the task quickly"
    );
    let exit = raw_exec.wait_task(&task.scope, &handle).await?;
    assert_eq!((exit.exit_code, exit.signal), (0, 0), "{exit:?}");
    wait_for_text(&task.scope.stdout_path, "bye", Duration::from_secs(1)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_inspects_signals_execs_measures_and_recovers() -> Result<()> {
    let fixture = fixture()?;
    let raw_exec = fixture.host.driver("raw_exec").await?;
    let task = fixture.task("sleeper", sh("echo ready; sleep 30 & wait"))?;
    let handle = raw_exec.start_task(&task.scope, &task.config).await?;
    wait_for_text(&task.scope.stdout_path, "ready", Duration::from_secs(5)).await?;

    let status = raw_exec.inspect_task(&task.scope, &handle).await?;
    assert_eq!(status.state, TaskState::Running);
    raw_exec
        .recover_task(&task.scope, &handle, &raw_exec.host_record(&task.scope))
        .await?;

    let stats = raw_exec.task_stats(&task.scope, &handle).await?;
    ensure!(stats.pids.len() >= 2, "sh and its sleep: {stats:?}");
    ensure!(stats.memory_rss_bytes > 0, "{stats:?}");

    let cmd = ["/bin/sh", "-c", "echo exec-$NOMAD_TASK_NAME; pwd"].map(String::from);
    let exec = raw_exec
        .exec_task(&task.scope, &handle, &cmd, Duration::from_secs(5))
        .await?;
    assert_eq!(exec.exit_code, 0);
    let exec_stdout = String::from_utf8(exec.stdout)?;
    assert!(exec_stdout.starts_with("exec-sleeper\n"), "{exec_stdout}");

    raw_exec
        .signal_task(&task.scope, &handle, "SIGKILL")
        .await?;
    let exit = raw_exec.wait_task(&task.scope, &handle).await?;
    assert_eq!(exit.signal, 9);
    assert!(matches!(
        raw_exec.inspect_task(&task.scope, &handle).await?.state,
        TaskState::Exited(_)
    ));
    let err = raw_exec
        .recover_task(&task.scope, &handle, &HostRecord::default())
        .await
        .expect_err("the task is gone");
    assert!(
        matches!(err.driver_error(), Some(DriverError::TaskNotFound(_))),
        "{err}"
    );
    // The sleep the shell left behind dies with its process group.
    let orphan = stats
        .pids
        .iter()
        .copied()
        .find(|pid| *pid != stats.pids[0])
        .context("the sleep")?;
    raw_exec.destroy_task(&task.scope, &handle, false).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{orphan}/stat"))
        .is_ok_and(|stat| !stat.contains(") Z "))
    {
        ensure!(
            Instant::now() < deadline,
            "pid {orphan} survived destroy-task"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_recovers_a_task_after_an_agent_restart() -> Result<()> {
    let first = fixture()?;
    let task = first.task("survivor", sh("echo ready; exec sleep 30"))?;
    let handle = first
        .host
        .driver("raw_exec")
        .await?
        .start_task(&task.scope, &task.config)
        .await?;
    wait_for_text(&task.scope.stdout_path, "ready", Duration::from_secs(5)).await?;
    let persisted = serde_json::to_string(&handle)?;
    let record = first
        .host
        .driver("raw_exec")
        .await?
        .host_record(&task.scope);
    assert_eq!(record.processes.len(), 1, "{record:?}");
    let persisted_record = serde_json::to_string(&record)?;

    // A new host (as after an agent restart) with the persisted handle and host record.
    let second = DriverHost::new(DriverHostConfig {
        plugins: BTreeMap::from([(String::from("raw_exec"), json!({ "enabled": true }))]),
        ..DriverHostConfig::default()
    })?;
    let raw_exec = second.driver("raw_exec").await?;
    let handle: TaskHandle = serde_json::from_str(&persisted)?;
    // Without the host's record the pid is no process of the task for the new host.
    let err = raw_exec
        .recover_task(&task.scope, &handle, &HostRecord::default())
        .await
        .expect_err("the driver state alone proves nothing");
    assert!(err.to_string().contains("gone"), "{err}");
    let record: HostRecord = serde_json::from_str(&persisted_record)?;
    raw_exec.recover_task(&task.scope, &handle, &record).await?;
    raw_exec
        .stop_task(&task.scope, &handle, Duration::from_secs(2), "SIGTERM")
        .await?;
    let exit = raw_exec.wait_task(&task.scope, &handle).await?;
    assert!(
        exit.err
            .is_some_and(|err| err.contains("not a child of this agent")),
        "the new host cannot read the status"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_is_disabled_unless_enabled_and_validates_its_config() -> Result<()> {
    let disabled = fixture_with(|config| config.plugins.clear())?;
    let err = disabled
        .host
        .driver("raw_exec")
        .await
        .expect_err("disabled by default");
    assert!(matches!(err, Error::Disabled { .. }), "{err}");
    assert!(err.to_string().contains("enabled = true"), "{err}");

    let fixture = fixture()?;
    let raw_exec = fixture.host.driver("raw_exec").await?;
    let err = raw_exec
        .start_task_of(&fixture.task("bad", json!({ "args": ["x"] }))?)
        .await
        .expect_err("no command");
    assert!(
        matches!(err.driver_error(), Some(DriverError::InvalidConfig(message)) if message.contains("command")),
        "{err}"
    );
    let err = raw_exec
        .start_task_of(&fixture.task("bad2", json!({ "command": "/bin/true", "comand": "typo" }))?)
        .await
        .expect_err("unknown key");
    assert!(err.to_string().contains("comand"), "{err}");
    let err = raw_exec
        .start_task_of(&fixture.task("bad3", json!({ "command": "/nonexistent/cmd" }))?)
        .await
        .expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/cmd"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_driver_runs_hello_with_its_args_and_env() -> Result<()> {
    let fixture = fixture()?;
    let wasm = fixture.host.driver("wasm").await?;
    let mut task = fixture.task("hello", json!({ "module": "hello.wasm", "args": ["one", "two words"], "env": { "GREETING": "hi" } }))?;
    fixture.copy_into(&task, HELLO_WASM, "hello.wasm")?;
    task.config
        .env
        .insert(String::from("HELLO_EXIT_CODE"), String::from("7"));
    let started = Instant::now();
    let handle = wasm.start_task(&task.scope, &task.config).await?;
    let exit = wasm.wait_task(&task.scope, &handle).await?;
    eprintln!(
        "hello start-to-exit (first run, compiles): {:?}",
        started.elapsed()
    );
    assert_eq!(exit.exit_code, 7, "{exit:?}");
    let stdout = read(&task.scope.stdout_path);
    for line in [
        "hello from caravan",
        "arg[0]=hello.wasm",
        "arg[1]=one",
        "arg[2]=two words",
        "env GREETING=hi",
        "env NOMAD_TASK_NAME=hello",
    ] {
        assert!(stdout.contains(line), "{line:?} missing in {stdout}");
    }
    assert!(
        !stdout.contains("env PATH="),
        "the workload inherits nothing from the agent: {stdout}"
    );
    assert!(
        read(&task.scope.stderr_path).contains("hello: 3 args"),
        "{}",
        read(&task.scope.stderr_path)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_driver_runs_a_wasi_p2_component() -> Result<()> {
    let fixture = fixture()?;
    let wasm = fixture.host.driver("wasm").await?;
    let task = fixture.task(
        "hello-p2",
        json!({ "module": "hello.component.wasm", "args": ["one"] }),
    )?;
    fixture.copy_into(&task, HELLO_COMPONENT_WASM, "hello.component.wasm")?;
    let handle = wasm.start_task(&task.scope, &task.config).await?;
    let exit = wasm.wait_task(&task.scope, &handle).await?;
    assert_eq!(exit.exit_code, 0, "{exit:?}");
    let stdout = read(&task.scope.stdout_path);
    for line in [
        "hello from caravan",
        "arg[1]=one",
        "env NOMAD_TASK_NAME=hello-p2",
    ] {
        assert!(stdout.contains(line), "{line:?} missing in {stdout}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_driver_runs_counter_until_stopped() -> Result<()> {
    let fixture = fixture()?;
    let wasm = fixture.host.driver("wasm").await?;
    let task = fixture.task(
        "counter",
        json!({ "module": "counter.wasm", "args": ["20"] }),
    )?;
    fixture.copy_into(&task, COUNTER_WASM, "counter.wasm")?;
    let handle = wasm.start_task(&task.scope, &task.config).await?;
    wait_for_text(
        &task.scope.stdout_path,
        "count 3\n",
        Duration::from_secs(10),
    )
    .await?;
    assert_eq!(
        wasm.inspect_task(&task.scope, &handle).await?.state,
        TaskState::Running
    );
    let started = Instant::now();
    wasm.stop_task(&task.scope, &handle, Duration::from_secs(5), "")
        .await?;
    ensure!(
        started.elapsed() < Duration::from_secs(1),
        "stop interrupts a sleeping workload: {:?}",
        started.elapsed()
    );
    let exit = wasm.wait_task(&task.scope, &handle).await?;
    assert_eq!(exit.err.as_deref(), Some("stopped"), "{exit:?}");
    let lines_at_stop = read(&task.scope.stdout_path).lines().count();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        read(&task.scope.stdout_path).lines().count(),
        lines_at_stop,
        "nothing runs after the stop"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_driver_enforces_fuel_and_memory_limits() -> Result<()> {
    let fixture = fixture()?;
    let wasm = fixture.host.driver("wasm").await?;
    let task = fixture.task(
        "fuel",
        json!({ "module": "counter.wasm", "args": ["1"], "fuel": 300_000 }),
    )?;
    fixture.copy_into(&task, COUNTER_WASM, "counter.wasm")?;
    let handle = wasm.start_task(&task.scope, &task.config).await?;
    let exit = tokio::time::timeout(
        Duration::from_secs(10),
        wasm.wait_task(&task.scope, &handle),
    )
    .await??;
    assert_eq!(exit.err.as_deref(), Some("ran out of fuel"), "{exit:?}");
    ensure!(
        read(&task.scope.stdout_path).contains("count 0"),
        "it ran until the fuel was gone"
    );

    // 1 MiB is less than the module's initial memory: it cannot even start.
    let task = fixture.task(
        "tiny",
        json!({ "module": "hello.wasm", "memory_limit_mb": 1 }),
    )?;
    fixture.copy_into(&task, HELLO_WASM, "hello.wasm")?;
    let handle = wasm.start_task(&task.scope, &task.config).await?;
    let exit = wasm.wait_task(&task.scope, &handle).await?;
    ensure!(exit.exit_code != 0 && exit.err.is_some(), "{exit:?}");
    ensure!(
        !read(&task.scope.stdout_path).contains("hello from caravan"),
        "it never ran"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_driver_rejects_modules_outside_the_task_dir_config() -> Result<()> {
    let fixture = fixture()?;
    let wasm = fixture.host.driver("wasm").await?;
    let err = wasm
        .start_task_of(&fixture.task("missing", json!({ "module": "nope.wasm" }))?)
        .await
        .expect_err("missing module");
    assert!(
        matches!(err.driver_error(), Some(DriverError::InvalidConfig(message)) if message.contains("nope.wasm")),
        "{err}"
    );
    let err = wasm
        .start_task_of(&fixture.task("escape", json!({ "module": "../../etc/x.wasm" }))?)
        .await
        .expect_err("escape");
    assert!(err.driver_error().is_some(), "{err}");
    Ok(())
}

/// Asserts that a good driver still works on the same host.
async fn good_driver_still_works(fixture: &Fixture) -> Result<()> {
    let raw_exec = fixture.host.driver("raw_exec").await?;
    let task = fixture.task(&format!("after-{}", rand_suffix()), sh("exit 0"))?;
    let handle = raw_exec.start_task(&task.scope, &task.config).await?;
    ensure!(raw_exec.wait_task(&task.scope, &handle).await?.successful());
    Ok(())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos())
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_driver_is_cut_off_at_its_deadline() -> Result<()> {
    let fixture = fixture()?;
    fixture.install_plugin(&testing_driver("looper"), "looper")?;
    let looper = fixture.host.driver("looper").await?;
    for _ in 0..2 {
        let started = Instant::now();
        let err = looper.fingerprint().await.expect_err("loops");
        let took = started.elapsed();
        assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("\"looper\"") && message.contains("deadline"),
            "{message}"
        );
        ensure!(
            took < Duration::from_secs(2),
            "cut off near its 300 ms budget, took {took:?}"
        );
    }
    good_driver_still_works(&fixture).await
}

/// On a busy agent a computing guest waits in the executor's queue after each tick it yields;
/// that wait is not its CPU: here a neighbour task holds the only thread 20 ms of every ~25, so
/// the looper's 300 ms budget is spent over several times as much wall time (before, the queue
/// wait was charged and it was cut near 300 ms of wall time, as a slow driver was on a loaded CI
/// machine).
#[tokio::test(flavor = "current_thread")]
async fn time_queued_behind_other_tasks_is_not_charged_to_a_driver() -> Result<()> {
    let fixture = fixture()?;
    fixture.install_plugin(&testing_driver("looper"), "looper")?;
    let looper = fixture.host.driver("looper").await?;
    let hog = tokio::spawn(async {
        loop {
            std::thread::sleep(Duration::from_millis(20));
            tokio::task::yield_now().await;
        }
    });
    let started = Instant::now();
    let err = looper.fingerprint().await.expect_err("loops");
    let took = started.elapsed();
    hog.abort();
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err}");
    ensure!(
        took > Duration::from_millis(900),
        "a 300 ms budget ran out after {took:?} of wall time with the thread shared 1:4"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_stops_at_the_memory_cap() -> Result<()> {
    let fixture = fixture()?;
    fixture.install_plugin(&testing_driver("membomb"), "membomb")?;
    let membomb = fixture.host.driver("membomb").await?;
    let rss_before = rss_bytes();
    let started = Instant::now();
    let err = membomb
        .fingerprint()
        .await
        .expect_err("allocates without bound");
    assert!(
        matches!(err, Error::MemoryCapExceeded { cap_bytes, .. } if cap_bytes == 32 << 20),
        "{err}"
    );
    assert!(
        err.to_string().contains("\"membomb\"") && err.to_string().contains("memory cap"),
        "{err}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    // Unbounded, the bomb would take the whole 4 GiB of a wasm32 memory; the margin over the cap
    // absorbs what tests running in parallel allocate meanwhile.
    let grown = rss_bytes().saturating_sub(rss_before);
    ensure!(
        grown < (32 << 20) + (128 << 20),
        "the agent grew by {grown} bytes, far more than the 32 MiB cap"
    );
    good_driver_still_works(&fixture).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_driver_fails_only_its_call() -> Result<()> {
    let fixture = fixture()?;
    fixture.install_plugin(&testing_driver("trapper"), "trapper")?;
    let trapper = fixture.host.driver("trapper").await?;
    for _ in 0..2 {
        let err = trapper.fingerprint().await.expect_err("panics");
        assert!(matches!(err, Error::Trap { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("\"trapper\"")
                && message.contains("trapped")
                && message.contains("unreachable"),
            "{message}"
        );
    }
    let err = trapper
        .start_task_of(&fixture.task("t", json!({}))?)
        .await
        .expect_err("panics");
    assert!(err.is_sandbox_violation(), "{err}");
    // The driver's info call, which behaves, still works on a fresh instance.
    assert_eq!(trapper.config_schema().await?, "{}");
    good_driver_still_works(&fixture).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_importing_an_ungranted_capability_does_not_load() -> Result<()> {
    let fixture = fixture()?;
    fixture.install_plugin(&testing_driver("ungranted"), "ungranted")?;
    let started = Instant::now();
    let err = fixture
        .host
        .driver("ungranted")
        .await
        .expect_err("docker is not granted");
    assert!(
        matches!(
            err,
            Error::NotGranted {
                capability: Capability::Docker,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("\"ungranted\"") && message.contains("capability docker"),
        "{message}"
    );
    ensure!(started.elapsed() < Duration::from_secs(5));
    good_driver_still_works(&fixture).await?;

    // Granted, it loads and its calls reach the docker capability, which refuses container calls
    // outside a task (fingerprint has none).
    let granted = fixture_with(|config| {
        config.plugins.insert(
            String::from("ungranted"),
            json!({ "capabilities": ["docker"] }),
        );
    })?;
    granted.install_plugin(&testing_driver("ungranted"), "ungranted")?;
    let fingerprint = granted
        .host
        .driver("ungranted")
        .await?
        .fingerprint()
        .await?;
    assert!(
        fingerprint
            .description
            .contains("container calls need a task"),
        "{fingerprint:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_driver_loads_from_the_plugin_dir_with_its_grants() -> Result<()> {
    let fixture = fixture_with(|config| {
        config
            .plugins
            .insert(String::from("java"), json!({ "capabilities": ["process"] }));
    })?;
    fixture.install_plugin(Path::new(CUSTOM_DRIVER_WASM), "java")?;
    assert!(
        fixture
            .host
            .available_drivers()
            .contains(&String::from("java"))
    );
    let java = fixture.host.driver("java").await?;
    assert_eq!(java.info().name, "java");
    assert_eq!(
        java.fingerprint()
            .await?
            .attributes
            .get("driver.java")
            .map(String::as_str),
        Some("1")
    );
    let err = java
        .start_task_of(&fixture.task("app", json!({ "jvm_options": ["-Xmx64m"] }))?)
        .await
        .expect_err("no jar");
    assert!(
        matches!(err.driver_error(), Some(DriverError::InvalidConfig(message)) if message.contains("jar_path")),
        "{err}"
    );

    // Without the grant it does not load.
    let ungranted = self::fixture()?;
    ungranted.install_plugin(Path::new(CUSTOM_DRIVER_WASM), "java")?;
    let err = ungranted
        .host
        .driver("java")
        .await
        .expect_err("process not granted");
    assert!(
        matches!(
            err,
            Error::NotGranted {
                capability: Capability::Process,
                ..
            }
        ),
        "{err}"
    );

    let err = fixture.host.driver("nope").await.expect_err("not found");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompiled_drivers_are_cached_on_disk_and_reused() -> Result<()> {
    let fixture = fixture()?;
    fixture.host.driver("wasm").await?;
    let cache = fixture.dir.path().join("cache").join("drivers");
    let artifacts: Vec<PathBuf> = std::fs::read_dir(&cache)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let modified = std::fs::metadata(&artifacts[0])?.modified()?;

    // A second host with the same engine settings on the same cache dir loads the artifact
    // instead of compiling.
    let same_engine = || DriverHostConfig {
        cache_dir: Some(fixture.dir.path().join("cache")),
        limits: test_limits(),
        ..DriverHostConfig::default()
    };
    let second = DriverHost::new(same_engine())?;
    let wasm = second.driver("wasm").await?;
    assert_eq!(wasm.info().name, "wasm");
    assert_eq!(
        std::fs::metadata(&artifacts[0])?.modified()?,
        modified,
        "the artifact was reused, not rewritten"
    );

    // A corrupt artifact is replaced, not trusted.
    std::fs::write(&artifacts[0], b"garbage")?;
    let third = DriverHost::new(same_engine())?;
    third.driver("wasm").await?;
    ensure!(std::fs::metadata(&artifacts[0])?.len() > 1000, "rewritten");
    assert_eq!(std::fs::read_dir(&cache)?.count(), 1, "same key, same file");

    // Other engine settings (another memory cap) never read that artifact: they key their own.
    let other = DriverHost::new(DriverHostConfig {
        cache_dir: Some(fixture.dir.path().join("cache")),
        ..DriverHostConfig::default()
    })?;
    other.driver("wasm").await?;
    assert_eq!(std::fs::read_dir(&cache)?.count(), 2);
    Ok(())
}

/// The drivers' own logic (config validation, command lines) is unit-tested natively beside its
/// code in the guest workspaces; this runs those tests as part of caravan's test suite.
#[test]
fn guest_unit_tests_pass() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    for (workspace, packages) in [
        ("drivers", &["--workspace"][..]),
        ("wasm-examples", &["-p", "custom-driver"][..]),
    ] {
        let mut command = std::process::Command::new(&cargo);
        command
            .args(["test", "--locked", "--manifest-path"])
            .arg(root.join(workspace).join("Cargo.toml"))
            .args(packages)
            .arg("--target-dir")
            .arg(Path::new(env!("CARAVAN_WASM_GUESTS_DIR")).join("native"));
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key == "CARGO_TARGET_DIR"
                || key.starts_with("RUSTFLAGS")
                || key.starts_with("CARGO_ENCODED")
            {
                command.env_remove(key.as_ref());
            }
        }
        let output = command
            .output()
            .with_context(|| format!("run cargo test in {workspace}"))?;
        ensure!(
            output.status.success(),
            "cargo test in {workspace} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_cannot_reach_the_processes_of_another_task() -> Result<()> {
    let fixture = fixture()?;
    let raw_exec = fixture.host.driver("raw_exec").await?;
    let victim = fixture.task("victim", sh("echo ready; exec sleep 30"))?;
    let victim_handle = raw_exec.start_task_of(&victim).await?;
    wait_for_text(&victim.scope.stdout_path, "ready", Duration::from_secs(5)).await?;

    // The victim's handle used for another task: refused before the driver runs.
    let intruder = fixture.task("intruder", json!({}))?;
    let err = raw_exec
        .signal_task(&intruder.scope, &victim_handle, "SIGKILL")
        .await
        .expect_err("another task's handle");
    assert!(matches!(err, Error::ScopeMismatch { .. }), "{err}");
    // A handle of the intruder carrying the victim's pid in its driver state, as a confused or
    // hostile driver would make: the host's table says the pid is not the intruder's.
    let forged = TaskHandle {
        id: intruder.scope.task_id.clone(),
        ..victim_handle.clone()
    };
    let err = raw_exec
        .signal_task(&intruder.scope, &forged, "SIGKILL")
        .await
        .expect_err("not its process");
    assert!(
        err.to_string().contains("not a process of this task"),
        "{err}"
    );
    assert_eq!(
        raw_exec
            .inspect_task(&victim.scope, &victim_handle)
            .await?
            .state,
        TaskState::Running
    );

    raw_exec
        .stop_task(
            &victim.scope,
            &victim_handle,
            Duration::from_secs(2),
            "SIGTERM",
        )
        .await?;
    Ok(())
}

/// The threads of this process.
fn thread_count() -> Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_tasks_hold_no_threads() -> Result<()> {
    let fixture = fixture()?;
    let raw_exec = fixture.host.driver("raw_exec").await?;
    // Warm up what the first start spins up (the blocking pool's first thread, the reaper).
    let task = fixture.task("warm-up", sh("true"))?;
    let handle = raw_exec.start_task(&task.scope, &task.config).await?;
    ensure!(raw_exec.wait_task(&task.scope, &handle).await?.successful());
    let before = thread_count()?;
    // 40 tasks waited on at once by the host (no driver instance, no thread held per wait).
    let mut waits = Vec::new();
    for index in 0..40 {
        let task = fixture.task(&format!("sleeper-{index}"), sh("sleep 5"))?;
        let handle = raw_exec.start_task(&task.scope, &task.config).await?;
        let raw_exec = raw_exec.clone();
        waits.push(tokio::spawn(async move {
            raw_exec.wait_task(&task.scope, &handle).await
        }));
    }
    let waiting = thread_count()?;
    for wait in waits {
        ensure!(wait.await??.successful());
    }
    ensure!(
        waiting < before + 10,
        "40 waiting tasks grew the process from {before} to {waiting} threads"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprinting_all_drivers_isolates_the_bad_ones() -> Result<()> {
    let fixture = fixture_with(|config| config.plugins.clear())?;
    fixture.install_plugin(&testing_driver("trapper"), "trapper")?;
    let fingerprints = fixture.host.fingerprint_all().await;
    let names: Vec<&str> = fingerprints.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["docker", "exec", "qemu", "raw_exec", "trapper", "wasm"]
    );
    // Healthy or undetected depending on the node's Docker daemon, QEMU or root, never an error.
    for driver in ["docker", "exec", "qemu"] {
        assert!(
            fingerprints[driver].is_ok(),
            "{driver}: {:?}",
            fingerprints[driver]
        );
    }
    assert!(matches!(
        fingerprints["raw_exec"],
        Err(Error::Disabled { .. })
    ));
    assert!(matches!(fingerprints["trapper"], Err(Error::Trap { .. })));
    assert_eq!(
        fingerprints["wasm"]
            .as_ref()
            .map(|fingerprint| fingerprint.health)
            .ok(),
        Some(Health::Healthy)
    );
    Ok(())
}
