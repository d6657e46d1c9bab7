//! The task runner: one task of one allocation, from "Received" to dead, through its hooks, the
//! driver and the restart policy (Nomad: `client/allocrunner/taskrunner/task_runner.go`).
//!
//! ```text
//!  pending ──start gate──► hooks (task_dir, logs, artifacts, env, template) ──► driver start
//!     ▲                                                                            │
//!     │ Restarting (delay)                                                    running
//!     └──────────── restart tracker ◄── Terminated ◄── host wait ◄───────────────┘
//!                        │                                 ▲ kill: Killing → stop-task → Killed
//!                        └─► dead (Terminated: complete | Not Restarting: failed)
//! ```
//!
//! The hooks run in one ordered list, [`PRESTART_HOOKS`], each idempotent so they run again
//! before every restart. The runner persists its state, the driver's handle and the host's own
//! record of the task after every change (`state.rs`); a runner created from persisted state with
//! a handle re-attaches with `recover-task` and never starts the task a second time.
//!
//! Every driver call is bound to the task's [`TaskScope`], which the runner builds from its own
//! allocation record and allocation directory (never from the persisted handle). The runner holds
//! a [`Driver`] slot, so each call goes to the driver's current version (hot upgrade).
//!
//! **Invariant:** at most one driver task runs per runner; its handle is persisted before the
//! "Started" event is published.

pub(crate) mod artifact_hook;
pub(crate) mod env_hook;
pub(crate) mod events;
pub(crate) mod log_collector;
pub(crate) mod logs_hook;
pub(crate) mod restarts;
pub(crate) mod task_dir_hook;
pub(crate) mod template_hook;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::client::alloc_runner::alloc_dir::AllocDir;
use crate::client::state::{StateDb, TaskRunnerState};
use crate::driver_host::{
    Driver, DriverError, DriverHost, ExitResult, HostRecord, PortMapping, Resources, TaskConfig,
    TaskHandle, TaskScope,
};
use crate::structs::{
    Allocation, JobType, RestartPolicy, Task, TaskEvent, TaskState, TaskStateValue,
};
use env_hook::NodeFacts;
use restarts::{RestartDecision, RestartTracker, RunOutcome};

/// The prestart hooks, in the order they run.
pub const PRESTART_HOOKS: [&str; 5] = [
    task_dir_hook::NAME,
    logs_hook::NAME,
    artifact_hook::NAME,
    "env",
    template_hook::NAME,
];

/// Most events kept per task, as Nomad's `MaxEvents`.
const MAX_EVENTS: usize = 10;

/// What the alloc runner asks of a task runner.
#[derive(Debug)]
pub enum TaskCommand {
    /// The task's lifecycle turn has come: start it.
    Start,
    /// Stop the task for good; `reason` (e.g. "Sibling Task Failed") is recorded first.
    Kill { reason: Option<TaskEvent> },
    /// Stop and start again without counting against the restart policy.
    Restart,
    /// Send a signal to the running task.
    Signal { signal: String },
    /// The agent is shutting down: stop watching the task but leave it running, so the next
    /// agent recovers it.
    Detach,
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

/// Starts the runner's tokio task; it waits for [`TaskCommand::Start`] unless restored running.
pub fn spawn(config: TaskRunnerConfig) -> TaskRunnerHandle {
    let restored_state = config
        .restored
        .as_ref()
        .map(|restored| restored.task_state.clone())
        .unwrap_or_default();
    let (state_tx, state_rx) = watch::channel(restored_state.clone());
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    let current = Arc::new(Mutex::new(None));
    let scope = Arc::new(task_scope(&config));
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
    let runner = TaskRunner {
        state: restored_state,
        state_tx,
        commands: command_rx,
        current,
        scope,
        tracker,
        artifacts_done: false,
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
    current: Arc<Mutex<Option<(Driver, TaskHandle)>>>,
    /// The task's scope, from the runner's own allocation record and allocation directory.
    scope: Arc<TaskScope>,
    tracker: RestartTracker,
    artifacts_done: bool,
}

/// How waiting for the running task ended.
enum WaitEnd {
    Exited(ExitResult),
    Killed,
    Restart,
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
    fn publish(&mut self) {
        let running = self.running();
        let host_record = running
            .as_ref()
            .map(|(driver, _)| driver.host_record(&self.scope))
            .unwrap_or_default();
        let persisted = TaskRunnerState {
            task_state: self.state.clone(),
            handle: running.map(|(_, handle)| handle),
            host_record,
        };
        if let Err(err) = self.config.state_db.put_task(
            self.config.alloc.id.as_str(),
            &self.config.task.name,
            &persisted,
        ) {
            tracing::error!(error = %err, "failed to persist task state");
        }
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

    fn mark_dead(&mut self, failed: bool) {
        self.state.state = TaskStateValue::Dead;
        self.state.failed |= failed;
        self.state.finished_at = Some(events::now_rfc3339());
        self.set_running(None);
        // The task is dead for good: its log collectors drain and exit.
        if let Err(err) = logs_hook::stop(&self.config.alloc_dir, &self.config.task.name) {
            tracing::warn!(error = %err, "failed to stop log collectors");
        }
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
                                self.mark_dead(false);
                                return;
                            }
                            PauseEnd::Detached => return,
                        }
                    }
                    match self.start().await {
                        Ok(running) => running,
                        Err(outcome) => {
                            if self.after_run(outcome).await {
                                continue;
                            }
                            return;
                        }
                    }
                }
            };
            match self.wait(&driver, &handle).await {
                WaitEnd::Detached => return,
                WaitEnd::Killed => {
                    self.mark_dead(false);
                    return;
                }
                WaitEnd::Restart => {
                    self.state.restarts += 1;
                    self.state.last_restart = Some(events::now_rfc3339());
                    self.emit(events::restarting(Duration::ZERO, "User requested restart"));
                    self.state.state = TaskStateValue::Pending;
                    self.publish();
                    continue;
                }
                WaitEnd::Exited(exit) => {
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
                // Collectors that ran on this agent's threads went with it: start them again
                // (a collector process that outlived the agent is found running and kept).
                if let Err(err) = self.prepare_logs().await {
                    tracing::warn!(error = %err, "failed to restart log collectors");
                }
                self.publish();
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
                    Some(_) => {}
                    None => return PauseEnd::Killed,
                },
            }
        }
    }

    /// Hook `logs`: the task's FIFOs and their collectors (blocking work, off the runtime).
    async fn prepare_logs(&self) -> std::io::Result<()> {
        let rotation =
            logs_hook::RotationConfig::from_log_config(self.config.task.log_config.as_ref());
        let alloc_dir = self.config.alloc_dir.clone();
        let task = self.config.task.name.clone();
        let task_files = Arc::clone(&self.config.task_files);
        tokio::task::spawn_blocking(move || {
            logs_hook::prepare(&alloc_dir, &task, rotation, &task_files.log_collector)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Runs the prestart hooks and starts the task with its driver.
    async fn start(&mut self) -> Result<(Driver, TaskHandle), RunOutcome> {
        tracing::debug!(hooks = ?PRESTART_HOOKS, "running prestart hooks");
        self.emit(events::task_setup());
        self.publish();
        let alloc_dir = self.config.alloc_dir.clone();
        let task = self.config.task.clone();
        // Hook: task_dir.
        let task_dir = match task_dir_hook::run(&alloc_dir, &task.name) {
            Ok(task_dir) => task_dir,
            Err(err) => return Err(self.setup_failed(&err)),
        };
        // Hook: logs.
        if let Err(err) = self.prepare_logs().await {
            return Err(self.setup_failed(&format!("failed to set up log collection: {err}")));
        }
        // Hook: artifacts (once per runner; a restart reuses what was fetched).
        if !self.artifacts_done && !task.artifacts.is_empty() {
            self.emit(events::new(
                TaskEvent::DOWNLOADING_ARTIFACTS,
                "Client is downloading artifacts",
            ));
            self.publish();
            if let Err(err) = artifact_hook::run(
                &task_dir,
                &task.artifacts,
                &self.config.task_files.artifact_file_allowlist,
            )
            .await
            {
                let mut event = events::new(TaskEvent::FAILED_ARTIFACT_DOWNLOAD, err.clone());
                event.message = err;
                self.emit(event);
                return Err(RunOutcome::StartFailed { recoverable: true });
            }
            self.artifacts_done = true;
        }
        let driver = match self.config.driver_host.driver(&task.driver).await {
            Ok(driver) => driver,
            Err(err) => {
                self.emit(events::driver_failure(&format!(
                    "failed to load driver {:?}: {err}",
                    task.driver
                )));
                return Err(RunOutcome::StartFailed { recoverable: false });
            }
        };
        // Hook: env.
        let paths = env_hook::TaskPaths::for_driver(
            alloc_dir.root(),
            &task_dir,
            driver.info().capabilities.fs_isolation,
        );
        let mut env = env_hook::build_env(&self.config.alloc, &task, &self.config.facts, &paths);
        // Hook: template.
        match template_hook::run(&task_dir, &task.templates, &env) {
            Ok(extra_env) => env.extend(extra_env),
            Err(err) => return Err(self.setup_failed(&err)),
        }
        let config = env_hook::interpolate_config(
            &serde_json::Value::Object(task.config.clone()),
            &env,
            &self.config.facts,
        );
        if task_dir != self.scope.task_dir {
            return Err(self.setup_failed(&format!(
                "task directory {} is not the task's own {}",
                task_dir.display(),
                self.scope.task_dir.display()
            )));
        }
        let task_config = self.task_config(config, env);
        match driver.start_task(&self.scope, &task_config).await {
            Ok(handle) => {
                self.set_running(Some((driver.clone(), handle.clone())));
                self.state.state = TaskStateValue::Running;
                if self.state.started_at.is_none() {
                    self.state.started_at = Some(events::now_rfc3339());
                }
                self.emit(events::started());
                self.publish();
                Ok((driver, handle))
            }
            Err(err) => {
                let recoverable =
                    !matches!(err.driver_error(), Some(DriverError::InvalidConfig(_)));
                self.emit(events::driver_failure(&err.to_string()));
                Err(RunOutcome::StartFailed { recoverable })
            }
        }
    }

    fn setup_failed(&mut self, error: &str) -> RunOutcome {
        tracing::error!(error, "prestart failed");
        self.emit(events::setup_failure(error));
        RunOutcome::StartFailed { recoverable: true }
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
                        Some(TaskCommand::Restart) => (Some(events::restart_signaled()), WaitEnd::Restart),
                        Some(TaskCommand::Signal { signal }) => {
                            self.emit(events::signaling(&signal));
                            self.publish();
                            if let Err(err) = driver.signal_task(&self.scope, handle, &signal).await {
                                tracing::warn!(error = %err, "failed to signal task");
                            }
                            continue;
                        }
                        Some(TaskCommand::Start) => continue,
                        Some(TaskCommand::Detach) => {
                            exit.abort();
                            return WaitEnd::Detached;
                        }
                    };
                    let stopping_alloc = reason.is_none() && matches!(end, WaitEnd::Killed);
                    if let Some(reason) = reason {
                        self.emit(reason);
                    }
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
                self.mark_dead(false);
                false
            }
            RestartDecision::NotRestarting { reason } => {
                self.emit(events::not_restarting(&reason));
                self.mark_dead(true);
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
                        self.mark_dead(false);
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
