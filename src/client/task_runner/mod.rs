//! The task runner: one task of one allocation, from "Received" to dead, through its hooks, the
//! driver and the restart policy (Nomad: `client/allocrunner/taskrunner/task_runner.go`).
//!
//! ```text
//!  pending ──start gate──► prestart hooks ──► driver start ──► poststart hooks ──► running
//!     ▲                                                                            │
//!     │ Restarting (delay)                        kill: pre-kill hooks → Killing → stop-task
//!     └──── restart tracker ◄── exited hooks ◄── Terminated ◄── host wait ◄───────┘
//!                        │
//!                        └─► dead (Terminated: complete | Not Restarting: failed) ─► stop hooks
//! ```
//!
//! The hooks are objects in one ordered list built by [`runner_hooks::init_hooks`] (task dir,
//! logs, artifacts, env, template), one trait per phase (`hooks.rs`); every phase walks the list
//! in order. Prestart hooks run before every start and on recovery, except those whose persisted
//! state says `done` (artifacts). The runner persists its state, the driver's handle, the host's
//! own record of the task and each hook's state after every change (`state.rs`); a runner
//! created from persisted state with a handle re-attaches with `recover-task`, walks the
//! prestart and poststart hooks, and never starts the task a second time.
//!
//! Every driver call is bound to the task's [`TaskScope`], which the runner builds from its own
//! allocation record and allocation directory (never from the persisted handle). The runner holds
//! a [`Driver`] slot, so each call goes to the driver's current version (hot upgrade).
//!
//! **Invariant:** at most one driver task runs per runner; its handle is persisted before the
//! "Started" event is published.

pub(crate) mod artifact_hook;
pub(crate) mod devices_hook;
pub(crate) mod dispatch_hook;
pub(crate) mod env_hook;
pub(crate) mod events;
pub mod hooks;
pub(crate) mod log_collector;
pub(crate) mod logs_hook;
pub(crate) mod restarts;
pub(crate) mod runner_hooks;
pub(crate) mod task_dir_hook;
pub(crate) mod template_hook;
pub(crate) mod template_watch;
#[cfg(test)]
mod tests;
pub(crate) mod volumes_hook;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::client::alloc_runner::alloc_dir::AllocDir;
use crate::client::state::{HookState, StateDb, TaskRunnerState};
use crate::client::state_writer::Written;
use crate::driver_host::{
    Driver, DriverError, DriverHost, ExitResult, HostRecord, PortMapping, Resources, TaskConfig,
    TaskDevices, TaskHandle, TaskScope,
};
use crate::structs::{
    Allocation, JobType, RestartPolicy, Task, TaskEvent, TaskState, TaskStateValue,
};
use env_hook::NodeFacts;
use restarts::{RestartDecision, RestartTracker, RunOutcome};
use runner_hooks::HookList;

/// Most events kept per task, as Nomad's `MaxEvents`.
const MAX_EVENTS: usize = 10;

/// What the alloc runner asks of a task runner.
#[derive(Debug)]
pub enum TaskCommand {
    /// The task's lifecycle turn has come: start it.
    Start,
    /// Stop the task for good; `reason` (e.g. "Sibling Task Failed") is recorded first.
    Kill { reason: Option<TaskEvent> },
    /// Stop and start again; `reason` is the "Restart Signaled" event to record (a user's
    /// request when `None`). A `failure` (a `check_restart`) counts against the restart policy
    /// like a failed run and may leave the task failed; otherwise the policy is not consulted
    /// (Nomad: `RestartTracker.SetRestartTriggered`).
    Restart {
        reason: Option<TaskEvent>,
        failure: bool,
    },
    /// Send a signal to the running task; `reason` is the `Signaling` event to record (a
    /// user's request when `None`).
    Signal {
        signal: String,
        reason: Option<TaskEvent>,
    },
    /// Record an event (a template's `change_script` result).
    Event(TaskEvent),
    /// The agent is shutting down: stop watching the task but leave it running, so the next
    /// agent recovers it.
    Detach,
    /// The servers sent a newer version of the allocation.
    Update(Arc<Allocation>),
}

/// Everything a task runner needs.
pub struct TaskRunnerConfig {
    pub alloc: Arc<Allocation>,
    pub task: Task,
    pub job_type: JobType,
    pub restart_policy: RestartPolicy,
    pub alloc_dir: AllocDir,
    pub driver_host: DriverHost,
    pub facts: Arc<NodeFacts>,
    pub state_db: StateDb,
    pub restored: Option<TaskRunnerState>,
    /// Caps the task's `kill_timeout` (the agent's `max_kill_timeout`).
    pub max_kill_timeout: Duration,
    /// What the host may do with files for tasks (artifact sources, log collectors).
    pub task_files: Arc<crate::client::alloc_runner::alloc_dir::TaskFilesConfig>,
    /// Told after every state change.
    pub changed: Arc<tokio::sync::Notify>,
    /// The client's link to the servers, through which templates read Nomad services (`None`
    /// without servers, as in unit tests: a template reading services then fails).
    pub link: Option<Arc<dyn crate::client::ServerLink>>,
}

/// The alloc runner's (and the API's) view of a running task runner.
#[derive(Clone)]
pub struct TaskRunnerHandle {
    pub name: String,
    pub lifecycle: Option<crate::structs::TaskLifecycle>,
    pub leader: bool,
    state: watch::Receiver<TaskState>,
    commands: mpsc::UnboundedSender<TaskCommand>,
    current: Arc<Mutex<Option<(Driver, TaskHandle)>>>,
    scope: Arc<TaskScope>,
}

impl TaskRunnerHandle {
    pub fn state(&self) -> TaskState {
        self.state.borrow().clone()
    }

    pub fn send(&self, command: TaskCommand) {
        // A runner that has finished ignores commands; its state is final.
        let _ = self.commands.send(command);
    }

    /// The driver, handle and scope of the task if it is running; driver calls about the task
    /// take the scope.
    pub fn running(&self) -> Option<(Driver, TaskHandle, TaskScope)> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .map(|(driver, handle)| (driver, handle, (*self.scope).clone()))
    }
}

/// Starts the runner's tokio task with the hooks of [`runner_hooks::init_hooks`]; it waits for
/// [`TaskCommand::Start`] unless restored running.
pub fn spawn(config: TaskRunnerConfig) -> TaskRunnerHandle {
    let hooks = runner_hooks::init_hooks(&config);
    spawn_with_hooks(config, hooks)
}

/// Starts the runner's tokio task with `hooks` as its hook list.
pub fn spawn_with_hooks(config: TaskRunnerConfig, hooks: HookList) -> TaskRunnerHandle {
    tracing::debug!(task = %config.task.name, hooks = ?runner_hooks::hook_names(&hooks), "task hooks");
    let restored_state = config
        .restored
        .as_ref()
        .map(|restored| restored.task_state.clone())
        .unwrap_or_default();
    let (state_tx, state_rx) = watch::channel(restored_state.clone());
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    let current = Arc::new(Mutex::new(None));
    let scope = Arc::new(task_scope(&config));
    let own_commands = command_tx.downgrade();
    let handle = TaskRunnerHandle {
        name: config.task.name.clone(),
        lifecycle: config.task.lifecycle.clone(),
        leader: config.task.leader,
        state: state_rx,
        commands: command_tx,
        current: Arc::clone(&current),
        scope: Arc::clone(&scope),
    };
    let tracker = RestartTracker::new(
        config.restart_policy.clone(),
        config.job_type,
        config.task.lifecycle.as_ref(),
    );
    let hook_states = config
        .restored
        .as_ref()
        .map(|restored| restored.hooks.clone())
        .unwrap_or_default();
    let runner = TaskRunner {
        state: restored_state,
        state_tx,
        commands: command_rx,
        own_commands,
        current,
        scope,
        tracker,
        hooks,
        hook_states,
        env: BTreeMap::new(),
        devices: TaskDevices::default(),
        volumes: Vec::new(),
        config,
    };
    let span = tracing::info_span!("task", alloc_id = %runner.config.alloc.id, task = %runner.config.task.name);
    tokio::spawn(tracing::Instrument::instrument(runner.run(), span));
    handle
}

struct TaskRunner {
    config: TaskRunnerConfig,
    state: TaskState,
    state_tx: watch::Sender<TaskState>,
    commands: mpsc::UnboundedReceiver<TaskCommand>,
    /// A sender on `commands` for the runner's own helpers (the template watcher); weak, so the
    /// channel still closes when the alloc runner drops its handles.
    own_commands: mpsc::WeakUnboundedSender<TaskCommand>,
    current: Arc<Mutex<Option<(Driver, TaskHandle)>>>,
    /// The task's scope, from the runner's own allocation record and allocation directory.
    scope: Arc<TaskScope>,
    tracker: RestartTracker,
    /// The hooks, in the order every phase walks them.
    hooks: HookList,
    /// Each hook's persisted state, by hook name.
    hook_states: BTreeMap<String, HookState>,
    /// The environment of the last prestart walk.
    env: BTreeMap<String, String>,
    /// What the task's devices give it besides env, from the last prestart walk.
    devices: TaskDevices,
    /// The host volumes the task mounts, from the last prestart walk.
    volumes: Vec<crate::driver_host::TaskVolume>,
}

/// How waiting for the running task ended.
enum WaitEnd {
    Exited(ExitResult),
    Killed,
    /// Restarted on request, with the reason the `Restarting` event gives; a `failure` is left
    /// to the restart policy.
    Restart {
        reason: String,
        failure: bool,
    },
    Detached,
}

/// How a start that did not start the task ended.
enum StartEnd {
    /// The start failed; the restart policy decides.
    Failed(RunOutcome),
    /// A kill arrived while the prestart hooks ran (they are cancelled); the reason, if any.
    Killed(Option<Box<TaskEvent>>),
    /// The agent shut down while the prestart hooks ran.
    Detached,
}

/// How a pause (start gate, restart delay) ended.
enum PauseEnd {
    Proceed,
    Killed,
    Detached,
}

impl TaskRunner {
    /// Records the state, persists it with the handle, and tells the alloc runner.
    fn publish(&self) {
        self.persist();
        self.announce();
    }

    /// As [`TaskRunner::publish`], telling the alloc runner only once the state is on disk: a
    /// started task's handle is written before the task is reported running, so an agent that
    /// dies in between finds the task again.
    async fn publish_durably(&self) {
        if let Some(written) = self.persist() {
            written.wait().await;
        }
        self.announce();
    }

    /// Queues the state with the handle for the state writer.
    fn persist(&self) -> Option<Written> {
        let running = self.running();
        let host_record = running
            .as_ref()
            .map(|(driver, _)| driver.host_record(&self.scope))
            .unwrap_or_default();
        let persisted = TaskRunnerState {
            task_state: self.state.clone(),
            handle: running.map(|(_, handle)| handle),
            host_record,
            hooks: self.hook_states.clone(),
        };
        self.config
            .state_db
            .put_task(
                self.config.alloc.id.as_str(),
                &self.config.task.name,
                &persisted,
            )
            .inspect_err(|err| tracing::error!(error = %err, "failed to persist task state"))
            .ok()
    }

    /// Tells the alloc runner (and the task's watchers) the state.
    fn announce(&self) {
        self.state_tx.send_replace(self.state.clone());
        self.config.changed.notify_one();
    }

    fn emit(&mut self, event: TaskEvent) {
        tracing::info!(event = %event.event_type, message = %event.display_message, "task event");
        if event.fails_task {
            self.state.failed = true;
        }
        self.state.events.push(event);
        if self.state.events.len() > MAX_EVENTS {
            let excess = self.state.events.len() - MAX_EVENTS;
            self.state.events.drain(..excess);
        }
    }

    fn running(&self) -> Option<(Driver, TaskHandle)> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set_running(&self, running: Option<(Driver, TaskHandle)>) {
        *self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = running;
    }

    async fn mark_dead(&mut self, failed: bool) {
        self.state.state = TaskStateValue::Dead;
        self.state.failed |= failed;
        self.state.finished_at = Some(events::now_rfc3339());
        self.set_running(None);
        // The task is dead for good: the stop hooks run (its log collectors drain and exit).
        self.run_stop().await;
        self.publish();
    }

    async fn run(mut self) {
        let restored = self.config.restored.take();
        let mut recovered = None;
        match &restored {
            None => {
                self.emit(events::received());
                self.publish();
            }
            Some(restored) if restored.task_state.state == TaskStateValue::Dead => {
                // Finished before the agent restarted: nothing to run again.
                return;
            }
            Some(restored) => {
                if let Some(handle) = restored.handle.clone() {
                    recovered = self.recover(handle, &restored.host_record).await;
                }
            }
        }
        let mut first_gate = recovered.is_none();
        loop {
            let (driver, handle) = match recovered.take() {
                Some(running) => running,
                None => {
                    if first_gate {
                        first_gate = false;
                        match self.pause(None).await {
                            PauseEnd::Proceed => {}
                            PauseEnd::Killed => {
                                self.mark_dead(false).await;
                                return;
                            }
                            PauseEnd::Detached => {
                                self.run_shutdown().await;
                                return;
                            }
                        }
                    }
                    match self.start().await {
                        Ok(running) => running,
                        Err(StartEnd::Failed(outcome)) => {
                            if self.after_run(outcome).await {
                                continue;
                            }
                            return;
                        }
                        Err(StartEnd::Killed(reason)) => {
                            if let Some(reason) = reason {
                                self.emit(*reason);
                            }
                            self.mark_dead(false).await;
                            return;
                        }
                        Err(StartEnd::Detached) => {
                            self.run_shutdown().await;
                            return;
                        }
                    }
                }
            };
            let watcher = self.watch_templates(&driver, &handle);
            let end = self.wait(&driver, &handle).await;
            drop(watcher);
            match end {
                WaitEnd::Detached => {
                    self.run_shutdown().await;
                    return;
                }
                WaitEnd::Killed => {
                    self.run_exited(None).await;
                    self.mark_dead(false).await;
                    return;
                }
                WaitEnd::Restart {
                    failure: true,
                    reason,
                } => {
                    self.run_exited(None).await;
                    tracing::info!(reason, "restart for a failure: the restart policy decides");
                    if !self
                        .after_run(RunOutcome::Exited { successful: false })
                        .await
                    {
                        return;
                    }
                }
                WaitEnd::Restart {
                    failure: false,
                    reason,
                } => {
                    self.run_exited(None).await;
                    self.state.restarts += 1;
                    self.state.last_restart = Some(events::now_rfc3339());
                    self.emit(events::restarting(Duration::ZERO, &reason));
                    self.state.state = TaskStateValue::Pending;
                    self.publish();
                    continue;
                }
                WaitEnd::Exited(exit) => {
                    self.run_exited(Some(&exit)).await;
                    let outcome = RunOutcome::Exited {
                        successful: exit.successful(),
                    };
                    if !self.after_run(outcome).await {
                        return;
                    }
                }
            }
        }
    }

    /// Starts re-rendering the task's templates when what they read changes, for this run of
    /// the task (see `template_watch`); `None` without templates or servers to read from.
    fn watch_templates(
        &self,
        driver: &Driver,
        handle: &TaskHandle,
    ) -> Option<template_watch::Watcher> {
        let link = self.config.link.clone()?;
        if self.config.task.templates.is_empty() {
            return None;
        }
        template_watch::spawn(template_watch::WatchConfig {
            task_dir: self.scope.task_dir.clone(),
            templates: template_hook::interpolated(
                &self.config.task.templates,
                &self.env,
                &self.config.facts,
            ),
            env: self.env.clone(),
            namespace: self.config.alloc.namespace.clone(),
            link,
            checksums: template_hook::kept_checksums(self.hook_states.get(template_hook::NAME)),
            commands: self.own_commands.clone(),
            driver: driver.clone(),
            handle: handle.clone(),
            scope: (*self.scope).clone(),
        })
    }

    /// Re-attaches to a task that ran before the agent restarted; the host re-registers the
    /// task's processes from its own persisted record first.
    async fn recover(
        &mut self,
        handle: TaskHandle,
        host_record: &HostRecord,
    ) -> Option<(Driver, TaskHandle)> {
        let driver = match self.config.driver_host.driver(&handle.driver).await {
            Ok(driver) => driver,
            Err(err) => {
                tracing::warn!(error = %err, "driver unavailable to recover task");
                return None;
            }
        };
        match driver.recover_task(&self.scope, &handle, host_record).await {
            Ok(()) => {
                tracing::info!("recovered running task");
                self.set_running(Some((driver.clone(), handle.clone())));
                self.state.state = TaskStateValue::Running;
                // The prestart hooks that are not done run again (Nomad's restore): collectors
                // that ran on this agent's threads start again (a collector process that
                // outlived the agent is found running and kept), templates are checked. A
                // failure is recorded; the task keeps running.
                match self
                    .run_prestart(driver.info().capabilities.fs_isolation, true)
                    .await
                {
                    Ok(env) => self.env = env,
                    Err(_) => tracing::warn!("prestart hooks failed on recovery"),
                }
                self.publish();
                self.run_poststart(&driver, &handle).await;
                Some((driver, handle))
            }
            Err(err) => {
                tracing::warn!(error = %err, "failed to recover task; it will be started again");
                self.state.state = TaskStateValue::Pending;
                self.publish();
                None
            }
        }
    }

    /// Waits for the start gate (`delay` None) or a restart delay. A `Restart` or `Signal` while
    /// paused is ignored; a `Kill` ends the pause.
    async fn pause(&mut self, delay: Option<Duration>) -> PauseEnd {
        let sleep = async {
            match delay {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return PauseEnd::Proceed,
                command = self.commands.recv() => match command {
                    Some(TaskCommand::Start) if delay.is_none() => return PauseEnd::Proceed,
                    Some(TaskCommand::Kill { reason }) => {
                        if let Some(reason) = reason {
                            self.emit(reason);
                        }
                        return PauseEnd::Killed;
                    }
                    Some(TaskCommand::Detach) => return PauseEnd::Detached,
                    Some(TaskCommand::Update(alloc)) => self.run_update(alloc).await,
                    Some(TaskCommand::Event(event)) => {
                        self.emit(event);
                        self.publish();
                    }
                    Some(_) => {}
                    None => return PauseEnd::Killed,
                },
            }
        }
    }

    /// Runs the prestart hooks and starts the task with its driver, then the poststart hooks.
    async fn start(&mut self) -> Result<(Driver, TaskHandle), StartEnd> {
        let driver = match self
            .config
            .driver_host
            .driver(&self.config.task.driver)
            .await
        {
            Ok(driver) => driver,
            Err(err) => {
                self.emit(events::driver_failure(&format!(
                    "failed to load driver {:?}: {err}",
                    self.config.task.driver
                )));
                return Err(StartEnd::Failed(RunOutcome::StartFailed {
                    recoverable: false,
                }));
            }
        };
        let env = self
            .run_prestart(driver.info().capabilities.fs_isolation, false)
            .await?;
        self.env = env.clone();
        let config = env_hook::interpolate_config(
            &serde_json::Value::Object(self.config.task.config.clone()),
            &env,
            &self.config.facts,
        );
        let task_config = self.task_config(config, env);
        let scope = TaskScope {
            devices: self.devices.clone(),
            volumes: self.volumes.clone(),
            ..(*self.scope).clone()
        };
        match driver.start_task(&scope, &task_config).await {
            Ok(handle) => {
                self.set_running(Some((driver.clone(), handle.clone())));
                self.state.state = TaskStateValue::Running;
                if self.state.started_at.is_none() {
                    self.state.started_at = Some(events::now_rfc3339());
                }
                self.emit(events::started());
                self.publish_durably().await;
                self.run_poststart(&driver, &handle).await;
                Ok((driver, handle))
            }
            Err(err) => {
                let recoverable =
                    !matches!(err.driver_error(), Some(DriverError::InvalidConfig(_)));
                self.emit(events::driver_failure(&err.to_string()));
                Err(StartEnd::Failed(RunOutcome::StartFailed { recoverable }))
            }
        }
    }

    fn task_config(&self, config: serde_json::Value, env: BTreeMap<String, String>) -> TaskConfig {
        let alloc = &self.config.alloc;
        let ports = env_hook::ports_of(alloc, &self.config.task.name)
            .into_iter()
            .map(|port| PortMapping {
                label: port.label,
                value: u16::try_from(port.value).unwrap_or(0),
                to: u16::try_from(port.to).unwrap_or(0),
                host_ip: port.host_ip,
            })
            .collect();
        TaskConfig {
            job_name: alloc.job_id.to_string(),
            group_name: alloc.task_group.clone(),
            config,
            env,
            ports,
        }
    }

    /// Waits for the task to exit, handling kill, restart and signal requests meanwhile.
    async fn wait(&mut self, driver: &Driver, handle: &TaskHandle) -> WaitEnd {
        let wait_driver = driver.clone();
        let wait_handle = handle.clone();
        let wait_scope = Arc::clone(&self.scope);
        let exit =
            tokio::spawn(async move { wait_driver.wait_task(&wait_scope, &wait_handle).await });
        tokio::pin!(exit);
        let outcome_of = |joined: Result<
            crate::driver_host::Result<ExitResult>,
            tokio::task::JoinError,
        >| match joined {
            Ok(Ok(exit)) => exit,
            Ok(Err(err)) => ExitResult {
                exit_code: -1,
                signal: 0,
                oom_killed: false,
                err: Some(format!("failed to wait for task: {err}")),
            },
            Err(err) => ExitResult {
                exit_code: -1,
                signal: 0,
                oom_killed: false,
                err: Some(format!("wait task panicked: {err}")),
            },
        };
        loop {
            tokio::select! {
                joined = &mut exit => {
                    let exit = outcome_of(joined);
                    self.finish_driver_task(driver, handle).await;
                    self.emit(events::terminated(&exit));
                    self.publish();
                    return WaitEnd::Exited(exit);
                }
                command = self.commands.recv() => {
                    let (reason, end) = match command {
                        Some(TaskCommand::Kill { reason }) => (reason, WaitEnd::Killed),
                        None => (None, WaitEnd::Killed),
                        Some(TaskCommand::Restart { reason, failure }) => {
                            let reason = reason.unwrap_or_else(events::restart_signaled);
                            let why = if reason.restart_reason.is_empty() {
                                reason.display_message.clone()
                            } else {
                                reason.restart_reason.clone()
                            };
                            (Some(reason), WaitEnd::Restart { reason: why, failure })
                        }
                        Some(TaskCommand::Signal { signal, reason }) => {
                            self.emit(reason.unwrap_or_else(|| events::signaling(&signal)));
                            self.publish();
                            if let Err(err) = driver.signal_task(&self.scope, handle, &signal).await {
                                tracing::warn!(error = %err, "failed to signal task");
                            }
                            continue;
                        }
                        Some(TaskCommand::Start) => continue,
                        Some(TaskCommand::Event(event)) => {
                            self.emit(event);
                            self.publish();
                            continue;
                        }
                        Some(TaskCommand::Update(alloc)) => {
                            self.run_update(alloc).await;
                            continue;
                        }
                        Some(TaskCommand::Detach) => {
                            exit.abort();
                            return WaitEnd::Detached;
                        }
                    };
                    let stopping_alloc = reason.is_none() && matches!(end, WaitEnd::Killed);
                    if let Some(reason) = reason {
                        self.emit(reason);
                    }
                    self.run_pre_kill().await;
                    // Nomad: `shutdown_delay` lets load balancers drain before the kill signal
                    // when the allocation is stopped.
                    if stopping_alloc
                        && let Some(delay) = self.config.task.shutdown_delay.filter(|delay| !delay.is_zero())
                    {
                        self.emit(events::new(
                            "Waiting for shutdown delay",
                            format!(
                                "Waiting for shutdown_delay of {} before killing the task",
                                crate::structs::duration::format_go_duration(delay)
                            ),
                        ));
                        self.publish();
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            joined = &mut exit => {
                                let exit = outcome_of(joined);
                                self.finish_driver_task(driver, handle).await;
                                self.emit(events::terminated(&exit));
                                self.emit(events::killed(None));
                                self.publish();
                                return end;
                            }
                        }
                    }
                    let kill_timeout = self
                        .config
                        .task
                        .kill_timeout
                        .unwrap_or(Task::DEFAULT_KILL_TIMEOUT)
                        .min(self.config.max_kill_timeout);
                    self.emit(events::killing(kill_timeout));
                    self.publish();
                    let stop_error = driver
                        .stop_task(&self.scope, handle, kill_timeout, &self.config.task.kill_signal)
                        .await
                        .err()
                        .map(|err| err.to_string());
                    let exit = outcome_of((&mut exit).await);
                    self.finish_driver_task(driver, handle).await;
                    self.emit(events::terminated(&exit));
                    self.emit(events::killed(stop_error));
                    self.publish();
                    return end;
                }
            }
        }
    }

    async fn finish_driver_task(&mut self, driver: &Driver, handle: &TaskHandle) {
        if let Err(err) = driver.destroy_task(&self.scope, handle, true).await {
            tracing::debug!(error = %err, "destroy task");
        }
        self.set_running(None);
    }

    /// Applies the restart policy after a run; true to run again.
    async fn after_run(&mut self, outcome: RunOutcome) -> bool {
        let decision = self
            .tracker
            .next(outcome, Instant::now(), rand::random::<f64>());
        match decision {
            RestartDecision::Terminated { reason } => {
                tracing::info!(reason, "task finished");
                self.mark_dead(false).await;
                false
            }
            RestartDecision::NotRestarting { reason } => {
                self.emit(events::not_restarting(&reason));
                self.mark_dead(true).await;
                false
            }
            RestartDecision::Restart { delay, reason } => {
                self.emit(events::restarting(delay, &reason));
                self.state.state = TaskStateValue::Pending;
                self.state.restarts += 1;
                self.state.last_restart = Some(events::now_rfc3339());
                self.publish();
                match self.pause(Some(delay)).await {
                    PauseEnd::Proceed => true,
                    PauseEnd::Detached => false,
                    PauseEnd::Killed => {
                        self.emit(events::killed(None));
                        self.mark_dead(false).await;
                        false
                    }
                }
            }
        }
    }
}

/// The task's scope from the runner's own records: its allocation (id, resources, user) and its
/// allocation directory (task directory, log files). Nothing here comes from a driver.
fn task_scope(config: &TaskRunnerConfig) -> TaskScope {
    let alloc = &config.alloc;
    let task = &config.task;
    let logs_dir = config.alloc_dir.logs_dir();
    let mut scope = TaskScope::new(
        alloc.id.as_str(),
        &task.name,
        config.alloc_dir.root(),
        logs_hook::sink_path(&logs_dir, &task.name, "stdout"),
        logs_hook::sink_path(&logs_dir, &task.name, "stderr"),
    );
    scope.task_dir = config.alloc_dir.task_dir(&task.name);
    scope.log_rotation = logs_hook::RotationConfig::from_log_config(task.log_config.as_ref());
    scope.resources = match alloc.allocated_resources.tasks.get(&task.name) {
        Some(allocated) => Resources {
            cpu_mhz: u32::try_from(allocated.cpu.cpu_shares).unwrap_or(0),
            memory_mb: u32::try_from(allocated.memory.memory_mb).unwrap_or(0),
            memory_max_mb: u32::try_from(allocated.memory.memory_max_mb).unwrap_or(0),
        },
        None => task
            .resources
            .as_ref()
            .map(|resources| Resources {
                cpu_mhz: u32::try_from(resources.cpu).unwrap_or(0),
                memory_mb: u32::try_from(resources.memory_mb).unwrap_or(0),
                memory_max_mb: u32::try_from(resources.memory_max_mb).unwrap_or(0),
            })
            .unwrap_or_default(),
    };
    scope.user = Some(task.user.clone()).filter(|user| !user.is_empty());
    scope
}

impl std::fmt::Debug for TaskRunnerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRunnerHandle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TaskRunnerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRunnerConfig")
            .field("alloc_id", &self.alloc.id)
            .field("task", &self.task.name)
            .finish_non_exhaustive()
    }
}
