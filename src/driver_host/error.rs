//! The driver host's errors, in two channels (as wasmtime's `TrappableError`):
//!
//! - [`DriverError`]: a value a driver returned on purpose (bad task config, task not found...).
//!   The instance behaved; the call simply failed.
//! - Every other [`Error`] variant: the host refused or lost the call: a trap, a CPU deadline or
//!   wall-clock timeout overrun, the memory cap, an ungranted capability, a bad component. The
//!   instance of that call is discarded; the next call gets a fresh one.
//!
//! Every message names the driver and, for calls, the call.

use std::path::PathBuf;
use std::time::Duration;

use crate::driver_host::grants::Capability;

/// An error a driver returned on purpose (WIT `driver-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum DriverError {
    #[error("invalid task config: {0}")]
    InvalidConfig(String),
    #[error("task not found: {0}")]
    TaskNotFound(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Failed(String),
}

/// Everything that can go wrong between the agent and a driver.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The driver answered with an error value.
    #[error("driver {driver:?} {call}: {error}")]
    Driver {
        driver: String,
        call: &'static str,
        error: DriverError,
    },

    /// The guest trapped (a panic, an out-of-bounds access, `unreachable`...).
    #[error("driver {driver:?} {call}: trapped: {message}")]
    Trap {
        driver: String,
        call: &'static str,
        message: String,
    },

    /// The guest computed longer than its CPU budget for one call (epoch interruption).
    #[error("driver {driver:?} {call}: exceeded its deadline of {budget:?} of guest execution")]
    DeadlineExceeded {
        driver: String,
        call: &'static str,
        budget: Duration,
    },

    /// The guest tried to grow a memory or a table past its store's budget (all memories and
    /// tables of the store together).
    #[error(
        "driver {driver:?} {call}: exceeded its memory cap of {cap_bytes} bytes (linear memory and \
         tables of all its instances together)"
    )]
    MemoryCapExceeded {
        driver: String,
        call: &'static str,
        cap_bytes: usize,
    },

    /// The call as a whole (guest and host capabilities) ran past its wall-clock timeout.
    #[error("driver {driver:?} {call}: timed out after {timeout:?}")]
    Timeout {
        driver: String,
        call: &'static str,
        timeout: Duration,
    },

    /// The driver imports a capability the operator did not grant; it is not instantiated.
    #[error(
        "driver {driver:?} imports capability {capability} which is not granted; grant it with \
         plugin \"{driver}\" {{ config {{ capabilities = [..., \"{capability}\"] }} }}"
    )]
    NotGranted {
        driver: String,
        capability: Capability,
    },

    /// The driver imports an interface caravan does not provide at all.
    #[error("driver {driver:?} imports {import:?}, which caravan does not provide")]
    UnknownImport { driver: String, import: String },

    /// The driver implements a contract version this host does not accept.
    #[error("driver {driver:?} implements caravan:driver@{found}; this host accepts {accepted}")]
    IncompatibleContract {
        driver: String,
        found: String,
        accepted: &'static str,
    },

    /// raw_exec (and any driver configured `enabled = false`) is off.
    #[error(
        "driver {driver:?} is disabled; enable it with plugin \"{driver}\" {{ config {{ enabled = true }} }}"
    )]
    Disabled { driver: String },

    /// Neither built in nor found in `plugin_dir`.
    #[error(
        "driver {driver:?} not found: not built in and not in the plugin directory {plugin_dir:?}"
    )]
    NotFound {
        driver: String,
        plugin_dir: Option<PathBuf>,
    },

    /// The agent's `plugin "NAME" { config {...} }` is malformed.
    #[error("plugin {driver:?}: invalid config: {reason}")]
    PluginConfig { driver: String, reason: String },

    /// The file is not a valid caravan driver component.
    #[error("driver {driver:?}: invalid component: {reason}")]
    InvalidComponent { driver: String, reason: String },

    /// Instantiation failed (e.g. all instance slots of the pool are in use).
    #[error("driver {driver:?} {call}: cannot instantiate: {reason}")]
    Instantiate {
        driver: String,
        call: &'static str,
        reason: String,
    },

    /// The call found no free instance slot in its driver's lane (see `budget.rs`).
    #[error("driver {driver:?} {call}: busy: {reason}")]
    Busy {
        driver: String,
        call: &'static str,
        reason: String,
    },

    /// Loading and fingerprinting a driver did not finish within its deadline.
    #[error("driver {driver:?} fingerprint: no answer within {timeout:?}")]
    FingerprintTimeout { driver: String, timeout: Duration },

    /// A handle given to another driver than the one that made it.
    #[error("driver {driver:?}: handle of task {task_id:?} belongs to driver {owner:?}")]
    ForeignHandle {
        driver: String,
        task_id: String,
        owner: String,
    },

    /// A handle used for another task than the one of the call's scope.
    #[error(
        "driver {driver:?}: handle of task {handle_task:?} used for task {scope_task:?}: refused"
    )]
    ScopeMismatch {
        driver: String,
        handle_task: String,
        scope_task: String,
    },

    /// `start-task` returned something to wait on that is not the task's own; what the call
    /// created was reaped.
    #[error("driver {driver:?} start-task: {reason}")]
    ForeignWaitable { driver: String, reason: String },

    /// The host's own wait for a task failed (its process, workload or container vanished).
    #[error("driver {driver:?}: waiting for task {task_id:?}: {reason}")]
    Wait {
        driver: String,
        task_id: String,
        reason: String,
    },

    /// Setting up the engine failed.
    #[error("wasmtime engine: {0}")]
    Engine(String),

    /// A file of the precompiled-artifact cache or the plugin directory.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// The driver error value, when the driver returned one on purpose.
    pub fn driver_error(&self) -> Option<&DriverError> {
        match self {
            Error::Driver { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the sandbox stopped the call (trap, deadline, memory cap, timeout): the instance was
    /// discarded and the driver misbehaved.
    pub fn is_sandbox_violation(&self) -> bool {
        matches!(
            self,
            Error::Trap { .. }
                | Error::DeadlineExceeded { .. }
                | Error::MemoryCapExceeded { .. }
                | Error::Timeout { .. }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
