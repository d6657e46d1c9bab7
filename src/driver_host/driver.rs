//! [`Driver`]: one loaded driver and the calls the client makes on it (Nomad's `DriverPlugin`).
//!
//! Every call instantiates the driver afresh from its `InstancePre` (a pooled slot, microseconds),
//! runs one export under the call's limits and drops the instance. A driver therefore keeps no
//! state between calls, and a failed call leaves nothing behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;

use crate::driver_host::DriverLimits;
use crate::driver_host::bindings;
use crate::driver_host::error::{DriverError, Error, Result};
use crate::driver_host::grants::{Capability, PluginGrants};
use crate::driver_host::host::HostRuntime;
use crate::driver_host::instance::{CallLimits, CallState, Instance, classify};
use crate::driver_host::types::{
    DriverInfo, ExecResult, ExitResult, Fingerprint, TaskConfig, TaskHandle, TaskStats, TaskStatus,
};

/// A loaded driver. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct Driver {
    inner: Arc<DriverInner>,
}

struct DriverInner {
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
            .field("name", &self.inner.name)
            .field("info", &self.inner.info)
            .finish_non_exhaustive()
    }
}

/// Runs one export on a fresh instance: `call!(self, "name", task_dir, timeout, |plugin, store|
/// plugin.call_x(store, ...))`. A macro rather than a closure-taking function so the futures stay
/// `Send` for the client's tokio tasks.
macro_rules! call {
    ($driver:ident, $call:literal, $task_dir:expr, $timeout:expr, |$plugin:ident, $store:ident| $body:expr) => {{
        let timeout: Option<Duration> = $timeout;
        let mut instance = $driver.instantiate($call, $task_dir).await?;
        let outcome = {
            let $plugin = instance.bindings.caravan_driver_plugin();
            let $store = &mut instance.store;
            let span = tracing::debug_span!("driver_call", driver = %$driver.inner.name, func = $call);
            let future = tracing::Instrument::instrument($body, span);
            match timeout {
                Some(limit) => tokio::time::timeout(limit, future).await.ok(),
                None => Some(future.await),
            }
        };
        $driver.finish($call, &instance, outcome, timeout)?
    }};
}

impl Driver {
    pub(crate) async fn new(
        name: &str,
        grants: PluginGrants,
        engine: Engine,
        pre: bindings::DriverPre<CallState>,
        runtime: Arc<HostRuntime>,
        limits: DriverLimits,
    ) -> Result<Driver> {
        let placeholder = DriverInfo {
            name: name.to_owned(),
            version: String::new(),
            capabilities: crate::driver_host::types::Capabilities {
                send_signals: false,
                exec: false,
                fs_isolation: crate::driver_host::types::FsIsolation::None,
            },
        };
        let mut driver = DriverInner {
            name: Arc::from(name),
            info: placeholder,
            grants,
            engine,
            pre,
            runtime,
            limits,
        };
        let probe = Driver {
            inner: Arc::new(clone_inner(&driver)),
        };
        let info: DriverInfo = call!(
            probe,
            "info",
            None,
            Some(limits.call_timeout),
            |plugin, store| plugin.call_info(store)
        )
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
        driver.info = info;
        Ok(Driver {
            inner: Arc::new(driver),
        })
    }

    /// The driver's name as job files use it.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Name, version and capabilities, as the driver reported them when it loaded.
    pub fn info(&self) -> &DriverInfo {
        &self.inner.info
    }

    /// The capabilities this driver's instances are linked with.
    pub fn capabilities(&self) -> impl Iterator<Item = Capability> + '_ {
        self.inner.grants.capabilities.iter().copied()
    }

    /// JSON Schema of the task `config { ... }` block.
    pub async fn config_schema(&self) -> Result<String> {
        Ok(call!(
            self,
            "config-schema",
            None,
            Some(self.inner.limits.call_timeout),
            |plugin, store| plugin.call_config_schema(store)
        ))
    }

    /// Health and node attributes, given the agent's plugin config.
    #[tracing::instrument(level = "debug", skip_all, fields(driver = %self.inner.name))]
    pub async fn fingerprint(&self) -> Result<Fingerprint> {
        let config = self.inner.grants.config_json.clone();
        Ok(call!(
            self,
            "fingerprint",
            None,
            Some(self.inner.limits.call_timeout),
            |plugin, store| plugin.call_fingerprint(store, &config)
        )
        .into())
    }

    /// Validates the task config and starts the task.
    #[tracing::instrument(level = "debug", skip_all, fields(driver = %self.inner.name, task = %config.id))]
    pub async fn start_task(&self, config: &TaskConfig) -> Result<TaskHandle> {
        let wit_config = config.to_wit();
        let result = call!(
            self,
            "start-task",
            Some(&config.task_dir),
            Some(self.inner.limits.call_timeout),
            |plugin, store| plugin.call_start_task(store, &wit_config)
        );
        let handle = self.driver_result("start-task", result)?;
        Ok(TaskHandle::from_wit(&self.inner.name, handle))
    }

    /// Waits until the task exits. The call suspends (no thread is held) for as long as the task
    /// runs; it has no wall-clock timeout, only the CPU budget for the driver's own code.
    #[tracing::instrument(level = "debug", skip_all, fields(driver = %self.inner.name, task = %handle.id))]
    pub async fn wait_task(&self, handle: &TaskHandle) -> Result<ExitResult> {
        let wit_handle = self.check_handle(handle)?;
        let result = call!(
            self,
            "wait-task",
            Some(&handle.task_dir),
            None,
            |plugin, store| plugin.call_wait_task(store, &wit_handle)
        );
        Ok(self.driver_result("wait-task", result)?.into())
    }

    /// Sends `signal` (empty for the driver's default), then kills the task if it still runs
    /// after `timeout` (Nomad: `kill_signal`, `kill_timeout`).
    #[tracing::instrument(level = "debug", skip_all, fields(driver = %self.inner.name, task = %handle.id))]
    pub async fn stop_task(
        &self,
        handle: &TaskHandle,
        timeout: Duration,
        signal: &str,
    ) -> Result<()> {
        let wit_handle = self.check_handle(handle)?;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let limit = self.inner.limits.call_timeout.saturating_add(timeout);
        let result = call!(
            self,
            "stop-task",
            Some(&handle.task_dir),
            Some(limit),
            |plugin, store| plugin.call_stop_task(store, &wit_handle, timeout_ms, signal)
        );
        self.driver_result("stop-task", result)
    }

    /// Releases the task; with `force` kills it first if it still runs.
    pub async fn destroy_task(&self, handle: &TaskHandle, force: bool) -> Result<()> {
        let wit_handle = self.check_handle(handle)?;
        let result = call!(
            self,
            "destroy-task",
            Some(&handle.task_dir),
            Some(self.inner.limits.call_timeout),
            |plugin, store| plugin.call_destroy_task(store, &wit_handle, force)
        );
        self.driver_result("destroy-task", result)
    }

    pub async fn inspect_task(&self, handle: &TaskHandle) -> Result<TaskStatus> {
        let wit_handle = self.check_handle(handle)?;
        let result = call!(
            self,
            "inspect-task",
            Some(&handle.task_dir),
            Some(self.inner.limits.call_timeout),
            |plugin, store| plugin.call_inspect_task(store, &wit_handle)
        );
        Ok(self.driver_result("inspect-task", result)?.into())
    }

    /// Re-attaches to a task after an agent restart; [`DriverError::TaskNotFound`] when it is gone.
    pub async fn recover_task(&self, handle: &TaskHandle) -> Result<()> {
        let wit_handle = self.check_handle(handle)?;
        let result = call!(
            self,
            "recover-task",
            Some(&handle.task_dir),
            Some(self.inner.limits.call_timeout),
            |plugin, store| plugin.call_recover_task(store, &wit_handle)
        );
        self.driver_result("recover-task", result)
    }

    pub async fn signal_task(&self, handle: &TaskHandle, signal: &str) -> Result<()> {
        let wit_handle = self.check_handle(handle)?;
        let result = call!(
            self,
            "signal-task",
            Some(&handle.task_dir),
            Some(self.inner.limits.call_timeout),
            |plugin, store| plugin.call_signal_task(store, &wit_handle, signal)
        );
        self.driver_result("signal-task", result)
    }

    /// Runs `cmd` in the task's context, killed after `timeout`.
    pub async fn exec_task(
        &self,
        handle: &TaskHandle,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult> {
        let wit_handle = self.check_handle(handle)?;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let limit = self.inner.limits.call_timeout.saturating_add(timeout);
        let result = call!(
            self,
            "exec-task",
            Some(&handle.task_dir),
            Some(limit),
            |plugin, store| plugin.call_exec_task(store, &wit_handle, cmd, timeout_ms)
        );
        Ok(self.driver_result("exec-task", result)?.into())
    }

    pub async fn task_stats(&self, handle: &TaskHandle) -> Result<TaskStats> {
        let wit_handle = self.check_handle(handle)?;
        let result = call!(
            self,
            "task-stats",
            Some(&handle.task_dir),
            Some(self.inner.limits.call_timeout),
            |plugin, store| plugin.call_task_stats(store, &wit_handle)
        );
        Ok(self.driver_result("task-stats", result)?.into())
    }

    /// Benchmark support: instantiates the driver from its `InstancePre` and drops the instance.
    #[doc(hidden)]
    pub async fn bench_instantiate(&self) -> Result<()> {
        self.instantiate("bench", None).await.map(drop)
    }

    /// Benchmark support: makes `calls` host→driver→host round trips on one instance (an
    /// `inspect-task` whose driver calls back into a host capability) and returns their time.
    #[doc(hidden)]
    pub async fn bench_round_trips(&self, handle: &TaskHandle, calls: u64) -> Result<Duration> {
        let wit_handle = self.check_handle(handle)?;
        let mut instance = self.instantiate("bench", Some(&handle.task_dir)).await?;
        let started = std::time::Instant::now();
        for _ in 0..calls {
            let plugin = instance.bindings.caravan_driver_plugin();
            let outcome = plugin
                .call_inspect_task(&mut instance.store, &wit_handle)
                .await;
            self.finish("inspect-task", &instance, Some(outcome), None)?
                .ok();
        }
        Ok(started.elapsed())
    }

    fn check_handle(&self, handle: &TaskHandle) -> Result<bindings::wit::TaskHandle> {
        if handle.driver != *self.inner.name {
            return Err(Error::ForeignHandle {
                driver: self.inner.name.to_string(),
                task_id: handle.id.clone(),
                owner: handle.driver.clone(),
            });
        }
        Ok(handle.to_wit())
    }

    fn driver_result<T>(
        &self,
        call: &'static str,
        result: Result<T, bindings::wit::DriverError>,
    ) -> Result<T> {
        result.map_err(|error| Error::Driver {
            driver: self.inner.name.to_string(),
            call,
            error: DriverError::from(error),
        })
    }

    async fn instantiate(
        &self,
        call: &'static str,
        task_dir: Option<&PathBuf>,
    ) -> Result<Instance> {
        let limits = CallLimits {
            memory_cap_bytes: self.inner.limits.memory_cap_bytes,
            cpu_budget: self.inner.limits.cpu_budget,
            host_call_timeout: self.inner.limits.host_call_timeout,
        };
        let task_dir = task_dir.map(|dir| Path::to_path_buf(dir));
        let state = CallState::new(
            Arc::clone(&self.inner.name),
            limits,
            task_dir,
            Arc::clone(&self.inner.runtime),
        );
        let permit = self
            .inner
            .runtime
            .lanes
            .acquire(&self.inner.name, call, self.inner.limits.call_timeout)
            .await?;
        Instance::new(&self.inner.engine, &self.inner.pre, state, permit)
            .await
            .map_err(|err| Error::Instantiate {
                driver: self.inner.name.to_string(),
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
                driver: self.inner.name.to_string(),
                call,
                timeout: timeout.unwrap_or_default(),
            },
        };
        tracing::warn!(driver = %self.inner.name, call, error = %error, "driver call failed; its instance is discarded");
        Err(error)
    }
}

fn clone_inner(inner: &DriverInner) -> DriverInner {
    DriverInner {
        name: Arc::clone(&inner.name),
        info: inner.info.clone(),
        grants: inner.grants.clone(),
        engine: inner.engine.clone(),
        pre: inner.pre.clone(),
        runtime: Arc::clone(&inner.runtime),
        limits: inner.limits,
    }
}
