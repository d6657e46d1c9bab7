//! The caravan driver SDK: write a task driver as a Rust trait, get a WebAssembly component.
//!
//! A driver is a `cdylib` crate that implements [`Driver`] and calls [`export_driver!`]. The SDK
//! hides the generated component bindings (wit-bindgen) of the contract `caravan:driver@0.2.1`
//! (`drivers/wit/driver.wit`); the host capabilities a driver may use are under [`host`].
//!
//! ```ignore
//! use caravan_driver_sdk::{export_driver, Driver, DriverError, DriverInfo, StartedTask, TaskConfig, Waitable};
//!
//! struct Echo;
//!
//! impl Driver for Echo {
//!     fn info() -> DriverInfo {
//!         caravan_driver_sdk::driver_info("echo", "0.1.0", caravan_driver_sdk::Capabilities::default())
//!     }
//!     fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
//!         // Validate config.config_json, start something through `host::process`...
//!         let pid = 0; // the pid `host::process::spawn` returned
//!         Ok(caravan_driver_sdk::started(&config, Vec::new(), Waitable::Process(pid)))
//!     }
//!     // The host waits on the process; interpret_exit, stop_task... have defaults.
//! }
//!
//! export_driver!(Echo);
//! ```
//!
//! Invariant: a driver keeps no state between calls; each call may run in a fresh instance (and a
//! newer version of the driver may serve the next one), so what it needs to find a task again
//! goes into `TaskHandle::driver_state` ([`encode_state`] and [`decode_state`] serialise any serde
//! type as JSON). Waits belong to the host: `start_task` says what to wait on ([`Waitable`]).
//!
//! Build it for `wasm32-unknown-unknown` and turn the core module into a component with
//! `wit-component` (caravan's build script does both for the crates under `drivers/`; the README of
//! `wasm-examples/custom-driver` shows the commands for a driver of your own).

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "driver",
        pub_export_macro: true,
        default_bindings_module: "caravan_driver_sdk::bindings",
        export_macro_name: "export",
    });
}

pub use bindings::caravan::driver::types::{
    Capabilities, DriverError, DriverFingerprint as Fingerprint, DriverInfo, ExecResult,
    ExitResult, FsIsolation, Health, PortMapping, RawExit, Resources, StartedTask, TaskConfig,
    TaskHandle, TaskResourceUsage as TaskStats, TaskState, TaskStatus, Waitable,
};

/// The host capabilities. Each is usable only if the operator granted it to the driver; a driver
/// that calls into an ungranted one does not load at all.
pub mod host {
    pub use crate::bindings::caravan::driver::host_config as config;
    pub use crate::bindings::caravan::driver::host_docker as docker;
    pub use crate::bindings::caravan::driver::host_fs as fs;
    pub use crate::bindings::caravan::driver::host_isolated as isolated;
    pub use crate::bindings::caravan::driver::host_log as log;
    pub use crate::bindings::caravan::driver::host_process as process;
    pub use crate::bindings::caravan::driver::host_socket as socket;
    pub use crate::bindings::caravan::driver::host_wasm as wasm;
}

/// A task driver. Only [`Driver::info`] and [`Driver::start_task`] have no default; the others
/// answer [`DriverError::Unsupported`] or a neutral value.
///
/// Every function is associated (no `self`): a driver has no state between calls.
pub trait Driver {
    /// Name, version and capabilities. Must not fail.
    fn info() -> DriverInfo;

    /// JSON Schema of the task `config { ... }` block.
    fn config_schema() -> String {
        String::from("{}")
    }

    /// Health and node attributes; `plugin_config` is the agent's `plugin "NAME" { config {...} }`
    /// as JSON.
    fn fingerprint(plugin_config: String) -> Fingerprint {
        let _ = plugin_config;
        Fingerprint {
            health: Health::Healthy,
            description: String::from("healthy"),
            attributes: Vec::new(),
        }
    }

    /// Validates the config and starts the task; returns its handle and what the host waits on.
    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError>;

    /// What the end of the task's waitable means; by default the raw exit as it is.
    fn interpret_exit(handle: TaskHandle, exit: RawExit) -> ExitResult {
        let _ = handle;
        ExitResult {
            exit_code: exit.exit_code,
            signal: exit.signal,
            oom_killed: exit.oom_killed,
            err: exit.detail,
        }
    }

    /// Sends `signal`, then kills the task if it still runs after `timeout_ms`.
    fn stop_task(handle: TaskHandle, timeout_ms: u64, signal: String) -> Result<(), DriverError> {
        let _ = (handle, timeout_ms, signal);
        Err(unsupported("stop-task"))
    }

    /// Releases the task's resources; with `force` kills it first.
    fn destroy_task(handle: TaskHandle, force: bool) -> Result<(), DriverError> {
        let _ = (handle, force);
        Ok(())
    }

    fn inspect_task(handle: TaskHandle) -> Result<TaskStatus, DriverError> {
        Ok(TaskStatus {
            id: handle.id,
            state: TaskState::Unknown,
            attributes: Vec::new(),
        })
    }

    /// Re-attaches after an agent restart or a driver upgrade.
    fn recover_task(handle: TaskHandle) -> Result<(), DriverError> {
        let _ = handle;
        Err(unsupported("recover-task"))
    }

    fn signal_task(handle: TaskHandle, signal: String) -> Result<(), DriverError> {
        let _ = (handle, signal);
        Err(unsupported("signal-task"))
    }

    fn exec_task(
        handle: TaskHandle,
        cmd: Vec<String>,
        timeout_ms: u64,
    ) -> Result<ExecResult, DriverError> {
        let _ = (handle, cmd, timeout_ms);
        Err(unsupported("exec-task"))
    }

    fn task_stats(handle: TaskHandle) -> Result<TaskStats, DriverError> {
        let _ = handle;
        Err(unsupported("task-stats"))
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            send_signals: false,
            exec: false,
            fs_isolation: FsIsolation::None,
        }
    }
}

/// Builds a [`DriverInfo`].
pub fn driver_info(name: &str, version: &str, capabilities: Capabilities) -> DriverInfo {
    DriverInfo {
        name: name.to_owned(),
        version: version.to_owned(),
        capabilities,
    }
}

/// Builds the handle of the task started from `config` with the driver's serialised state.
pub fn handle(config: &TaskConfig, driver_state: Vec<u8>) -> TaskHandle {
    TaskHandle {
        id: config.id.clone(),
        driver_state,
    }
}

/// What `start_task` returns: the handle (see [`handle`]) and what the host waits on.
pub fn started(config: &TaskConfig, driver_state: Vec<u8>, wait_on: Waitable) -> StartedTask {
    StartedTask {
        handle: handle(config, driver_state),
        wait_on,
    }
}

/// The error of an operation a driver does not support.
pub fn unsupported(operation: &str) -> DriverError {
    DriverError::Unsupported(format!("{operation} is not supported by this driver"))
}

/// Serialises a driver's state for [`TaskHandle::driver_state`].
pub fn encode_state<S: Serialize>(state: &S) -> Result<Vec<u8>, DriverError> {
    serde_json::to_vec(state)
        .map_err(|err| DriverError::Failed(format!("cannot encode driver state: {err}")))
}

/// Reads back what [`encode_state`] wrote.
pub fn decode_state<S: DeserializeOwned>(handle: &TaskHandle) -> Result<S, DriverError> {
    serde_json::from_slice(&handle.driver_state).map_err(|err| {
        DriverError::TaskNotFound(format!(
            "task {}: unreadable driver state: {err}",
            handle.id
        ))
    })
}

/// Parses the task's `config` block (JSON) into the driver's config type; unknown keys are an error
/// when the type says `#[serde(deny_unknown_fields)]`.
pub fn parse_task_config<C: DeserializeOwned>(config: &TaskConfig) -> Result<C, DriverError> {
    let text = if config.config_json.trim().is_empty() {
        "{}"
    } else {
        config.config_json.as_str()
    };
    serde_json::from_str(text)
        .map_err(|err| DriverError::InvalidConfig(format!("task {}: {err}", config.name)))
}

/// Logs through the host (capability `host-log`, always granted).
pub mod log {
    use crate::host::log::{Level, log};

    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }
    pub fn info(message: &str) {
        log(Level::Info, message);
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message);
    }
    pub fn error(message: &str) {
        log(Level::Error, message);
    }
}

/// Connects a [`Driver`] to the generated component exports. Used by [`export_driver!`].
#[doc(hidden)]
pub struct Export<D>(PhantomData<D>);

impl<D: Driver> bindings::exports::caravan::driver::plugin::Guest for Export<D> {
    fn info() -> DriverInfo {
        D::info()
    }
    fn config_schema() -> String {
        D::config_schema()
    }
    fn fingerprint(plugin_config: String) -> Fingerprint {
        D::fingerprint(plugin_config)
    }
    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        D::start_task(config)
    }
    fn interpret_exit(handle: TaskHandle, exit: RawExit) -> ExitResult {
        D::interpret_exit(handle, exit)
    }
    fn stop_task(handle: TaskHandle, timeout_ms: u64, signal: String) -> Result<(), DriverError> {
        D::stop_task(handle, timeout_ms, signal)
    }
    fn destroy_task(handle: TaskHandle, force: bool) -> Result<(), DriverError> {
        D::destroy_task(handle, force)
    }
    fn inspect_task(handle: TaskHandle) -> Result<TaskStatus, DriverError> {
        D::inspect_task(handle)
    }
    fn recover_task(handle: TaskHandle) -> Result<(), DriverError> {
        D::recover_task(handle)
    }
    fn signal_task(handle: TaskHandle, signal: String) -> Result<(), DriverError> {
        D::signal_task(handle, signal)
    }
    fn exec_task(
        handle: TaskHandle,
        cmd: Vec<String>,
        timeout_ms: u64,
    ) -> Result<ExecResult, DriverError> {
        D::exec_task(handle, cmd, timeout_ms)
    }
    fn task_stats(handle: TaskHandle) -> Result<TaskStats, DriverError> {
        D::task_stats(handle)
    }
}

/// Exports a [`Driver`] implementation as the component's `caravan:driver/plugin` interface.
///
/// ```ignore
/// caravan_driver_sdk::export_driver!(MyDriver);
/// ```
#[macro_export]
macro_rules! export_driver {
    ($driver:ty) => {
        type __CaravanDriverExport = $crate::Export<$driver>;
        $crate::bindings::export!(__CaravanDriverExport with_types_in $crate::bindings);
    };
}
