//! The task runner's hook interfaces: one trait per lifecycle phase, as Nomad's
//! `client/allocrunner/interfaces/task_lifecycle.go`.
//!
//! A hook is an object with a name ([`TaskHook`]) that takes part in the phases it implements,
//! reached through the `as_*` methods (Nomad's type assertions):
//!
//! ```text
//!  prestart ──► driver start ──► poststart ──► (running: update) ──► pre-kill ──► exited
//!     ▲  before every start and on recovery                              │
//!     └──────────────────────────── restart ◄────────────────────────────┤
//!                                                 dead for good ──► stop; agent shutdown ──► shutdown
//! ```
//!
//! The runner holds its hooks in one ordered list (`runner_hooks.rs`, `init_hooks`) and walks it
//! for each phase in that order. A prestart hook fills a [`PrestartResponse`]: environment
//! variables for the task, a small serde value kept as the hook's state (handed back as
//! [`PrestartRequest::previous_state`] on the next run, after an agent restart too) and `done`,
//! after which the hook is skipped for the life of the allocation (its environment is still
//! applied). The runner persists that per hook name with the task's state (`state.rs`).
//!
//! Hooks publish task events through [`HookEvents`]; the runner records and reports them while
//! the hook runs. A hook's failure is a [`HookError`]: in prestart it stops the walk and fails
//! the start with a "Task hook failed" event naming the hook (or the event the hook supplies),
//! recoverable unless the hook says otherwise.

use std::collections::BTreeMap;
use std::path::Path;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::client::alloc_runner::alloc_dir::AllocDir;
use crate::driver_host::{Driver, ExitResult, FsIsolation, TaskHandle, TaskScope};
use crate::structs::{Allocation, Task, TaskEvent};

/// A hook's failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HookError {
    message: String,
    /// The event to record instead of the generic "Task hook failed" (Nomad's `HookError`).
    event: Option<Box<TaskEvent>>,
    recoverable: bool,
}

impl HookError {
    /// A recoverable failure (the restart policy decides what follows).
    pub fn new(message: impl Into<String>) -> HookError {
        HookError {
            message: message.into(),
            event: None,
            recoverable: true,
        }
    }

    /// A failure no restart can mend: the task fails at once.
    pub fn fatal(message: impl Into<String>) -> HookError {
        HookError {
            recoverable: false,
            ..HookError::new(message)
        }
    }

    /// Records `event` for this failure instead of the generic one.
    pub fn with_event(mut self, event: TaskEvent) -> HookError {
        self.event = Some(Box::new(event));
        self
    }

    pub fn recoverable(&self) -> bool {
        self.recoverable
    }

    pub fn event(&self) -> Option<&TaskEvent> {
        self.event.as_deref()
    }
}

/// Where a hook sends task events; the runner records each as it arrives.
#[derive(Debug, Clone)]
pub struct HookEvents {
    sender: mpsc::UnboundedSender<TaskEvent>,
}

impl HookEvents {
    pub(crate) fn channel() -> (HookEvents, mpsc::UnboundedReceiver<TaskEvent>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (HookEvents { sender }, receiver)
    }

    pub fn emit(&self, event: TaskEvent) {
        // The runner outlives every hook call it drives; a send after it is gone is moot.
        let _ = self.sender.send(event);
    }
}

/// What a prestart hook is given.
pub struct PrestartRequest<'a> {
    pub alloc: &'a Allocation,
    pub task: &'a Task,
    pub alloc_dir: &'a AllocDir,
    /// The task's directory, from the runner's own scope.
    pub task_dir: &'a Path,
    /// How the task's driver isolates its filesystem (where the task sees its directories).
    pub fs_isolation: FsIsolation,
    /// The environment the hooks before this one built.
    pub env: &'a BTreeMap<String, String>,
    /// What this hook kept the last time it ran, if it has run for this task.
    pub previous_state: Option<&'a serde_json::Value>,
    /// True when the task is already running: the runner recovered it after an agent restart
    /// and will not start it again.
    pub recovering: bool,
    pub events: &'a HookEvents,
}

impl PrestartRequest<'_> {
    /// The hook's previous state as `T`; `None` when there is none or it no longer decodes.
    pub fn previous<T: DeserializeOwned>(&self) -> Option<T> {
        self.previous_state
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }
}

/// What a prestart hook gives back.
#[derive(Debug, Clone, Default)]
pub struct PrestartResponse {
    /// Variables added to the task's environment (after those of earlier hooks).
    pub env: BTreeMap<String, String>,
    /// What the task's devices give it besides env (the `devices` hook), for the start call.
    pub devices: crate::driver_host::TaskDevices,
    /// The host volumes the task mounts (the `volumes` hook), for the start call.
    pub volumes: Vec<crate::driver_host::TaskVolume>,
    /// The hook's state, kept by the runner under the hook's name.
    pub state: Option<serde_json::Value>,
    /// The hook's work is complete for the life of the allocation: it is not run again, after a
    /// restart of the task or of the agent. Only for expensive, one-off work (artifacts).
    pub done: bool,
}

impl PrestartResponse {
    pub fn set_state<T: Serialize>(&mut self, value: &T) -> Result<(), HookError> {
        self.state = Some(
            serde_json::to_value(value)
                .map_err(|err| HookError::new(format!("failed to encode hook state: {err}")))?,
        );
        Ok(())
    }
}

/// What a poststart hook is given: the running task.
pub struct PoststartRequest<'a> {
    pub alloc: &'a Allocation,
    pub task: &'a Task,
    pub env: &'a BTreeMap<String, String>,
    pub driver: &'a Driver,
    pub handle: &'a TaskHandle,
    pub scope: &'a TaskScope,
    pub events: &'a HookEvents,
}

/// What a pre-kill, exited or shutdown hook is given.
pub struct TaskRequest<'a> {
    pub alloc: &'a Allocation,
    pub task: &'a Task,
    pub events: &'a HookEvents,
}

/// What an exited hook is given.
pub struct ExitedRequest<'a> {
    pub alloc: &'a Allocation,
    pub task: &'a Task,
    /// How the task ended when it ended by itself; `None` when the runner killed or restarted
    /// it (Nomad's request carries nothing).
    pub exit: Option<&'a ExitResult>,
    pub events: &'a HookEvents,
}

/// What a stop hook is given.
pub struct StopRequest<'a> {
    pub alloc: &'a Allocation,
    pub task: &'a Task,
    pub alloc_dir: &'a AllocDir,
    /// The hook's prestart state, read-only.
    pub existing_state: Option<&'a serde_json::Value>,
    pub events: &'a HookEvents,
}

/// What an update hook is given: the allocation as the servers last sent it.
pub struct UpdateRequest<'a> {
    pub alloc: &'a Allocation,
    pub task: &'a Task,
    /// The environment of the task's last start.
    pub env: &'a BTreeMap<String, String>,
    pub events: &'a HookEvents,
}

/// A hook's future.
pub type HookFuture<'a> = BoxFuture<'a, Result<(), HookError>>;

/// A named hook; it takes part in the phases whose `as_*` method returns it.
pub trait TaskHook: Send + Sync {
    /// The hook's name: its key in the persisted hook states and in events and logs.
    fn name(&self) -> &'static str;

    fn as_prestart(&self) -> Option<&dyn Prestart> {
        None
    }
    fn as_poststart(&self) -> Option<&dyn Poststart> {
        None
    }
    fn as_pre_kill(&self) -> Option<&dyn PreKill> {
        None
    }
    fn as_exited(&self) -> Option<&dyn Exited> {
        None
    }
    fn as_update(&self) -> Option<&dyn Update> {
        None
    }
    fn as_stop(&self) -> Option<&dyn Stop> {
        None
    }
    fn as_shutdown(&self) -> Option<&dyn Shutdown> {
        None
    }
}

/// Runs before the task starts, before every restart, and when a running task is recovered
/// (unless it reported `done`).
pub trait Prestart: Send + Sync {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a>;
}

/// Runs once the task is running (after a start, and after a recovery).
pub trait Poststart: Send + Sync {
    fn poststart<'a>(&'a self, req: &'a PoststartRequest<'a>) -> HookFuture<'a>;
}

/// Runs right before the task is killed or restarted, before any `shutdown_delay`.
pub trait PreKill: Send + Sync {
    fn pre_kill<'a>(&'a self, req: &'a TaskRequest<'a>) -> HookFuture<'a>;
}

/// Runs after the task exits, whether or not it is started again.
pub trait Exited: Send + Sync {
    fn exited<'a>(&'a self, req: &'a ExitedRequest<'a>) -> HookFuture<'a>;
}

/// Runs when the servers send a new version of the allocation (e.g. a new job version) while
/// the task is not dead.
pub trait Update: Send + Sync {
    fn update<'a>(&'a self, req: &'a UpdateRequest<'a>) -> HookFuture<'a>;
}

/// Runs once the task is dead for good (never when the agent merely shuts down). Must be
/// idempotent; may run without prestart having run.
pub trait Stop: Send + Sync {
    fn stop<'a>(&'a self, req: &'a StopRequest<'a>) -> HookFuture<'a>;
}

/// Runs when the agent shuts down and leaves the task running for the next agent.
pub trait Shutdown: Send + Sync {
    fn shutdown<'a>(&'a self, req: &'a TaskRequest<'a>) -> HookFuture<'a>;
}
