//! [`Driver`]: one loaded driver and the calls the client makes on it (Nomad's `DriverPlugin`).
//!
//! Every call instantiates the driver afresh from its `InstancePre` (a pooled slot, microseconds),
//! runs one export under the call's limits and drops the instance. A driver therefore keeps no
//! state between calls, and a failed call leaves nothing behind: what a failed or timed-out
//! `start-task` created is reaped by the host.
//!
//! Every task call takes the task's [`TaskScope`] (the client's record) and binds the call's
//! capabilities to it; a [`TaskHandle`] whose task id is not the scope's is refused. A running
//! task holds no instance: [`Driver::wait_task`] waits natively on what `start-task` returned
//! (checked to be the task's own) and calls the short `interpret-exit` when it ends.
//!
//! Hot upgrade: a [`Driver`] is a slot holding the current [`Version`]; each call reads the slot,
//! so whoever holds a `Driver` uses the newest version for the next call. [`Driver::upgrade`]
//! swaps in a new version and re-attaches every live task through the new version's
//! `recover-task`, restarting nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use wasmtime::Engine;

use crate::driver_host::DriverLimits;
use crate::driver_host::bindings;
use crate::driver_host::error::{DriverError, Error, Result};
use crate::driver_host::grants::{Capability, PluginGrants};
use crate::driver_host::host::{HostRuntime, RawExit};
use crate::driver_host::instance::{CallLimits, CallState, Instance, classify};
use crate::driver_host::types::{
    DriverInfo, ExecResult, ExitResult, Fingerprint, HostRecord, TaskConfig, TaskHandle, TaskScope,
    TaskState, TaskStats, TaskStatus,
};

/// How often the host asks `inspect-task` about a task whose driver gave it nothing to wait on.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Consecutive failed `inspect-task` polls after which the wait gives up.
const POLL_FAILURES: u32 = 5;

/// A loaded driver: a slot holding its current version. Cheap to clone; calls may run
/// concurrently.
#[derive(Clone)]
pub struct Driver {
    slot: Arc<Slot>,
}

struct Slot {
    name: Arc<str>,
    current: RwLock<Arc<Version>>,
    /// The live tasks of this driver (started or recovered, not yet destroyed), re-attached on
    /// upgrade.
    tasks: Mutex<HashMap<String, (TaskScope, TaskHandle)>>,
    /// Why the last reload failed, while the old version keeps serving.
    reload_error: Mutex<Option<String>>,
    /// SHA-256 of the component the current version was loaded from.
    source_hash: Mutex<Vec<u8>>,
}

/// One loaded version of a driver: its component, grants and info.
pub(crate) struct Version {
    name: Arc<str>,
    info: DriverInfo,
    grants: PluginGrants,
    engine: Engine,
    pre: bindings::DriverPre<CallState>,
    runtime: Arc<HostRuntime>,
    limits: DriverLimits,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("name", &self.slot.name)
            .field("info", &self.current().info)
            .finish_non_exhaustive()
    }
}

/// Runs one export on a fresh instance of `$version`: `call!(version, "name", scope, timeout,
/// |plugin, store| plugin.call_x(store, ...))`, a `Result` of the export's value. A macro rather
/// than a closure-taking function so the futures stay `Send` for the client's tokio tasks.
macro_rules! call {
    ($version:expr, $call:literal, $scope:expr, $timeout:expr, |$plugin:ident, $store:ident| $body:expr) => {{
        let version: &Version = $version;
        let timeout: Option<Duration> = $timeout;
        match version.instantiate($call, $scope).await {
            Err(err) => Err(err),
            Ok(mut instance) => {
                let outcome = {
                    let $plugin = instance.bindings.caravan_driver_plugin();
                    let $store = &mut instance.store;
                    let span = tracing::debug_span!("driver_call", driver = %version.name, func = $call);
                    let future = tracing::Instrument::instrument($body, span);
                    match timeout {
                        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
                        None => Some(future.await),
                    }
                };
                version.finish($call, &instance, outcome, timeout)
            }
        }
    }};
}

impl Version {
    /// Loads a version: calls `info` and checks the driver's name.
    pub(crate) async fn load(
        name: &str,
        grants: PluginGrants,
        engine: Engine,
        pre: bindings::DriverPre<CallState>,
        runtime: Arc<HostRuntime>,
        limits: DriverLimits,
    ) -> Result<Version> {
        let mut version = Version {
            name: Arc::from(name),
            info: DriverInfo {
                name: name.to_owned(),
                version: String::new(),
                capabilities: crate::driver_host::types::Capabilities {
                    send_signals: false,
                    exec: false,
                    fs_isolation: crate::driver_host::types::FsIsolation::None,
                },
            },
            grants,
            engine,
            pre,
            runtime,
            limits,
        };
        let info: DriverInfo = call!(
            &version,
            "info",
            None,
            Some(limits.call_timeout),
            |plugin, store| plugin.call_info(store)
        )?
        .into();
        if info.name != name {
            return Err(Error::InvalidComponent {
                driver: name.to_owned(),
                reason: format!(
                    "it calls itself {:?}; its file must be named {}.wasm",
                    info.name, info.name
                ),
            });
        }
        version.info = info;
        Ok(version)
    }

    pub(crate) fn info(&self) -> &DriverInfo {
        &self.info
    }

    fn docker_granted(&self) -> bool {
        self.grants.capabilities.contains(&Capability::Docker)
    }

    fn driver_result<T>(
        &self,
        call: &'static str,
        result: Result<T, bindings::wit::DriverError>,
    ) -> Result<T> {
        result.map_err(|error| Error::Driver {
            driver: self.name.to_string(),
            call,
            error: DriverError::from(error),
        })
    }

    async fn instantiate(&self, call: &'static str, scope: Option<&TaskScope>) -> Result<Instance> {
        let limits = CallLimits {
            memory_cap_bytes: self.limits.memory_cap_bytes,
            cpu_budget: self.limits.cpu_budget,
            host_call_timeout: self.limits.host_call_timeout,
        };
        let state = CallState::new(
            Arc::clone(&self.name),
            limits,
            scope.map(|scope| Arc::new(scope.clone())),
            Arc::clone(&self.runtime),
        );
        let permit = self
            .runtime
            .lanes
            .acquire(&self.name, call, self.limits.slot_wait)
            .await?;
        Instance::new(&self.engine, &self.pre, state, permit)
            .await
            .map_err(|err| Error::Instantiate {
                driver: self.name.to_string(),
                call,
                reason: format!("{err:#}"),
            })
    }

    fn finish<R>(
        &self,
        call: &'static str,
        instance: &Instance,
        outcome: Option<wasmtime::Result<R>>,
        timeout: Option<Duration>,
    ) -> Result<R> {
        let error = match outcome {
            Some(Ok(value)) => return Ok(value),
            Some(Err(err)) => classify(call, instance.store.data(), &err),
            None => Error::Timeout {
                driver: self.name.to_string(),
                call,
                timeout: timeout.unwrap_or_default(),
            },
        };
        tracing::warn!(driver = %self.name, call, error = %error, "driver call failed; its instance is discarded");
        Err(error)
    }

    async fn recover(&self, scope: &TaskScope, handle: &TaskHandle) -> Result<()> {
        let wit_handle = handle.to_wit();
        let result = call!(
            self,
            "recover-task",
            Some(scope),
            Some(self.limits.call_timeout),
            |plugin, store| plugin.call_recover_task(store, &wit_handle)
        )?;
        self.driver_result("recover-task", result)
    }

    async fn inspect(&self, scope: &TaskScope, handle: &TaskHandle) -> Result<TaskStatus> {
        let wit_handle = handle.to_wit();
        let result = call!(
            self,
            "inspect-task",
            Some(scope),
            Some(self.limits.call_timeout),
            |plugin, store| plugin.call_inspect_task(store, &wit_handle)
        )?;
        Ok(self.driver_result("inspect-task", result)?.into())
    }
}

impl Driver {
    pub(crate) fn new(version: Version, source_hash: Vec<u8>) -> Driver {
        Driver {
            slot: Arc::new(Slot {
                name: Arc::clone(&version.name),
                current: RwLock::new(Arc::new(version)),
                tasks: Mutex::new(HashMap::new()),
                reload_error: Mutex::new(None),
                source_hash: Mutex::new(source_hash),
            }),
        }
    }

    /// The version serving calls now.
    fn current(&self) -> Arc<Version> {
        Arc::clone(
            &self
                .slot
                .current
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, (TaskScope, TaskHandle)>> {
        self.slot
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The driver's name as job files use it.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// Name, version and capabilities, as the current version reported them when it loaded.
    pub fn info(&self) -> DriverInfo {
        self.current().info.clone()
    }

    /// The capabilities this driver's instances are linked with.
    pub fn capabilities(&self) -> Vec<Capability> {
        self.current().grants.capabilities.iter().copied().collect()
    }

    /// Why the last reload of this driver failed (the previous version keeps serving).
    pub fn reload_error(&self) -> Option<String> {
        self.slot
            .reload_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn set_reload_error(&self, error: Option<String>) {
        *self
            .slot
            .reload_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = error;
    }

    pub(crate) fn source_hash(&self) -> Vec<u8> {
        self.slot
            .source_hash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Serves the next calls with `version` and re-attaches every live task through its
    /// `recover-task` (nothing is restarted: processes, workloads and containers belong to the
    /// host and keep running). Returns how many tasks the new version re-attached.
    pub(crate) async fn upgrade(&self, version: Version, source_hash: Vec<u8>) -> usize {
        let version = Arc::new(version);
        *self
            .slot
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::clone(&version);
        *self
            .slot
            .source_hash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = source_hash;
        self.set_reload_error(None);
        let tasks: Vec<(TaskScope, TaskHandle)> = self.tasks().values().cloned().collect();
        let mut attached = 0;
        for (scope, handle) in tasks {
            match version.recover(&scope, &handle).await {
                Ok(()) => attached += 1,
                Err(err) => {
                    tracing::warn!(driver = %self.slot.name, task = %scope.task_id, error = %err, "new driver version did not re-attach the task; the host keeps waiting on it")
                }
            }
        }
        tracing::info!(driver = %self.slot.name, version = %version.info.version, tasks = attached, "driver upgraded");
        attached
    }

    /// JSON Schema of the task `config { ... }` block.
    pub async fn config_schema(&self) -> Result<String> {
        let version = self.current();
        call!(
            &version,
            "config-schema",
            None,
            Some(version.limits.call_timeout),
            |plugin, store| plugin.call_config_schema(store)
        )
    }

    /// Health and node attributes, given the agent's plugin config. A failed reload is named in
    /// the description.
    #[tracing::instrument(level = "debug", skip_all, fields(driver = %self.slot.name))]
    pub async fn fingerprint(&self) -> Result<Fingerprint> {
        let version = self.current();
        let config = version.grants.config_json.clone();
        let mut fingerprint: Fingerprint = call!(
            &version,
            "fingerprint",
            None,
            Some(version.limits.call_timeout),
            |plugin, store| plugin.call_fingerprint(store, &config)
        )?
        .into();
        if let Some(error) = self.reload_error() {
            fingerprint.description = format!(
                "{} (version {} serving; reload failed: {error})",
                fingerprint.description, version.info.version
            );
        }
        Ok(fingerprint)
    }

    /// Validates the task config and starts the task of `scope`. If the call fails or times out,
    /// or returns something to wait on that is not the task's own, everything the task owns is
    /// reaped.
    #[tracing::instrument(level = "debug", skip_all, fields(driver = %self.slot.name, task = %scope.task_id))]
    pub async fn start_task(&self, scope: &TaskScope, config: &TaskConfig) -> Result<TaskHandle> {
        let version = self.current();
        let wit_config = config.to_wit(scope);
        let result = call!(
            &version,
            "start-task",
            Some(scope),
            Some(version.limits.call_timeout),
            |plugin, store| plugin.call_start_task(store, &wit_config)
        );
        let started = match result.and_then(|result| version.driver_result("start-task", result)) {
            Ok(started) => started,
            Err(err) => {
                version
                    .runtime
                    .reap(&version.name, scope, version.docker_granted())
                    .await;
                return Err(err);
            }
        };
        let handle = TaskHandle::from_wit(&version.name, scope, started);
        if let Err(reason) = version
            .runtime
            .check_waitable(&version.name, scope, &handle.wait_on)
            .await
        {
            version
                .runtime
                .reap(&version.name, scope, version.docker_granted())
                .await;
            return Err(Error::ForeignWaitable {
                driver: version.name.to_string(),
                reason,
            });
        }
        self.tasks()
            .insert(scope.task_id.clone(), (scope.clone(), handle.clone()));
        Ok(handle)
    }

    /// Waits until the task exits. The host waits on the task's own process, workload or
    /// container (no driver instance is held meanwhile) and then asks the driver's
    /// `interpret-exit` what the end means; for [`WaitOn::Poll`] it asks `inspect-task` every
    /// second.
    #[tracing::instrument(level = "debug", skip_all, fields(driver = %self.slot.name, task = %scope.task_id))]
    pub async fn wait_task(&self, scope: &TaskScope, handle: &TaskHandle) -> Result<ExitResult> {
        self.check_handle(scope, handle)?;
        let runtime = Arc::clone(&self.current().runtime);
        let raw = match runtime.wait(&self.slot.name, scope, &handle.wait_on).await {
            Some(raw) => raw.map_err(|reason| Error::Wait {
                driver: self.slot.name.to_string(),
                task_id: scope.task_id.clone(),
                reason,
            })?,
            None => return self.poll_until_exited(scope, handle).await,
        };
        let version = self.current();
        let wit_handle = handle.to_wit();
        let interpreted = call!(
            &version,
            "interpret-exit",
            Some(scope),
            Some(version.limits.call_timeout),
            |plugin, store| plugin.call_interpret_exit(store, &wit_handle, &raw)
        );
        Ok(match interpreted {
            Ok(exit) => exit.into(),
            Err(err) => {
                tracing::warn!(driver = %self.slot.name, error = %err, "interpret-exit failed; reporting the raw exit");
                ExitResult::from(&raw)
            }
        })
    }

    async fn poll_until_exited(
        &self,
        scope: &TaskScope,
        handle: &TaskHandle,
    ) -> Result<ExitResult> {
        let mut failures = 0;
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            match self.current().inspect(scope, handle).await {
                Ok(status) => {
                    failures = 0;
                    if let TaskState::Exited(exit) = status.state {
                        return Ok(exit);
                    }
                }
                Err(err) => {
                    failures += 1;
                    if failures >= POLL_FAILURES {
                        return Err(err);
                    }
                }
            }
        }
    }

    /// Sends `signal` (empty for the driver's default), then kills the task if it still runs
    /// after `timeout` (Nomad: `kill_signal`, `kill_timeout`).
    #[tracing::instrument(level = "debug", skip_all, fields(driver = %self.slot.name, task = %scope.task_id))]
    pub async fn stop_task(
        &self,
        scope: &TaskScope,
        handle: &TaskHandle,
        timeout: Duration,
        signal: &str,
    ) -> Result<()> {
        self.check_handle(scope, handle)?;
        let version = self.current();
        let wit_handle = handle.to_wit();
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let limit = version.limits.call_timeout.saturating_add(timeout);
        let result = call!(
            &version,
            "stop-task",
            Some(scope),
            Some(limit),
            |plugin, store| plugin.call_stop_task(store, &wit_handle, timeout_ms, signal)
        )?;
        version.driver_result("stop-task", result)
    }

    /// Releases the task; with `force` kills it first if it still runs. Afterwards the host
    /// reaps whatever the task still owns and forgets the task.
    pub async fn destroy_task(
        &self,
        scope: &TaskScope,
        handle: &TaskHandle,
        force: bool,
    ) -> Result<()> {
        self.check_handle(scope, handle)?;
        let version = self.current();
        let wit_handle = handle.to_wit();
        let result = call!(
            &version,
            "destroy-task",
            Some(scope),
            Some(version.limits.call_timeout),
            |plugin, store| plugin.call_destroy_task(store, &wit_handle, force)
        )
        .and_then(|result| version.driver_result("destroy-task", result));
        if force || result.is_ok() {
            version
                .runtime
                .reap(&version.name, scope, version.docker_granted())
                .await;
            self.tasks().remove(&scope.task_id);
        }
        result
    }

    pub async fn inspect_task(&self, scope: &TaskScope, handle: &TaskHandle) -> Result<TaskStatus> {
        self.check_handle(scope, handle)?;
        self.current().inspect(scope, handle).await
    }

    /// What the host recorded of the task's things (its running processes with their start
    /// times), for the client to persist beside the handle.
    pub fn host_record(&self, scope: &TaskScope) -> HostRecord {
        HostRecord {
            processes: self.current().runtime.processes.records(&scope.task_id),
        }
    }

    /// Re-attaches to a task after an agent restart: the host first re-registers the task's
    /// processes from `record` (the client's persisted host record, not driver state), then asks
    /// the driver; [`DriverError::TaskNotFound`] when it is gone.
    pub async fn recover_task(
        &self,
        scope: &TaskScope,
        handle: &TaskHandle,
        record: &HostRecord,
    ) -> Result<()> {
        self.check_handle(scope, handle)?;
        let version = self.current();
        version
            .runtime
            .processes
            .adopt(&scope.task_id, &record.processes);
        version.recover(scope, handle).await?;
        self.tasks()
            .insert(scope.task_id.clone(), (scope.clone(), handle.clone()));
        Ok(())
    }

    pub async fn signal_task(
        &self,
        scope: &TaskScope,
        handle: &TaskHandle,
        signal: &str,
    ) -> Result<()> {
        self.check_handle(scope, handle)?;
        let version = self.current();
        let wit_handle = handle.to_wit();
        let result = call!(
            &version,
            "signal-task",
            Some(scope),
            Some(version.limits.call_timeout),
            |plugin, store| plugin.call_signal_task(store, &wit_handle, signal)
        )?;
        version.driver_result("signal-task", result)
    }

    /// Runs `cmd` in the task's context, killed after `timeout`.
    pub async fn exec_task(
        &self,
        scope: &TaskScope,
        handle: &TaskHandle,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult> {
        self.check_handle(scope, handle)?;
        let version = self.current();
        let wit_handle = handle.to_wit();
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let limit = version.limits.call_timeout.saturating_add(timeout);
        let result = call!(
            &version,
            "exec-task",
            Some(scope),
            Some(limit),
            |plugin, store| plugin.call_exec_task(store, &wit_handle, cmd, timeout_ms)
        )?;
        Ok(version.driver_result("exec-task", result)?.into())
    }

    pub async fn task_stats(&self, scope: &TaskScope, handle: &TaskHandle) -> Result<TaskStats> {
        self.check_handle(scope, handle)?;
        let version = self.current();
        let wit_handle = handle.to_wit();
        let result = call!(
            &version,
            "task-stats",
            Some(scope),
            Some(version.limits.call_timeout),
            |plugin, store| plugin.call_task_stats(store, &wit_handle)
        )?;
        Ok(version.driver_result("task-stats", result)?.into())
    }

    /// Benchmark support: instantiates the driver from its `InstancePre` and drops the instance.
    #[doc(hidden)]
    pub async fn bench_instantiate(&self) -> Result<()> {
        self.current().instantiate("bench", None).await.map(drop)
    }

    /// Benchmark support: makes `calls` host→driver→host round trips on one instance (an
    /// `inspect-task` whose driver calls back into a host capability) and returns their time.
    #[doc(hidden)]
    pub async fn bench_round_trips(
        &self,
        scope: &TaskScope,
        handle: &TaskHandle,
        calls: u64,
    ) -> Result<Duration> {
        self.check_handle(scope, handle)?;
        let version = self.current();
        let wit_handle = handle.to_wit();
        let mut instance = version.instantiate("bench", Some(scope)).await?;
        let started = std::time::Instant::now();
        for _ in 0..calls {
            let plugin = instance.bindings.caravan_driver_plugin();
            let outcome = plugin
                .call_inspect_task(&mut instance.store, &wit_handle)
                .await;
            version
                .finish("inspect-task", &instance, Some(outcome), None)?
                .ok();
        }
        Ok(started.elapsed())
    }

    /// Refuses a handle of another driver or of another task than the call's scope.
    fn check_handle(&self, scope: &TaskScope, handle: &TaskHandle) -> Result<()> {
        if handle.driver != *self.slot.name {
            return Err(Error::ForeignHandle {
                driver: self.slot.name.to_string(),
                task_id: handle.id.clone(),
                owner: handle.driver.clone(),
            });
        }
        if handle.id != scope.task_id {
            return Err(Error::ScopeMismatch {
                driver: self.slot.name.to_string(),
                handle_task: handle.id.clone(),
                scope_task: scope.task_id.clone(),
            });
        }
        Ok(())
    }
}

/// The raw exit as the host saw it, as an exit result (when `interpret-exit` fails).
impl From<&RawExit> for ExitResult {
    fn from(raw: &RawExit) -> ExitResult {
        ExitResult {
            exit_code: raw.exit_code,
            signal: raw.signal,
            oom_killed: raw.oom_killed,
            err: raw.detail.clone(),
        }
    }
}
