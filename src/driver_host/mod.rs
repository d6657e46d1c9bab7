//! The driver host: every task driver is a WebAssembly component, loaded by wasmtime, sandboxed,
//! and linked only with the host capabilities its operator granted.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//!
//! use caravan::driver_host::{DriverHost, DriverHostConfig, TaskConfig, TaskScope};
//!
//! # async fn example() -> Result<(), caravan::driver_host::Error> {
//! // One host per agent. The agent config's `plugin "raw_exec" { config { enabled = true } }`
//! // arrives as JSON.
//! let mut plugins = BTreeMap::new();
//! plugins.insert(String::from("raw_exec"), serde_json::json!({ "enabled": true }));
//! let host = DriverHost::new(DriverHostConfig {
//!     cache_dir: Some("/var/lib/caravan/cache".into()),
//!     plugin_dir: Some("/var/lib/caravan/plugins".into()),
//!     plugins,
//!     ..DriverHostConfig::default()
//! })?;
//!
//! let raw_exec = host.driver("raw_exec").await?;
//! let fingerprint = raw_exec.fingerprint().await?;
//! println!("raw_exec: {:?}", fingerprint.health);
//!
//! // The client's own record of the task: every call about it is bound to this scope.
//! let scope = TaskScope::new(
//!     "alloc-1",
//!     "web",
//!     "/var/lib/caravan/alloc/alloc-1".as_ref(),
//!     "/var/lib/caravan/alloc/alloc-1/alloc/logs/web.stdout.0".into(),
//!     "/var/lib/caravan/alloc/alloc-1/alloc/logs/web.stderr.0".into(),
//! );
//! let config = TaskConfig {
//!     config: serde_json::json!({ "command": "/bin/sh", "args": ["-c", "echo hi"] }),
//!     ..TaskConfig::default()
//! };
//! let handle = raw_exec.start_task(&scope, &config).await?;
//! // The client persists `handle` and `raw_exec.host_record(&scope)` to recover the task after
//! // an agent restart. The host waits on the process itself; no driver instance is held.
//! let exit = raw_exec.wait_task(&scope, &handle).await?;
//! assert!(exit.successful());
//! raw_exec.stop_task(&scope, &handle, Duration::from_secs(5), "SIGTERM").await?;
//! raw_exec.destroy_task(&scope, &handle, true).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Code map:
//! - `engine.rs`: the two wasmtime engines (drivers, WASI workloads) and the epoch ticker.
//! - `loader.rs`: compile once, cache precompiled artifacts on disk, check the contract version.
//! - `bindings.rs`: the one `bindgen!` of `drivers/wit/driver.wit`.
//! - `instance.rs`: a store per call with a memory cap and a CPU deadline.
//! - `budget.rs`: the store limiter (one byte budget over all memories and tables, counts of
//!   instances, memories and tables) and the per-driver lanes of the instance pool.
//! - `grants.rs`: which capabilities a driver gets; `host/`: one file per capability.
//! - `driver.rs`: [`Driver`], the API the client uses (a swappable slot per driver name);
//!   `types.rs`: its serde types, [`TaskScope`] the host's record of a task.
//!
//! **Invariant:** a capability not granted is not linked; a driver importing one does not load.
//! **Invariant:** every task call is bound to the client's [`TaskScope`]; what a driver creates
//! belongs to that task in host tables; a running task holds no driver instance.
//! **Hot upgrade:** a changed `<plugin_dir>/<name>.wasm` (content hash polled every
//! [`PLUGIN_POLL_INTERVAL`], or [`DriverHost::reload`]) loads as a new version for new calls;
//! live tasks are re-attached through its `recover-task`; a version that fails to load leaves the
//! old one serving, with the error in the driver's fingerprint description.
//! **Invariant:** each call has its own instance, memory cap and deadline; a trap, deadline
//! overrun or timeout fails that call only (the instance is discarded) and never the agent.
//! **Boundary:** the client reaches drivers only through this module.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub(crate) mod bindings;
mod budget;
mod device_plugin;
mod driver;
mod engine;
mod error;
mod grants;
mod host;
mod instance;
mod loader;
mod types;

pub use device_plugin::{
    DeviceMount, DeviceNodeSpec, DevicePluginError, DeviceReservation, InstanceFigures,
    TaskDevices, builtin_device_plugins,
};
pub use driver::Driver;
pub use error::{DriverError, Error, Result};
pub use grants::{Capability, PluginGrants, default_grants, resolve_grants};
pub use loader::ACCEPTED_CONTRACT;
pub use types::{
    Capabilities, DriverInfo, ExecResult, ExitResult, Fingerprint, FsIsolation, Health, HostRecord,
    PortMapping, ProcessRecord, Resources, TaskConfig, TaskHandle, TaskScope, TaskState, TaskStats,
    TaskStatus, TaskVolume, WaitOn,
};

/// How often the host looks for changed drivers in `plugin_dir` (their content hash).
pub const PLUGIN_POLL_INTERVAL: Duration = Duration::from_secs(2);

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_drivers.rs"));
}

/// Limits every driver call runs under.
#[derive(Debug, Clone, Copy)]
pub struct DriverLimits {
    /// Linear memory cap of one driver instance.
    pub memory_cap_bytes: usize,
    /// Guest execution allowed per call (time suspended in host capabilities does not count).
    pub cpu_budget: Duration,
    /// Wall-clock limit of one call; for `stop-task` and `exec-task` the caller's timeout is
    /// added.
    pub call_timeout: Duration,
    /// Wall-clock limit of one host capability call other than the deliberate waits.
    pub host_call_timeout: Duration,
    /// Driver instances alive at once: in-flight calls (a running task holds none). A 16th of
    /// them (2 to 64) is kept for `stop-task` and `destroy-task` only.
    pub max_instances: u32,
    /// Instances one driver's ordinary calls may hold at once; `None`: half of the slots for
    /// ordinary calls, so one driver never takes them all.
    pub max_instances_per_driver: Option<u32>,
    /// How long a call waits its turn for an instance slot (its driver's lane, the pool, or the
    /// reserved lane for `stop-task` and `destroy-task`) before it fails busy.
    pub slot_wait: Duration,
    /// Deadline of each driver's fingerprint (loading included); a driver that misses it is
    /// reported unhealthy.
    pub fingerprint_timeout: Duration,
}

impl Default for DriverLimits {
    fn default() -> Self {
        DriverLimits {
            memory_cap_bytes: 64 << 20,
            cpu_budget: Duration::from_secs(1),
            call_timeout: Duration::from_secs(60),
            host_call_timeout: Duration::from_secs(30),
            max_instances: 1000,
            max_instances_per_driver: None,
            slot_wait: Duration::from_secs(60),
            fingerprint_timeout: Duration::from_secs(10),
        }
    }
}

/// How the agent configures its driver host.
#[derive(Debug, Clone, Default)]
pub struct DriverHostConfig {
    /// Where precompiled driver artifacts are cached (e.g. `<data_dir>/cache`); `None` compiles
    /// every driver at each agent start.
    pub cache_dir: Option<PathBuf>,
    /// The agent's `plugin_dir`: user drivers as `<name>.wasm`.
    pub plugin_dir: Option<PathBuf>,
    /// The agent config's `plugin "NAME" { config { ... } }` blocks as JSON, by driver name.
    pub plugins: BTreeMap<String, serde_json::Value>,
    pub limits: DriverLimits,
    /// Where device plugins' `host-probe` looks for programs; `None`: the agent's PATH.
    pub device_probe_path: Option<Vec<PathBuf>>,
}

/// The agent's driver host: one wasmtime engine, the loaded drivers, the host capabilities'
/// shared state. Cheap to clone.
#[derive(Clone)]
pub struct DriverHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    loader: loader::Loader,
    config: DriverHostConfig,
    runtime: Arc<host::HostRuntime>,
    drivers: Mutex<HashMap<String, Driver>>,
    devices: device_plugin::DevicePluginSet,
    /// Serialises loads and reloads, so one file is compiled once and swaps do not interleave.
    loading: tokio::sync::Mutex<()>,
    _ticker: engine::EpochTicker,
}

impl std::fmt::Debug for DriverHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverHost")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl DriverHost {
    /// Creates the engines and starts the epoch ticker. Drivers load on first use.
    pub fn new(config: DriverHostConfig) -> Result<DriverHost> {
        let driver_engine = engine::driver_engine(engine::DriverEngineConfig {
            max_instances: config.limits.max_instances,
            memory_cap_bytes: config.limits.memory_cap_bytes,
        })?;
        let workload_engine = engine::workload_engine()?;
        let ticker =
            engine::EpochTicker::start(vec![driver_engine.clone(), workload_engine.clone()])?;
        let workloads = host::wasm::WorkloadRuntime::new(workload_engine)
            .map_err(|err| Error::Engine(format!("{err:#}")))?;
        let docker = host::docker::DockerRuntime::new(config.plugins.clone());
        let lanes = budget::PoolLanes::new(budget::LaneSizes::new(
            config.limits.max_instances,
            config.limits.max_instances_per_driver,
        ));
        let runtime = host::HostRuntime::new(workloads, docker, lanes, config.plugins.clone());
        let devices = device_plugin::DevicePluginSet::new(
            driver_engine.clone(),
            Arc::clone(&runtime),
            config.limits,
            &config.plugins,
            config.plugin_dir.as_deref(),
            config.device_probe_path.clone(),
        );
        let host = DriverHost {
            inner: Arc::new(HostInner {
                loader: loader::Loader::new(driver_engine, config.cache_dir.clone()),
                runtime,
                devices,
                config,
                drivers: Mutex::new(HashMap::new()),
                loading: tokio::sync::Mutex::new(()),
                _ticker: ticker,
            }),
        };
        if host.inner.config.plugin_dir.is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(watch_plugins(Arc::downgrade(&host.inner)));
        }
        Ok(host)
    }

    /// Reloads driver `name` if its component changed since it was loaded (content hash): the
    /// new version serves the next calls and re-attaches the live tasks through `recover-task`.
    /// Returns whether a new version now serves. A new version that fails to load leaves the old
    /// one serving; the error is kept for the driver's health and returned.
    pub async fn reload(&self, name: &str) -> Result<bool> {
        let _loading = self.inner.loading.lock().await;
        let Some(driver) = self.lock_drivers().get(name).cloned() else {
            return Ok(false);
        };
        let bytes = match self.component_bytes(name) {
            Ok(bytes) => bytes,
            Err(err) => {
                driver.set_reload_error(Some(err.to_string()));
                return Err(err);
            }
        };
        let hash = Sha256::digest(&bytes).to_vec();
        if hash == driver.source_hash() {
            return Ok(false);
        }
        match self.load_version(name, &bytes).await {
            Ok(version) => {
                driver.upgrade(version, hash).await;
                Ok(true)
            }
            Err(err) => {
                tracing::warn!(driver = name, error = %err, "new driver version failed to load; the old one keeps serving");
                driver.set_reload_error(Some(err.to_string()));
                Err(err)
            }
        }
    }

    /// Reloads every loaded driver whose component changed (see [`DriverHost::reload`]).
    pub async fn reload_changed(&self) -> BTreeMap<String, Result<bool>> {
        let names: Vec<String> = self.lock_drivers().keys().cloned().collect();
        let mut results = BTreeMap::new();
        for name in names {
            if Self::builtin_drivers().any(|builtin| builtin == name) {
                continue;
            }
            results.insert(name.clone(), self.reload(&name).await);
        }
        results
    }

    /// The names of the drivers built into this binary.
    pub fn builtin_drivers() -> impl Iterator<Item = &'static str> {
        builtin::BUILTIN_DRIVERS.iter().map(|(name, _)| *name)
    }

    /// Built-in drivers plus the `*.wasm` files of `plugin_dir` (but its device plugins, as
    /// the agent found them at start), sorted.
    pub fn available_drivers(&self) -> Vec<String> {
        let mut names: Vec<String> = Self::builtin_drivers().map(str::to_owned).collect();
        if let Some(dir) = &self.inner.config.plugin_dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for entry in entries.flatten() {
                let path = entry.path();
                if path
                    .extension()
                    .is_some_and(|extension| extension == "wasm")
                    && let Some(stem) = path.file_stem().and_then(|stem| stem.to_str())
                    && !self.inner.devices.is_in_plugin_dir(stem)
                {
                    names.push(stem.to_owned());
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// Loads every available driver and fingerprints it, for the node's fingerprint (Nomad:
    /// client/pluginmanager/drivermanager). All drivers at once, each in its own tokio task under
    /// its own deadline (`fingerprint_timeout`, loading included): a driver that is disabled, fails
    /// to load, misbehaves or does not answer in time has its error in the map; the others are
    /// unaffected and none waits for another.
    pub async fn fingerprint_all(&self) -> BTreeMap<String, Result<Fingerprint>> {
        let timeout = self.inner.config.limits.fingerprint_timeout;
        let mut calls = tokio::task::JoinSet::new();
        for name in self.available_drivers() {
            let host = self.clone();
            calls.spawn(async move {
                let fingerprint = async {
                    let driver = host.driver(&name).await?;
                    driver.fingerprint().await
                };
                let result = tokio::time::timeout(timeout, fingerprint)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::FingerprintTimeout {
                            driver: name.clone(),
                            timeout,
                        })
                    });
                (name, result)
            });
        }
        let mut fingerprints = BTreeMap::new();
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok((name, result)) => {
                    fingerprints.insert(name, result);
                }
                // The tasks do not panic; a cancelled one (runtime shutting down) reports nothing.
                Err(err) => tracing::warn!(error = %err, "driver fingerprint task failed"),
            }
        }
        fingerprints
    }

    /// The device plugins the agent config enables (a `plugin "NAME"` block naming a built-in
    /// one or a device-plugin component `<plugin_dir>/NAME.wasm`, without `enabled = false`),
    /// sorted.
    pub fn device_plugins(&self) -> Vec<String> {
        self.inner.devices.enabled()
    }

    /// Fingerprints every enabled device plugin, all at once, each under the fingerprint
    /// deadline; each answer (checked and bounded device groups) or error apart.
    pub async fn fingerprint_devices(
        &self,
    ) -> BTreeMap<
        String,
        std::result::Result<Vec<crate::structs::NodeDeviceResource>, DevicePluginError>,
    > {
        let timeout = self.inner.config.limits.fingerprint_timeout;
        let calls = self.device_plugins().into_iter().map(|name| async move {
            let result = tokio::time::timeout(timeout, self.inner.devices.fingerprint(&name))
                .await
                .unwrap_or_else(|_| {
                    Err(DevicePluginError::Call {
                        plugin: name.clone(),
                        call: "fingerprint",
                        message: format!("timed out after {timeout:?}"),
                    })
                });
            (name, result)
        });
        futures::future::join_all(calls).await.into_iter().collect()
    }

    /// What a task given `device_ids` (of one group plugin `plugin` reported) gets.
    pub async fn reserve_devices(
        &self,
        plugin: &str,
        device_ids: &[String],
    ) -> std::result::Result<DeviceReservation, DevicePluginError> {
        self.inner.devices.reserve(plugin, device_ids).await
    }

    /// What a task given `device_ids` of device group `group` gets from the plugin that
    /// reported the group in its last fingerprint.
    pub async fn reserve_device_group(
        &self,
        group: &crate::structs::DeviceIdTuple,
        device_ids: &[String],
    ) -> std::result::Result<DeviceReservation, DevicePluginError> {
        self.inner.devices.reserve_group(group, device_ids).await
    }

    /// Figures per instance of device plugin `plugin` now, by instance ID, in the plugin's order.
    pub async fn device_stats(
        &self,
        plugin: &str,
    ) -> std::result::Result<BTreeMap<String, InstanceFigures>, DevicePluginError> {
        self.inner.devices.stats(plugin).await
    }

    /// The stats of every enabled device plugin's instances now, by device group (as each
    /// plugin's last good fingerprint groups them), each plugin under the fingerprint deadline;
    /// a plugin that fails is logged and left out (Nomad: `devicemanager.AllStats`).
    pub async fn device_group_stats(&self) -> Vec<crate::structs::DeviceGroupStats> {
        self.inner
            .devices
            .group_stats(self.inner.config.limits.fingerprint_timeout)
            .await
    }

    /// The driver called `name`: loaded on first use (compiled or read from the cache, version
    /// and grants checked, `info` called), then shared.
    #[tracing::instrument(level = "debug", skip_all, fields(driver = name))]
    pub async fn driver(&self, name: &str) -> Result<Driver> {
        if let Some(driver) = self.lock_drivers().get(name) {
            return Ok(driver.clone());
        }
        let _loading = self.inner.loading.lock().await;
        if let Some(driver) = self.lock_drivers().get(name) {
            return Ok(driver.clone());
        }
        let bytes = self.component_bytes(name)?;
        let hash = Sha256::digest(&bytes).to_vec();
        let driver = Driver::new(self.load_version(name, &bytes).await?, hash);
        self.lock_drivers()
            .entry(name.to_owned())
            .or_insert_with(|| driver.clone());
        Ok(driver)
    }

    fn lock_drivers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Driver>> {
        self.inner
            .drivers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn load_version(&self, name: &str, bytes: &[u8]) -> Result<driver::Version> {
        let config = &self.inner.config;
        let grants = resolve_grants(name, config.plugins.get(name))?;
        if !grants.enabled {
            return Err(Error::Disabled {
                driver: name.to_owned(),
            });
        }
        let engine = self.inner.loader.engine().clone();
        // Compiling takes seconds of CPU: off the async workers, so the agent's API and
        // heartbeats keep answering while drivers load.
        let host = self.clone();
        let owned_name = name.to_owned();
        let owned_bytes = bytes.to_vec();
        let component =
            tokio::task::spawn_blocking(move || host.inner.loader.load(&owned_name, &owned_bytes))
                .await
                .map_err(|err| Error::Engine(format!("loading driver {name:?}: {err}")))??;
        let version = loader::contract_version(&engine, &component).ok_or_else(|| {
            Error::InvalidComponent {
                driver: name.to_owned(),
                reason: String::from("it exports no caravan:driver/plugin interface"),
            }
        })?;
        if !loader::accepts_contract(&version) {
            return Err(Error::IncompatibleContract {
                driver: name.to_owned(),
                found: version,
                accepted: ACCEPTED_CONTRACT,
            });
        }
        let imports = loader::imports(&engine, &component);
        grants::check_imports(
            name,
            imports.iter().map(String::as_str),
            &grants.capabilities,
        )?;
        let linker = host::link(&engine, &grants.capabilities)
            .map_err(|err| Error::Engine(format!("{err:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(bindings::DriverPre::new)
            .map_err(|err| Error::InvalidComponent {
                driver: name.to_owned(),
                reason: format!("{err:#}"),
            })?;
        let loaded = driver::Version::load(
            name,
            grants,
            engine,
            pre,
            Arc::clone(&self.inner.runtime),
            config.limits,
        )
        .await?;
        tracing::info!(driver = name, version = %loaded.info().version, contract = %version, "driver loaded");
        Ok(loaded)
    }

    fn component_bytes(&self, name: &str) -> Result<std::borrow::Cow<'static, [u8]>> {
        if let Some((_, bytes)) = builtin::BUILTIN_DRIVERS
            .iter()
            .find(|(builtin, _)| *builtin == name)
        {
            return Ok(std::borrow::Cow::Borrowed(bytes));
        }
        let plugin_dir = self.inner.config.plugin_dir.clone();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let path = plugin_dir
            .as_ref()
            .filter(|_| valid_name)
            .map(|dir| dir.join(format!("{name}.wasm")));
        match path {
            Some(path) if path.is_file() => std::fs::read(&path)
                .map(std::borrow::Cow::Owned)
                .map_err(|source| Error::Io { path, source }),
            _ => Err(Error::NotFound {
                driver: name.to_owned(),
                plugin_dir,
            }),
        }
    }
}

/// Polls `plugin_dir` for changed drivers until the host is dropped.
async fn watch_plugins(inner: Weak<HostInner>) {
    let mut ticks = tokio::time::interval(PLUGIN_POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let host = DriverHost { inner };
        for (name, result) in host.reload_changed().await {
            if let Err(err) = result {
                tracing::debug!(driver = %name, error = %err, "driver reload failed");
            }
        }
    }
}
