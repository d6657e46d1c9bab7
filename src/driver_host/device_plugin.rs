//! Device plugins: sandboxed Wasm components (WIT world `caravan:device/device-plugin`,
//! `drivers/devices/wit/device.wit`) that say which devices the node has (GPUs...) and what a
//! task given some of them gets.
//!
//! ```text
//! client fingerprint loop ─► fingerprint_devices ─► each enabled plugin: fingerprint(config)
//!                               └─► checked, bounded NodeDeviceResources ─► the node
//! task start with devices ─► reserve_devices(plugin, ids) ─► reserve(config, ids) ─► env, mounts
//! ```
//!
//! A plugin runs only when the agent config names it (`plugin "nomad-device-nvidia" { config {
//! ... } }`, unless `enabled = false`): a built-in one, or the operator's own component
//! `<plugin_dir>/NAME.wasm` (beside the drivers) that exports `caravan:device/plugin@0.1.x`; the
//! host tells the two kinds of plugin there apart by that export (read from the file without
//! compiling it), and never offers a device plugin as a driver. It keeps no state: the host calls it afresh each time,
//! with its config as JSON, in a store of its own with the driver engine's memory cap and CPU
//! deadline and a wall-clock timeout, so a misbehaving plugin fails its own call only. It has two
//! capabilities: `host-log` (rate-limited as a driver's) and `host-probe`, which runs only the
//! programs the host allows that plugin (built-in defaults: `nvidia-smi` for the nvidia plugin,
//! nothing for the others; the plugin config's `probe_programs` replaces them).
//! What a plugin reports is checked (vendor, type and name set; instance IDs set and unique in
//! their group) and bounded ([`NodeDeviceResource::MAX_GROUPS`] and friends) before the node
//! carries it.
//!
//! Nomad: `client/devicemanager/manager.go`, `instance.go`; `plugins/device/device.go`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

use crate::driver_host::DriverLimits;
use crate::driver_host::bindings::device::caravan::device::{host_log, host_probe, types};
use crate::driver_host::bindings::device::{DevicePlugin, DevicePluginPre};
use crate::driver_host::budget::{DRIVER_STORE_COUNTS, StoreBudget};
use crate::driver_host::host::HostRuntime;
use crate::driver_host::host::log::Verdict;
use crate::driver_host::host::process::{UserPolicy, agent_path, probe};
use crate::structs::{
    Attribute, DeviceGroupStats, DeviceIdTuple, DeviceStats, NodeDevice, NodeDeviceLocality,
    NodeDeviceResource, StatObject,
};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_device_plugins.rs"));
}

/// The programs each built-in plugin may run through `host-probe` unless its config says.
const DEFAULT_PROBE_PROGRAMS: &[(&str, &[&str])] = &[("nomad-device-nvidia", &["nvidia-smi"])];

/// Everything that can go wrong between the agent and a device plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DevicePluginError {
    #[error(
        "device plugin {plugin:?} is neither built in (built in: {known}) nor a device-plugin component in the plugin directory"
    )]
    Unknown { plugin: String, known: String },
    #[error("device plugin {plugin:?} is not enabled by the agent config")]
    NotEnabled { plugin: String },
    #[error("device plugin {plugin:?} does not load: {reason}")]
    Load { plugin: String, reason: String },
    /// The plugin answered with an error value.
    #[error("device plugin {plugin:?} {call}: {message}")]
    Plugin {
        plugin: String,
        call: &'static str,
        message: String,
    },
    /// A trap, the CPU deadline, the memory cap or the wall-clock timeout ended the call.
    #[error("device plugin {plugin:?} {call}: {message}")]
    Call {
        plugin: String,
        call: &'static str,
        message: String,
    },
    /// No enabled plugin reports the device group.
    #[error("no device plugin reports device group {group:?}")]
    NoOwner { group: String },
    /// What the plugin reported breaks the contract.
    #[error("device plugin {plugin:?} fingerprint: {message}")]
    Invalid { plugin: String, message: String },
}

/// What a task given some device instances gets from their plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceReservation {
    pub env: BTreeMap<String, String>,
    pub mounts: Vec<DeviceMount>,
    pub devices: Vec<DeviceNodeSpec>,
}

/// A host path the task should see (container drivers).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceMount {
    pub task_path: String,
    pub host_path: String,
    pub read_only: bool,
}

/// A device node the task should get (container drivers).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceNodeSpec {
    pub task_path: String,
    pub host_path: String,
    pub cgroup_permissions: String,
}

/// What a task's devices give it besides env, for the drivers that can act on it (Docker: the
/// host adds these to the container it creates for the task; raw_exec gets the env only, as
/// Nomad's). Nomad: `drivers.TaskConfig.Devices`, `Mounts`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskDevices {
    /// NVIDIA GPUs given to the task (their UUIDs): Docker device requests of driver `nvidia`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nvidia_gpus: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<DeviceMount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<DeviceNodeSpec>,
}

impl TaskDevices {
    pub fn is_empty(&self) -> bool {
        self.nvidia_gpus.is_empty() && self.mounts.is_empty() && self.nodes.is_empty()
    }

    /// Adds what `reservation` gives besides env.
    pub fn add(&mut self, reservation: &DeviceReservation) {
        self.mounts.extend(reservation.mounts.iter().cloned());
        self.nodes.extend(reservation.devices.iter().cloned());
    }
}

/// The store data of one device-plugin call.
pub(crate) struct DeviceCallState {
    plugin: Arc<str>,
    memory: StoreBudget,
    budget: Duration,
    started: Instant,
    host_nanos: Arc<AtomicU64>,
    deadline_hit: bool,
    probe_programs: Arc<[String]>,
    probe_dirs: Arc<[PathBuf]>,
    host_call_timeout: Duration,
    runtime: Arc<HostRuntime>,
}

impl DeviceCallState {
    fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_nanos(
            self.host_nanos.load(Ordering::Relaxed),
        ))
    }
}

impl types::Host for DeviceCallState {}

impl host_log::Host for DeviceCallState {
    async fn log(&mut self, level: host_log::Level, message: String) {
        let plugin = &*self.plugin;
        let key = format!("device:{plugin}");
        if !matches!(
            self.runtime.log.admit(&key, message.len(), Instant::now()),
            Verdict::Log { .. }
        ) {
            return;
        }
        let message: String = message
            .chars()
            .take(crate::driver_host::host::log::MAX_MESSAGE_BYTES)
            .collect();
        match level {
            host_log::Level::Trace => tracing::trace!(plugin, message, "device plugin"),
            host_log::Level::Debug => tracing::debug!(plugin, message, "device plugin"),
            host_log::Level::Info => tracing::info!(plugin, message, "device plugin"),
            host_log::Level::Warn => tracing::warn!(plugin, message, "device plugin"),
            host_log::Level::Error => tracing::error!(plugin, message, "device plugin"),
        }
    }
}

impl host_probe::Host for DeviceCallState {
    async fn probe(
        &mut self,
        command: String,
        args: Vec<String>,
        timeout_ms: u64,
    ) -> Result<host_probe::ProbeOutput, String> {
        if !self.probe_programs.contains(&command) {
            return Err(format!(
                "probe {command:?} is not granted to device plugin {:?} (granted: {:?}; set \
                 probe_programs in its plugin config)",
                self.plugin, self.probe_programs
            ));
        }
        let started = Instant::now();
        let policy = UserPolicy::from_plugin_config(self.runtime.plugins.get(&*self.plugin))?;
        let timeout = Duration::from_millis(timeout_ms).min(self.host_call_timeout);
        let output = probe(&command, &args, timeout, &policy, &self.probe_dirs).await;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.host_nanos.fetch_add(nanos, Ordering::Relaxed);
        output.map(|output| host_probe::ProbeOutput {
            exit_code: output.exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }
}

/// One enabled plugin, compiled and linked.
struct LoadedPlugin {
    pre: DevicePluginPre<DeviceCallState>,
    config_json: String,
    probe_programs: Arc<[String]>,
}

/// The export that makes a component a device plugin, before its version.
const DEVICE_EXPORT_PREFIX: &str = "caravan:device/plugin@";

/// The device-plugin contract version a component exports, from its top-level export names
/// (read with `wasmparser`, without compiling); `None` for anything else (a driver, a broken
/// file).
pub(crate) fn device_contract_version(bytes: &[u8]) -> Option<String> {
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentExportSection(exports) if depth == 1 => {
                for export in exports {
                    if let Some(version) = export.ok()?.name.0.strip_prefix(DEVICE_EXPORT_PREFIX) {
                        return Some(version.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether this host accepts a device-plugin contract version (`0.1.x`).
fn accepts_device_contract(version: &str) -> bool {
    semver::Version::parse(version).is_ok_and(|version| version.major == 0 && version.minor == 1)
}

/// The names of the device-plugin components in `plugin_dir` (`NAME.wasm` exporting the device
/// contract, whatever its version), sorted.
pub(crate) fn device_plugins_in(plugin_dir: &std::path::Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(plugin_dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "wasm")
        })
        .filter_map(|path| {
            let name = path.file_stem()?.to_str()?.to_owned();
            let bytes = std::fs::read(&path).ok()?;
            device_contract_version(&bytes).map(|_| (name, path))
        })
        .collect();
    found.sort();
    found
}

/// Where an enabled plugin's component comes from.
#[derive(Clone, Debug)]
enum Source {
    Builtin(&'static [u8]),
    File(PathBuf),
}

/// The agent's device plugins: which are enabled, and each one loaded on first use.
pub(crate) struct DevicePluginSet {
    engine: Engine,
    runtime: Arc<HostRuntime>,
    limits: DriverLimits,
    /// The enabled plugins' configs as JSON, by name.
    enabled: BTreeMap<String, serde_json::Value>,
    /// The component of each enabled plugin.
    sources: BTreeMap<String, Source>,
    /// The names of the device-plugin components in `plugin_dir`, enabled or not: never drivers.
    in_plugin_dir: Vec<String>,
    probe_dirs: Arc<[PathBuf]>,
    loaded: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    /// Which plugin reported each device group in its last good fingerprint: where a task's
    /// instances are reserved.
    owners: Mutex<BTreeMap<DeviceIdTuple, String>>,
    /// Each plugin's groups in its last good fingerprint: which group an instance's stats are of.
    groups: Mutex<BTreeMap<String, Vec<NodeDeviceResource>>>,
}

/// One instance's figures, in the order its plugin listed them (the first is its summary).
pub type InstanceFigures = Vec<(String, Attribute)>;

/// The names of the device plugins built into this binary.
pub fn builtin_device_plugins() -> impl Iterator<Item = &'static str> {
    builtin::BUILTIN_DEVICE_PLUGINS
        .iter()
        .map(|(name, _)| *name)
}

impl DevicePluginSet {
    /// The plugins named by a `plugin` block of `plugins` that does not say `enabled = false`:
    /// built-in ones, then device-plugin components of `plugin_dir` (a built-in name wins);
    /// `probe_dirs` replaces the agent's PATH for `host-probe` (tests).
    pub(crate) fn new(
        engine: Engine,
        runtime: Arc<HostRuntime>,
        limits: DriverLimits,
        plugins: &BTreeMap<String, serde_json::Value>,
        plugin_dir: Option<&std::path::Path>,
        probe_dirs: Option<Vec<PathBuf>>,
    ) -> DevicePluginSet {
        let from_dir = plugin_dir.map(device_plugins_in).unwrap_or_default();
        let mut sources = BTreeMap::new();
        for (name, bytes) in builtin::BUILTIN_DEVICE_PLUGINS {
            sources.insert((*name).to_owned(), Source::Builtin(bytes));
        }
        for (name, path) in &from_dir {
            sources
                .entry(name.clone())
                .or_insert_with(|| Source::File(path.clone()));
        }
        sources.retain(|name, _| {
            plugins.get(name).is_some_and(|config| {
                config.get("enabled") != Some(&serde_json::Value::Bool(false))
            })
        });
        let enabled = sources
            .keys()
            .filter_map(|name| Some((name.clone(), plugins.get(name)?.clone())))
            .collect();
        DevicePluginSet {
            engine,
            runtime,
            limits,
            enabled,
            sources,
            in_plugin_dir: from_dir.into_iter().map(|(name, _)| name).collect(),
            probe_dirs: probe_dirs.unwrap_or_else(agent_path).into(),
            loaded: Mutex::new(HashMap::new()),
            owners: Mutex::new(BTreeMap::new()),
            groups: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn enabled(&self) -> Vec<String> {
        self.enabled.keys().cloned().collect()
    }

    /// Whether `name` is a device-plugin component of `plugin_dir` (so not a driver).
    pub(crate) fn is_in_plugin_dir(&self, name: &str) -> bool {
        self.in_plugin_dir.iter().any(|known| known == name)
    }

    async fn load(&self, name: &str) -> Result<Arc<LoadedPlugin>, DevicePluginError> {
        if let Some(loaded) = self.lock_loaded().get(name) {
            return Ok(Arc::clone(loaded));
        }
        let Some(config) = self.enabled.get(name) else {
            return Err(
                if builtin_device_plugins().any(|builtin| builtin == name)
                    || self.is_in_plugin_dir(name)
                {
                    DevicePluginError::NotEnabled {
                        plugin: name.to_owned(),
                    }
                } else {
                    DevicePluginError::Unknown {
                        plugin: name.to_owned(),
                        known: builtin_device_plugins().collect::<Vec<_>>().join(", "),
                    }
                },
            );
        };
        let load_error = |reason: String| DevicePluginError::Load {
            plugin: name.to_owned(),
            reason,
        };
        let probe_programs: Vec<String> = match config.get("probe_programs") {
            Some(value) => serde_json::from_value(value.clone()).map_err(|err| {
                load_error(format!(
                    "probe_programs must be a list of program names: {err}"
                ))
            })?,
            None => DEFAULT_PROBE_PROGRAMS
                .iter()
                .filter(|(plugin, _)| *plugin == name)
                .flat_map(|(_, programs)| programs.iter().map(|program| (*program).to_owned()))
                .collect(),
        };
        let bytes: std::borrow::Cow<'static, [u8]> = match self.sources.get(name) {
            Some(Source::Builtin(bytes)) => std::borrow::Cow::Borrowed(bytes),
            Some(Source::File(path)) => {
                let bytes = std::fs::read(path)
                    .map_err(|err| load_error(format!("{}: {err}", path.display())))?;
                match device_contract_version(&bytes) {
                    Some(version) if accepts_device_contract(&version) => {}
                    Some(version) => {
                        return Err(load_error(format!(
                            "{}: device contract {version} is not accepted (0.1.x is)",
                            path.display()
                        )));
                    }
                    None => {
                        return Err(load_error(format!(
                            "{}: no longer exports {DEVICE_EXPORT_PREFIX}0.1.x",
                            path.display()
                        )));
                    }
                }
                std::borrow::Cow::Owned(bytes)
            }
            None => return Err(load_error(String::from("no component"))),
        };
        let engine = self.engine.clone();
        // Compiling takes CPU: off the async workers.
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|err| load_error(err.to_string()))?
            .map_err(|err| load_error(format!("{err:#}")))?;
        let mut linker = Linker::<DeviceCallState>::new(&self.engine);
        DevicePlugin::add_to_linker::<DeviceCallState, HasSelf<DeviceCallState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|err| load_error(format!("{err:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(DevicePluginPre::new)
            .map_err(|err| load_error(format!("{err:#}")))?;
        let loaded = Arc::new(LoadedPlugin {
            pre,
            config_json: config.to_string(),
            probe_programs: probe_programs.into(),
        });
        self.lock_loaded()
            .insert(name.to_owned(), Arc::clone(&loaded));
        tracing::info!(plugin = name, "device plugin loaded");
        Ok(loaded)
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LoadedPlugin>>> {
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one call of plugin `name` in a fresh store, under the limits.
    async fn call<T>(
        &self,
        name: &str,
        call: &'static str,
        run: impl AsyncFnOnce(&DevicePlugin, &mut Store<DeviceCallState>, &str) -> wasmtime::Result<T>,
    ) -> Result<T, DevicePluginError> {
        let loaded = self.load(name).await?;
        let state = DeviceCallState {
            plugin: name.into(),
            memory: StoreBudget::new(self.limits.memory_cap_bytes, DRIVER_STORE_COUNTS),
            budget: self.limits.cpu_budget,
            started: Instant::now(),
            host_nanos: Arc::new(AtomicU64::new(0)),
            deadline_hit: false,
            probe_programs: Arc::clone(&loaded.probe_programs),
            probe_dirs: Arc::clone(&self.probe_dirs),
            host_call_timeout: self.limits.host_call_timeout,
            runtime: Arc::clone(&self.runtime),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut context| {
            let state = context.data_mut();
            if state.guest_time() > state.budget {
                state.deadline_hit = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Yield(1))
        });
        let timeout = self.limits.call_timeout;
        let outcome = tokio::time::timeout(timeout, async {
            let plugin = loaded.pre.instantiate_async(&mut store).await?;
            run(&plugin, &mut store, &loaded.config_json).await
        })
        .await;
        let failed = |message: String| DevicePluginError::Call {
            plugin: name.to_owned(),
            call,
            message,
        };
        match outcome {
            Err(_) => Err(failed(format!("timed out after {timeout:?}"))),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                let state = store.data();
                Err(failed(if state.deadline_hit {
                    format!(
                        "exceeded its deadline of {:?} of guest execution",
                        state.budget
                    )
                } else if state.memory.hit().is_some() {
                    format!(
                        "exceeded its memory cap of {} bytes",
                        state.memory.cap_bytes()
                    )
                } else {
                    format!("trapped: {err:#}")
                }))
            }
        }
    }

    /// The device groups plugin `name` reports now, checked and bounded.
    pub(crate) async fn fingerprint(
        &self,
        name: &str,
    ) -> Result<Vec<NodeDeviceResource>, DevicePluginError> {
        let answer = self
            .call(name, "fingerprint", async |plugin, store, config| {
                plugin
                    .caravan_device_plugin()
                    .call_fingerprint(store, config)
                    .await
            })
            .await?;
        let groups = answer.map_err(|message| DevicePluginError::Plugin {
            plugin: name.to_owned(),
            call: "fingerprint",
            message,
        })?;
        let devices = node_devices(groups).map_err(|message| DevicePluginError::Invalid {
            plugin: name.to_owned(),
            message,
        })?;
        let mut owners = self
            .owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        owners.retain(|_, owner| owner != name);
        for device in &devices {
            owners.entry(device.id()).or_insert_with(|| name.to_owned());
        }
        drop(owners);
        self.groups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_owned(), devices.clone());
        Ok(devices)
    }

    /// Reserves instances of `group` from the plugin that reported it.
    pub(crate) async fn reserve_group(
        &self,
        group: &DeviceIdTuple,
        device_ids: &[String],
    ) -> Result<DeviceReservation, DevicePluginError> {
        let owner = self
            .owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(group)
            .cloned()
            .ok_or_else(|| DevicePluginError::NoOwner {
                group: group.to_string(),
            })?;
        self.reserve(&owner, device_ids).await
    }

    /// What a task given `device_ids` of plugin `name` gets.
    pub(crate) async fn reserve(
        &self,
        name: &str,
        device_ids: &[String],
    ) -> Result<DeviceReservation, DevicePluginError> {
        let ids = device_ids.to_vec();
        let answer = self
            .call(name, "reserve", async |plugin, store, config| {
                plugin
                    .caravan_device_plugin()
                    .call_reserve(store, config, &ids)
                    .await
            })
            .await?;
        let reservation = answer.map_err(|message| DevicePluginError::Plugin {
            plugin: name.to_owned(),
            call: "reserve",
            message,
        })?;
        let reservation = DeviceReservation {
            env: reservation.env.into_iter().collect(),
            mounts: reservation
                .mounts
                .into_iter()
                .map(|mount| DeviceMount {
                    task_path: mount.task_path,
                    host_path: mount.host_path,
                    read_only: mount.read_only,
                })
                .collect(),
            devices: reservation
                .devices
                .into_iter()
                .map(|node| DeviceNodeSpec {
                    task_path: node.task_path,
                    host_path: node.host_path,
                    cgroup_permissions: if node.cgroup_permissions.is_empty() {
                        String::from("rwm")
                    } else {
                        node.cgroup_permissions
                    },
                })
                .collect(),
        };
        check_reservation(&reservation).map_err(|message| DevicePluginError::Plugin {
            plugin: name.to_owned(),
            call: "reserve",
            message,
        })?;
        Ok(reservation)
    }
}

/// Most mounts or device nodes one reservation may name.
const MAX_RESERVED_PATHS: usize = 64;
/// Longest path a reservation may name, in bytes.
const MAX_PATH_BYTES: usize = 4096;

/// What a plugin's reservation may give a task: absolute, normalised paths (no `.`, `..` or
/// empty parts); device nodes from under `/dev/` with cgroup permissions made of `r`, `w`, `m`;
/// no mount of the host's `/` and none onto the container's `/`.
fn check_reservation(reservation: &DeviceReservation) -> Result<(), String> {
    let normal = |path: &str| {
        path.starts_with('/')
            && path.len() <= MAX_PATH_BYTES
            && path
                .split('/')
                .skip(1)
                .all(|part| !part.is_empty() && part != "." && part != "..")
    };
    if reservation.mounts.len() + reservation.devices.len() > MAX_RESERVED_PATHS {
        return Err(format!(
            "at most {MAX_RESERVED_PATHS} mounts and device nodes allowed"
        ));
    }
    for mount in &reservation.mounts {
        if !normal(&mount.host_path) || !normal(&mount.task_path) {
            return Err(format!(
                "mount {:?} -> {:?}: both paths must be absolute and normalised, not `/`",
                mount.host_path, mount.task_path
            ));
        }
    }
    for node in &reservation.devices {
        if !normal(&node.host_path)
            || !normal(&node.task_path)
            || !node.host_path.starts_with("/dev/")
        {
            return Err(format!(
                "device node {:?} -> {:?}: both paths must be absolute and normalised, the host \
                 path under /dev/",
                node.host_path, node.task_path
            ));
        }
        if !node
            .cgroup_permissions
            .chars()
            .all(|permission| matches!(permission, 'r' | 'w' | 'm'))
        {
            return Err(format!(
                "device node {:?}: cgroup permissions {:?} are not made of r, w and m",
                node.host_path, node.cgroup_permissions
            ));
        }
    }
    Ok(())
}

impl DevicePluginSet {
    /// Figures per instance of plugin `name` now, by instance ID.
    pub(crate) async fn stats(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, InstanceFigures>, DevicePluginError> {
        let answer = self
            .call(name, "stats", async |plugin, store, config| {
                plugin
                    .caravan_device_plugin()
                    .call_stats(store, config)
                    .await
            })
            .await?;
        let stats = answer.map_err(|message| DevicePluginError::Plugin {
            plugin: name.to_owned(),
            call: "stats",
            message,
        })?;
        Ok(stats
            .into_iter()
            .take(NodeDeviceResource::MAX_INSTANCES)
            .map(|instance| {
                let figures = instance
                    .stats
                    .into_iter()
                    .take(NodeDeviceResource::MAX_ATTRIBUTES)
                    .filter(|attr| {
                        !attr.name.is_empty()
                            && attr.name.len() <= MAX_FIELD_BYTES
                            && attr.unit.len() <= MAX_FIELD_BYTES
                    })
                    .map(|attr| (attr.name, attribute(attr.value, attr.unit)))
                    .collect();
                (instance.id, figures)
            })
            .collect())
    }

    /// The stats of every enabled plugin's instances now, by device group (of the plugin's last
    /// good fingerprint; instances it gave no figure for are left out), each plugin's call under
    /// `timeout`. A plugin whose call fails is logged and left out.
    pub(crate) async fn group_stats(&self, timeout: Duration) -> Vec<DeviceGroupStats> {
        let reported: Vec<(String, Vec<NodeDeviceResource>)> = self
            .groups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(name, groups)| (name.clone(), groups.clone()))
            .collect();
        let calls = reported.into_iter().map(|(name, groups)| async move {
            let stats = match tokio::time::timeout(timeout, self.stats(&name)).await {
                Ok(Ok(stats)) => stats,
                Ok(Err(err)) => {
                    tracing::warn!(plugin = %name, error = %err, "device stats failed");
                    return Vec::new();
                }
                Err(_) => {
                    tracing::warn!(plugin = %name, ?timeout, "device stats timed out");
                    return Vec::new();
                }
            };
            let timestamp =
                humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
            groups
                .iter()
                .map(|group| DeviceGroupStats {
                    vendor: group.vendor.clone(),
                    device_type: group.device_type.clone(),
                    name: group.name.clone(),
                    instance_stats: group
                        .instances
                        .iter()
                        .filter_map(|instance| {
                            let figures = stats.get(&instance.id).filter(|f| !f.is_empty())?;
                            Some((
                                instance.id.clone(),
                                DeviceStats {
                                    summary: figures.first().map(|(_, value)| value.into()),
                                    stats: Some(StatObject {
                                        nested: BTreeMap::new(),
                                        attributes: figures
                                            .iter()
                                            .map(|(name, value)| (name.clone(), value.into()))
                                            .collect(),
                                    }),
                                    timestamp: timestamp.clone(),
                                },
                            ))
                        })
                        .collect(),
                })
                .filter(|group| !group.instance_stats.is_empty())
                .collect::<Vec<_>>()
        });
        futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

fn attribute(value: types::AttributeValue, unit: String) -> Attribute {
    let mut attribute = match value {
        types::AttributeValue::Int(value) => Attribute::int(value, ""),
        types::AttributeValue::Float(value) => Attribute::float(value, ""),
        types::AttributeValue::Text(value) => Attribute::string(&value),
        types::AttributeValue::Boolean(value) => Attribute::bool(value),
    };
    attribute.unit = unit;
    attribute
}

/// Longest vendor, type, name, ID, attribute name or text value kept, in bytes.
const MAX_FIELD_BYTES: usize = 256;

/// Checks a plugin's answer against the contract and the bounds of a node's devices.
fn node_devices(groups: Vec<types::DeviceGroup>) -> Result<Vec<NodeDeviceResource>, String> {
    if groups.len() > NodeDeviceResource::MAX_GROUPS {
        return Err(format!(
            "{} device groups, at most {} allowed",
            groups.len(),
            NodeDeviceResource::MAX_GROUPS
        ));
    }
    let long = |text: &str| text.len() > MAX_FIELD_BYTES;
    let mut devices: Vec<NodeDeviceResource> = Vec::with_capacity(groups.len());
    for group in groups {
        let label = format!("{}/{}/{}", group.vendor, group.device_type, group.name);
        if group.vendor.is_empty() || group.device_type.is_empty() || group.name.is_empty() {
            return Err(format!(
                "device group {label:?} needs a vendor, a type and a name"
            ));
        }
        if [&group.vendor, &group.device_type, &group.name]
            .iter()
            .any(|part| long(part) || part.contains('/'))
        {
            return Err(format!(
                "device group {label:?}: vendor, type and name must be at most {MAX_FIELD_BYTES} \
                 bytes without `/`"
            ));
        }
        if devices.iter().any(|known| known.full_name() == label) {
            return Err(format!("device group {label:?} reported twice"));
        }
        if group.instances.len() > NodeDeviceResource::MAX_INSTANCES
            || group.attributes.len() > NodeDeviceResource::MAX_ATTRIBUTES
        {
            return Err(format!(
                "device group {label:?}: at most {} instances and {} attributes allowed",
                NodeDeviceResource::MAX_INSTANCES,
                NodeDeviceResource::MAX_ATTRIBUTES
            ));
        }
        let mut instances: Vec<NodeDevice> = Vec::with_capacity(group.instances.len());
        for instance in group.instances {
            if instance.id.is_empty() || long(&instance.id) {
                return Err(format!(
                    "device group {label:?}: an instance ID must be 1 to {MAX_FIELD_BYTES} bytes"
                ));
            }
            if instances.iter().any(|known| known.id == instance.id) {
                return Err(format!(
                    "device group {label:?}: instance {:?} reported twice",
                    instance.id
                ));
            }
            instances.push(NodeDevice {
                id: instance.id,
                healthy: instance.healthy,
                health_description: instance
                    .health_description
                    .chars()
                    .take(MAX_FIELD_BYTES)
                    .collect(),
                locality: instance
                    .pci_bus_id
                    .filter(|id| !long(id))
                    .map(|pci_bus_id| NodeDeviceLocality { pci_bus_id }),
            });
        }
        let mut attributes = BTreeMap::new();
        for attr in group.attributes {
            let too_long = long(&attr.name)
                || long(&attr.unit)
                || matches!(&attr.value, types::AttributeValue::Text(text) if long(text));
            if attr.name.is_empty() || too_long {
                return Err(format!(
                    "device group {label:?}: attribute names, units and text values must be 1 to \
                     {MAX_FIELD_BYTES} bytes"
                ));
            }
            attributes.insert(attr.name, attribute(attr.value, attr.unit));
        }
        devices.push(NodeDeviceResource {
            vendor: group.vendor,
            device_type: group.device_type,
            name: group.name,
            instances,
            attributes,
        });
    }
    Ok(devices)
}

#[cfg(test)]
mod tests;
