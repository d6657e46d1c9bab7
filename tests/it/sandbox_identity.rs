//! Host-owned task identity, against hostile drivers (`drivers/testing/{fsliar,pidthief,
//! wasmthief}`) each granted one capability: a lying handle, another task's directory, pid or
//! workload, preopens and modules outside the task directory. Each test plants a 0600 secret
//! outside the allocation and checks it was neither read, written nor truncated, and that the
//! other task kept running. Also: waits belong to the host (1,000+ tasks on one host with a
//! smaller instance pool), and driver hot upgrade (a task started under v1 keeps its pid, is
//! re-attached and stopped by v2).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use caravan::driver_host::{
    Driver, DriverHost, DriverHostConfig, DriverLimits, Error, Health, TaskConfig, TaskHandle,
    TaskScope, TaskState, WaitOn,
};
use serde_json::json;
use tempfile::TempDir;

const TESTING_DRIVERS: &str = env!("CARAVAN_TESTING_DRIVERS_DIR");
const HELLO_WASM: &str = env!("CARAVAN_EXAMPLE_HELLO_WASM");
const COUNTER_WASM: &str = env!("CARAVAN_EXAMPLE_COUNTER_WASM");
const SECRET: &str = "top secret, outside every allocation";

/// A driver host over a temp dir holding a 0600 secret outside the allocation `alloc-1`.
struct Sandbox {
    dir: TempDir,
    host: DriverHost,
}

impl Sandbox {
    fn new(plugins: serde_json::Value, limits: DriverLimits) -> Result<Sandbox> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("plugins"))?;
        let secret = dir.path().join("secret");
        std::fs::write(&secret, SECRET)?;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
        let plugins = plugins
            .as_object()
            .context("plugins object")?
            .iter()
            .map(|(name, config)| (name.clone(), config.clone()))
            .collect();
        let host = DriverHost::new(DriverHostConfig {
            cache_dir: Some(dir.path().join("cache")),
            plugin_dir: Some(dir.path().join("plugins")),
            plugins,
            limits,
            ..DriverHostConfig::default()
        })?;
        Ok(Sandbox { dir, host })
    }

    fn secret_path(&self) -> PathBuf {
        self.dir.path().join("secret")
    }

    /// The secret is intact: same contents, still 0600.
    fn assert_secret_intact(&self) -> Result<()> {
        let path = self.secret_path();
        let contents = std::fs::read_to_string(&path)?;
        ensure!(contents == SECRET, "the secret was changed: {contents:?}");
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "the secret's mode changed: {mode:o}");
        Ok(())
    }

    fn install(&self, fixture: &str, name: &str) -> Result<()> {
        let source = Path::new(TESTING_DRIVERS).join(format!("{fixture}.wasm"));
        let target = self.dir.path().join("plugins").join(format!("{name}.wasm"));
        // Write then rename, as an operator's deploy would: the watcher never reads half a file.
        let temporary = target.with_extension("wasm.tmp");
        std::fs::copy(&source, &temporary).with_context(|| format!("copy {}", source.display()))?;
        std::fs::rename(&temporary, &target)?;
        Ok(())
    }

    /// The scope and config of task `name` of allocation `alloc_id`, laid out as the client does.
    fn task(&self, alloc_id: &str, name: &str, config: serde_json::Value) -> Result<Task> {
        let alloc_dir = self.dir.path().join(alloc_id);
        let logs = alloc_dir.join("alloc").join("logs");
        std::fs::create_dir_all(&logs)?;
        let scope = TaskScope::new(
            alloc_id,
            name,
            &alloc_dir,
            logs.join(format!("{name}.stdout.0")),
            logs.join(format!("{name}.stderr.0")),
        );
        std::fs::create_dir_all(scope.task_dir.join("local"))?;
        Ok(Task {
            scope,
            config: TaskConfig {
                config,
                ..TaskConfig::default()
            },
        })
    }
}

struct Task {
    scope: TaskScope,
    config: TaskConfig,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn wait_for_text(path: &Path, needle: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if read(path).contains(needle) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!(
        "{} does not contain {needle:?}: {:?}",
        path.display(),
        read(path)
    )
}

/// A raw_exec task of another allocation that keeps running: the victim of the attacks.
async fn start_victim(sandbox: &Sandbox) -> Result<(Driver, Task, TaskHandle)> {
    let raw_exec = sandbox.host.driver("raw_exec").await?;
    let victim = sandbox.task(
        "alloc-victim",
        "victim",
        json!({ "command": "/bin/sh", "args": ["-c", "echo ready; exec sleep 300"] }),
    )?;
    std::fs::write(victim.scope.task_dir.join("local/data"), "victim data")?;
    let handle = raw_exec.start_task(&victim.scope, &victim.config).await?;
    wait_for_text(&victim.scope.stdout_path, "ready", Duration::from_secs(5)).await?;
    Ok((raw_exec, victim, handle))
}

async fn assert_victim_runs(raw_exec: &Driver, victim: &Task, handle: &TaskHandle) -> Result<()> {
    let status = raw_exec.inspect_task(&victim.scope, handle).await?;
    ensure!(status.state == TaskState::Running, "the victim: {status:?}");
    ensure!(read(&victim.scope.task_dir.join("local/data")) == "victim data");
    Ok(())
}

/// The outcomes a hostile driver recorded in its state, by attempt.
fn outcomes(handle: &TaskHandle) -> Result<BTreeMap<String, String>> {
    let state: serde_json::Value = serde_json::from_slice(&handle.driver_state)?;
    let pairs: Vec<(String, String)> = serde_json::from_value(state["outcomes"].clone())?;
    Ok(pairs.into_iter().collect())
}

fn ensure_refused(outcomes: &BTreeMap<String, String>) -> Result<()> {
    for (attempt, outcome) in outcomes {
        ensure!(
            outcome.starts_with("err:"),
            "{attempt} was not refused: {outcome}"
        );
        ensure!(
            !outcome.contains(SECRET),
            "{attempt} leaked the secret: {outcome}"
        );
    }
    Ok(())
}

fn raw_exec_enabled() -> serde_json::Value {
    json!({ "enabled": true })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fs_driver_that_lies_about_its_task_reaches_only_its_own_task_dir() -> Result<()> {
    let sandbox = Sandbox::new(
        json!({ "raw_exec": raw_exec_enabled(), "fsliar": { "capabilities": ["fs"] } }),
        DriverLimits::default(),
    )?;
    sandbox.install("fsliar", "fsliar")?;
    let (raw_exec, victim, victim_handle) = start_victim(&sandbox).await?;
    let liar = sandbox.host.driver("fsliar").await?;
    let secret = sandbox.secret_path().display().to_string();
    let victim_data = victim
        .scope
        .task_dir
        .join("local/data")
        .display()
        .to_string();
    let task = sandbox.task(
        "alloc-1",
        "liar",
        json!({
            "read": [secret, "/etc/shadow", victim_data, "../../alloc-victim/victim/local/data",
                     "escape", "up/secret", "up/alloc-victim/victim/local/data"],
            "write": [secret, victim_data, "../../secret", "escape", "up/secret",
                      "up/alloc-victim/victim/local/data"],
        }),
    )?;
    // Task code planted symlinks in the task directory: to the secret, and to the host's parent.
    std::os::unix::fs::symlink(sandbox.secret_path(), task.scope.task_dir.join("escape"))?;
    std::os::unix::fs::symlink(sandbox.dir.path(), task.scope.task_dir.join("up"))?;

    let handle = liar.start_task(&task.scope, &task.config).await?;
    ensure!(
        handle.id == task.scope.task_id,
        "the host's id, not the driver's lie: {}",
        handle.id
    );
    ensure!(handle.wait_on == WaitOn::Poll);
    let outcomes = outcomes(&handle)?;
    ensure!(outcomes.len() == 13, "{outcomes:?}");
    ensure_refused(&outcomes)?;
    sandbox.assert_secret_intact()?;
    assert_victim_runs(&raw_exec, &victim, &victim_handle).await?;

    // The lying handle used for the victim's task (as a persisted handle naming another task
    // would be): refused before the driver runs.
    let err = liar
        .inspect_task(&victim.scope, &handle)
        .await
        .expect_err("another task's scope");
    ensure!(matches!(err, Error::ScopeMismatch { .. }), "{err}");

    // The host polls `inspect-task` (the driver gave it nothing to wait on); the stop writes a
    // marker beneath the liar's own task directory, which ends the task.
    let waiter = {
        let liar = liar.clone();
        let scope = task.scope.clone();
        let handle = handle.clone();
        tokio::spawn(async move { liar.wait_task(&scope, &handle).await })
    };
    liar.stop_task(&task.scope, &handle, Duration::from_secs(1), "")
        .await?;
    let exit = tokio::time::timeout(Duration::from_secs(10), waiter).await???;
    ensure!(exit.successful(), "{exit:?}");
    ensure!(read(&task.scope.task_dir.join("stopped")) == "yes");
    sandbox.assert_secret_intact()?;
    assert_victim_runs(&raw_exec, &victim, &victim_handle).await?;
    raw_exec
        .destroy_task(&victim.scope, &victim_handle, true)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_driver_naming_another_tasks_pid_is_refused_and_reaped() -> Result<()> {
    let sandbox = Sandbox::new(
        json!({ "raw_exec": raw_exec_enabled(), "pidthief": { "capabilities": ["process"] } }),
        DriverLimits::default(),
    )?;
    sandbox.install("pidthief", "pidthief")?;
    let (raw_exec, victim, victim_handle) = start_victim(&sandbox).await?;
    let WaitOn::Process(victim_pid) = victim_handle.wait_on else {
        bail!("raw_exec waits on its process: {:?}", victim_handle.wait_on);
    };
    let thief = sandbox.host.driver("pidthief").await?;
    let secret_dir = sandbox.dir.path().display().to_string();
    let task = sandbox.task(
        "alloc-1",
        "thief",
        json!({ "target_pid": victim_pid, "cwds": ["/", secret_dir, "..", "../../alloc-victim/victim", "up"] }),
    )?;
    std::os::unix::fs::symlink(sandbox.dir.path(), task.scope.task_dir.join("up"))?;

    let handle = thief.start_task(&task.scope, &task.config).await?;
    let outcomes = outcomes(&handle)?;
    let is_alive = outcomes.get("is-alive").cloned().unwrap_or_default();
    ensure!(
        is_alive == "false",
        "is-alive of another task's pid: {is_alive}"
    );
    let refused: BTreeMap<String, String> = outcomes
        .into_iter()
        .filter(|(attempt, _)| attempt != "is-alive")
        .collect();
    ensure!(refused.len() == 9, "{refused:?}");
    ensure_refused(&refused)?;
    assert_victim_runs(&raw_exec, &victim, &victim_handle).await?;
    // Its own process runs in its own task directory, output in its own log.
    wait_for_text(
        &task.scope.stdout_path,
        &task.scope.task_dir.canonicalize()?.display().to_string(),
        Duration::from_secs(5),
    )
    .await?;
    thief
        .destroy_task(&task.scope, &handle, true)
        .await
        .context("destroy")?;

    // Handing the host the victim's pid to wait on: refused, and the thief's own process (which
    // it started before lying) is reaped with the failed start.
    let task = sandbox.task(
        "alloc-2",
        "thief",
        json!({ "target_pid": victim_pid, "wait_on_target": true }),
    )?;
    let err = thief
        .start_task(&task.scope, &task.config)
        .await
        .expect_err("another task's pid as its waitable");
    ensure!(matches!(err, Error::ForeignWaitable { .. }), "{err}");
    ensure!(
        err.to_string().contains("not a process of this task"),
        "{err}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let sleepers = pids_with_cwd(&task.scope.task_dir)?;
        if sleepers.is_empty() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the failed start's process {sleepers:?} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_victim_runs(&raw_exec, &victim, &victim_handle).await?;
    sandbox.assert_secret_intact()?;
    raw_exec
        .destroy_task(&victim.scope, &victim_handle, true)
        .await?;
    Ok(())
}

/// Live processes whose working directory is `dir` (the test's own view, not the host's).
fn pids_with_cwd(dir: &Path) -> Result<Vec<u32>> {
    let dir = dir.canonicalize()?;
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.contains(") Z "));
        if !zombie && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_driver_cannot_preopen_the_host_or_name_another_tasks_workload() -> Result<()> {
    let sandbox = Sandbox::new(
        json!({ "wasmthief": { "capabilities": ["wasm"] } }),
        DriverLimits::default(),
    )?;
    sandbox.install("wasmthief", "wasmthief")?;
    let wasm = sandbox.host.driver("wasm").await?;
    // The victim: a counter workload of another allocation.
    let victim = sandbox.task(
        "alloc-victim",
        "counter",
        json!({ "module": "counter.wasm", "args": ["300"] }),
    )?;
    std::fs::copy(COUNTER_WASM, victim.scope.task_dir.join("counter.wasm"))?;
    let victim_handle = wasm.start_task(&victim.scope, &victim.config).await?;
    let WaitOn::Workload(victim_id) = victim_handle.wait_on else {
        bail!(
            "the wasm driver waits on its workload: {:?}",
            victim_handle.wait_on
        );
    };
    wait_for_text(
        &victim.scope.stdout_path,
        "count 1\n",
        Duration::from_secs(10),
    )
    .await?;

    let thief = sandbox.host.driver("wasmthief").await?;
    let secret = sandbox.secret_path().display().to_string();
    let task = sandbox.task(
        "alloc-1",
        "thief",
        json!({
            "module": "hello.wasm",
            "target_workload": victim_id,
            "memory_limit_mb": 4096,
            "modules": [HELLO_WASM, "../../alloc-victim/counter/counter.wasm", "linked.wasm"],
            "dirs": ["/", secret, "..", "up", "../../alloc-victim/counter"],
        }),
    )?;
    std::fs::copy(HELLO_WASM, task.scope.task_dir.join("hello.wasm"))?;
    std::os::unix::fs::symlink(sandbox.dir.path(), task.scope.task_dir.join("up"))?;
    std::os::unix::fs::symlink(
        victim.scope.task_dir.join("counter.wasm"),
        task.scope.task_dir.join("linked.wasm"),
    )?;
    let mut scope = task.scope.clone();
    scope.resources.memory_mb = 32;

    let handle = thief.start_task(&scope, &task.config).await?;
    let outcomes = outcomes(&handle)?;
    let is_running = outcomes.get("is-running").cloned().unwrap_or_default();
    ensure!(
        is_running == "false",
        "is-running of another task's workload: {is_running}"
    );
    let refused: BTreeMap<String, String> = outcomes
        .into_iter()
        .filter(|(attempt, _)| attempt != "is-running")
        .collect();
    ensure!(refused.len() == 11, "{refused:?}");
    ensure_refused(&refused)?;
    // Its own workload ran with the task's log files and within the task's memory.
    let exit = thief.wait_task(&scope, &handle).await?;
    ensure!(exit.exit_code == 0, "{exit:?}");
    let stdout = read(&scope.stdout_path);
    ensure!(stdout.contains("hello from caravan"), "{stdout}");
    ensure!(
        wasm.inspect_task(&victim.scope, &victim_handle)
            .await?
            .state
            == TaskState::Running,
        "the victim's workload still runs"
    );

    // Handing the host the victim's workload to wait on: refused.
    let task = sandbox.task(
        "alloc-2",
        "thief",
        json!({ "module": "hello.wasm", "target_workload": victim_id, "wait_on_target": true }),
    )?;
    std::fs::copy(HELLO_WASM, task.scope.task_dir.join("hello.wasm"))?;
    let err = thief
        .start_task(&task.scope, &task.config)
        .await
        .expect_err("another task's workload as its waitable");
    ensure!(matches!(err, Error::ForeignWaitable { .. }), "{err}");
    ensure!(
        wasm.inspect_task(&victim.scope, &victim_handle)
            .await?
            .state
            == TaskState::Running,
        "the victim's workload still runs"
    );
    sandbox.assert_secret_intact()?;
    wasm.stop_task(&victim.scope, &victim_handle, Duration::from_secs(1), "")
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_workload_is_capped_at_the_tasks_memory() -> Result<()> {
    let sandbox = Sandbox::new(
        json!({ "wasmthief": { "capabilities": ["wasm"] } }),
        DriverLimits::default(),
    )?;
    sandbox.install("wasmthief", "wasmthief")?;
    let thief = sandbox.host.driver("wasmthief").await?;
    // It asks for 4 GiB; the task has 1 MiB, less than hello's initial memory: it cannot start.
    let task = sandbox.task(
        "alloc-1",
        "greedy",
        json!({ "module": "hello.wasm", "memory_limit_mb": 4096 }),
    )?;
    std::fs::copy(HELLO_WASM, task.scope.task_dir.join("hello.wasm"))?;
    let mut scope = task.scope.clone();
    scope.resources.memory_mb = 1;
    let handle = thief.start_task(&scope, &task.config).await?;
    let exit = thief.wait_task(&scope, &handle).await?;
    ensure!(exit.exit_code != 0 && exit.err.is_some(), "{exit:?}");
    ensure!(!read(&scope.stdout_path).contains("hello from caravan"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_running_tasks_hold_no_driver_instances() -> Result<()> {
    // An instance pool of 64 and 1,100 tasks waiting at once: before waits moved to the host,
    // each waiting task held an instance and the 65th start failed ("maximum concurrent limit").
    let sandbox = Sandbox::new(
        json!({ "raw_exec": raw_exec_enabled() }),
        DriverLimits {
            max_instances: 64,
            ..DriverLimits::default()
        },
    )?;
    let raw_exec = sandbox.host.driver("raw_exec").await?;
    let mut tasks = Vec::new();
    let mut waits = Vec::new();
    for index in 0..1_100 {
        let task = sandbox.task(
            "alloc-many",
            &format!("t{index}"),
            json!({ "command": "/bin/sleep", "args": ["600"] }),
        )?;
        let handle = raw_exec
            .start_task(&task.scope, &task.config)
            .await
            .with_context(|| format!("start task {index}"))?;
        let waiter = {
            let raw_exec = raw_exec.clone();
            let scope = task.scope.clone();
            let handle = handle.clone();
            tokio::spawn(async move { raw_exec.wait_task(&scope, &handle).await })
        };
        tasks.push((task, handle));
        waits.push(waiter);
    }
    // All 1,100 wait; the fingerprints still get instances.
    let fingerprints = sandbox.host.fingerprint_all().await;
    for name in ["wasm", "docker", "raw_exec"] {
        ensure!(
            fingerprints.get(name).is_some_and(Result::is_ok),
            "{name}: {:?}",
            fingerprints.get(name)
        );
    }
    ensure!(
        fingerprints["wasm"]
            .as_ref()
            .is_ok_and(|fingerprint| fingerprint.health == Health::Healthy)
    );
    // Stopping them all completes (each stop gets an instance of its own).
    for (task, handle) in &tasks {
        raw_exec.destroy_task(&task.scope, handle, true).await?;
    }
    for wait in waits {
        let exit = tokio::time::timeout(Duration::from_secs(60), wait).await???;
        ensure!(exit.signal == 9, "{exit:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_replaced_in_the_plugin_dir_takes_over_running_tasks() -> Result<()> {
    let sandbox = Sandbox::new(
        json!({ "upgrader": { "capabilities": ["process", "fs"] } }),
        DriverLimits::default(),
    )?;
    sandbox.install("upgrade_v1", "upgrader")?;
    let upgrader = sandbox.host.driver("upgrader").await?;
    ensure!(upgrader.info().version == "1.0.0");
    let task = sandbox.task("alloc-1", "app", json!({}))?;
    let handle = upgrader.start_task(&task.scope, &task.config).await?;
    let WaitOn::Process(pid) = handle.wait_on else {
        bail!("the upgrader waits on its process: {:?}", handle.wait_on);
    };
    let waiter = {
        let upgrader = upgrader.clone();
        let scope = task.scope.clone();
        let handle = handle.clone();
        tokio::spawn(async move { upgrader.wait_task(&scope, &handle).await })
    };

    // A broken "version" in its place: the old one keeps serving, the error in its health (the
    // explicit reload and the watcher race; either records the error).
    std::fs::write(
        sandbox.dir.path().join("plugins/upgrader.wasm"),
        b"not a component",
    )?;
    if let Err(err) = sandbox.host.reload("upgrader").await {
        ensure!(matches!(err, Error::InvalidComponent { .. }), "{err}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while upgrader.reload_error().is_none() {
        ensure!(
            Instant::now() < deadline,
            "the failed reload was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(upgrader.info().version == "1.0.0");
    let fingerprint = upgrader.fingerprint().await?;
    ensure!(
        fingerprint.description.contains("reload failed"),
        "{fingerprint:?}"
    );

    // Version 2 in its place: the host's watcher picks it up (content hash, polled).
    sandbox.install("upgrade_v2", "upgrader")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while upgrader.info().version != "2.0.0" {
        ensure!(Instant::now() < deadline, "v2 was not loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(upgrader.reload_error().is_none());
    // Re-attached by v2's recover-task, nothing restarted: same pid, still running.
    let recovered = task.scope.task_dir.join("recovered-by-2.0.0");
    wait_for_text(&recovered, &pid.to_string(), Duration::from_secs(10)).await?;
    let status = upgrader.inspect_task(&task.scope, &handle).await?;
    ensure!(status.state == TaskState::Running, "{status:?}");
    ensure!(
        status.attributes.get("pid") == Some(&pid.to_string())
            && status.attributes.get("version").map(String::as_str) == Some("2.0.0"),
        "{status:?}"
    );
    ensure!(!waiter.is_finished(), "the host still waits on the task");

    // The stop goes through v2.
    upgrader
        .stop_task(&task.scope, &handle, Duration::from_secs(2), "")
        .await?;
    ensure!(read(&task.scope.task_dir.join("stopped-by-2.0.0")) == pid.to_string());
    ensure!(!task.scope.task_dir.join("stopped-by-1.0.0").exists());
    let exit = tokio::time::timeout(Duration::from_secs(10), waiter).await???;
    ensure!(exit.signal == 15, "ended by the stop's SIGTERM: {exit:?}");
    Ok(())
}
