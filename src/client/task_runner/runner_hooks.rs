//! The task runner's hook list and its walks, one per phase (Nomad:
//! `client/allocrunner/taskrunner/task_runner_hooks.go`).
//!
//! [`init_hooks`] builds the one ordered list; each walk visits the hooks of its phase in that
//! order, each inside a `task_hook` span with its name and phase, and logs its duration. The
//! prestart walk skips hooks whose persisted state says `done` (re-applying the environment they
//! gave), hands each hook the state it kept last, persists what changed, and stops at the first
//! failure with a "Task hook failed" event naming the hook. The other phases log a failure and
//! carry on, as Nomad's do.
//!
//! New capabilities join the list here: `dispatch_payload` (for a task with that block) and
//! `volumes` (for a task with `volume_mount`s) are prestart hooks before `artifacts`; a template watcher implements
//! update and shutdown on the `template` hook; `devices` (for a task given device instances)
//! follows `env`. Services and their checks are the alloc runner's
//! service hook (`alloc_runner/services.rs`), which sees every task of the allocation.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::artifact_hook::{ArtifactHook, ArtifactSettings};
use super::devices_hook::DevicesHook;
use super::dispatch_hook::DispatchHook;
use super::env_hook::EnvHook;
use super::hooks::{
    ExitedRequest, HookError, HookEvents, PoststartRequest, PrestartRequest, PrestartResponse,
    StopRequest, TaskHook, TaskRequest, UpdateRequest,
};
use super::logs_hook::LogsHook;
use super::restarts::RunOutcome;
use super::task_dir_hook::TaskDirHook;
use super::template_hook::TemplateHook;
use super::volumes_hook::VolumesHook;
use super::{StartEnd, TaskCommand, TaskRunner, TaskRunnerConfig, events};
use crate::client::state::HookState;
use crate::driver_host::{Driver, ExitResult, FsIsolation, TaskDevices, TaskHandle};
use crate::structs::{Allocation, TaskEvent};

/// The runner's hooks, in the order every phase walks them.
pub type HookList = Arc<Vec<Arc<dyn TaskHook>>>;

/// The hooks of one task, in order (Nomad's `initHooks`).
pub fn init_hooks(config: &TaskRunnerConfig) -> HookList {
    let mut hooks: Vec<Arc<dyn TaskHook>> = vec![
        Arc::new(TaskDirHook),
        Arc::new(LogsHook {
            mode: config.task_files.log_collector.clone(),
        }),
    ];
    if config.task.dispatch_payload.is_some() {
        hooks.push(Arc::new(DispatchHook));
    }
    if !config.task.volume_mounts.is_empty() {
        hooks.push(Arc::new(VolumesHook {
            facts: Arc::clone(&config.facts),
        }));
    }
    hooks.push(Arc::new(ArtifactHook {
        settings: ArtifactSettings {
            file_allowlist: config.task_files.artifact_file_allowlist.clone(),
            limits: config.task_files.artifact_limits.clone(),
        },
        facts: Arc::clone(&config.facts),
    }));
    hooks.push(Arc::new(EnvHook {
        facts: Arc::clone(&config.facts),
    }));
    let has_devices = config
        .alloc
        .allocated_resources
        .tasks
        .get(&config.task.name)
        .is_some_and(|resources| !resources.devices.is_empty());
    if has_devices {
        hooks.push(Arc::new(DevicesHook {
            driver_host: config.driver_host.clone(),
        }));
    }
    if !config.task.templates.is_empty() {
        hooks.push(Arc::new(TemplateHook {
            link: config.link.clone(),
            facts: Arc::clone(&config.facts),
        }));
    }
    Arc::new(hooks)
}

/// The names of `hooks`, in order.
pub fn hook_names(hooks: &[Arc<dyn TaskHook>]) -> Vec<&'static str> {
    hooks.iter().map(|hook| hook.name()).collect()
}

fn hook_span(name: &'static str, phase: &'static str) -> tracing::Span {
    tracing::info_span!("task_hook", hook = name, phase)
}

impl TaskRunner {
    /// Drives a hook's future, recording the events it sends while it runs.
    async fn drive<T>(
        &mut self,
        future: impl Future<Output = T>,
        events: &mut mpsc::UnboundedReceiver<TaskEvent>,
    ) -> T {
        tokio::pin!(future);
        let out = loop {
            tokio::select! {
                biased;
                Some(event) = events.recv() => {
                    self.emit(event);
                    self.publish();
                }
                out = &mut future => break out,
            }
        };
        let mut late = false;
        while let Ok(event) = events.try_recv() {
            self.emit(event);
            late = true;
        }
        if late {
            self.publish();
        }
        out
    }

    /// Drives a prestart hook's future like [`TaskRunner::drive`], but a kill or the agent's
    /// shutdown cancels it (Nomad's kill and shutdown contexts: a hook may wait long, e.g. for
    /// a download or for data a template needs). An update arriving meanwhile is kept in
    /// `deferred` for the end of the walk; restarts and signals are moot before the task runs.
    async fn drive_cancellable<T>(
        &mut self,
        future: impl Future<Output = T>,
        events: &mut mpsc::UnboundedReceiver<TaskEvent>,
        deferred: &mut Option<Arc<Allocation>>,
    ) -> Result<T, StartEnd> {
        tokio::pin!(future);
        let out = loop {
            tokio::select! {
                biased;
                Some(event) = events.recv() => {
                    self.emit(event);
                    self.publish();
                }
                command = self.commands.recv() => match command {
                    Some(TaskCommand::Kill { reason }) => {
                        break Err(StartEnd::Killed(reason.map(Box::new)));
                    }
                    None => break Err(StartEnd::Killed(None)),
                    Some(TaskCommand::Detach) => break Err(StartEnd::Detached),
                    Some(TaskCommand::Update(alloc)) => *deferred = Some(alloc),
                    Some(TaskCommand::Event(event)) => {
                        self.emit(event);
                        self.publish();
                    }
                    Some(TaskCommand::Start | TaskCommand::Restart { .. } | TaskCommand::Signal { .. }) => {}
                },
                out = &mut future => break Ok(out),
            }
        };
        let mut late = false;
        while let Ok(event) = events.try_recv() {
            self.emit(event);
            late = true;
        }
        if late {
            self.publish();
        }
        out
    }

    /// Walks the prestart hooks; the task's environment on success. `recovering`: the task is
    /// already running (recovered after an agent restart); the walk is then not cancelled by
    /// commands, which wait for the running task's own handling.
    pub(super) async fn run_prestart(
        &mut self,
        fs_isolation: FsIsolation,
        recovering: bool,
    ) -> Result<BTreeMap<String, String>, StartEnd> {
        let mut deferred = None;
        let walked = self
            .walk_prestart(fs_isolation, recovering, &mut deferred)
            .await;
        if let Some(alloc) = deferred {
            self.run_update(alloc).await;
        }
        walked
    }

    async fn walk_prestart(
        &mut self,
        fs_isolation: FsIsolation,
        recovering: bool,
        deferred: &mut Option<Arc<Allocation>>,
    ) -> Result<BTreeMap<String, String>, StartEnd> {
        let hooks = Arc::clone(&self.hooks);
        let alloc = Arc::clone(&self.config.alloc);
        let task = self.config.task.clone();
        let alloc_dir = self.config.alloc_dir.clone();
        let task_dir = self.scope.task_dir.clone();
        let mut env = BTreeMap::new();
        self.devices = TaskDevices::default();
        self.volumes.clear();
        for hook in hooks.iter() {
            let Some(prestart) = hook.as_prestart() else {
                continue;
            };
            let name = hook.name();
            let previous = self.hook_states.get(name).cloned();
            if let Some(previous) = previous.as_ref().filter(|state| state.prestart_done) {
                tracing::debug!(hook = name, "skipping done prestart hook");
                env.extend(previous.env.clone());
                continue;
            }
            let (sender, mut receiver) = HookEvents::channel();
            let mut resp = PrestartResponse::default();
            let started = Instant::now();
            let result = {
                let req = PrestartRequest {
                    alloc: &alloc,
                    task: &task,
                    alloc_dir: &alloc_dir,
                    task_dir: &task_dir,
                    fs_isolation,
                    env: &env,
                    previous_state: previous.as_ref().and_then(|state| state.data.as_ref()),
                    recovering,
                    events: &sender,
                };
                let future = prestart
                    .prestart(&req, &mut resp)
                    .instrument(hook_span(name, "prestart"));
                if recovering {
                    self.drive(future, &mut receiver).await
                } else {
                    self.drive_cancellable(future, &mut receiver, deferred)
                        .await?
                }
            };
            tracing::debug!(hook = name, phase = "prestart", elapsed = ?started.elapsed(), "finished hook");
            if let Err(err) = result {
                // What the hook kept before it failed (e.g. artifacts already fetched) is kept.
                if let Some(data) = resp.state.take() {
                    self.hook_states.entry(name.to_owned()).or_default().data = Some(data);
                }
                return Err(StartEnd::Failed(self.hook_failed(name, &err)));
            }
            let state = HookState {
                prestart_done: resp.done,
                env: resp.env.clone(),
                data: resp.state.take(),
            };
            if previous.as_ref() != Some(&state) {
                self.hook_states.insert(name.to_owned(), state);
                self.publish();
            }
            env.extend(resp.env);
            self.devices.mounts.extend(resp.devices.mounts);
            self.devices.nodes.extend(resp.devices.nodes);
            self.devices.nvidia_gpus.extend(resp.devices.nvidia_gpus);
            self.volumes.extend(resp.volumes);
        }
        Ok(env)
    }

    /// Records a prestart hook's failure; the start fails (recoverably unless the hook says
    /// otherwise).
    fn hook_failed(&mut self, name: &'static str, err: &HookError) -> RunOutcome {
        tracing::error!(hook = name, error = %err, "prestart hook failed");
        let event = err
            .event()
            .cloned()
            .unwrap_or_else(|| events::hook_failed(name, &err.to_string()));
        self.emit(event);
        self.publish();
        RunOutcome::StartFailed {
            recoverable: err.recoverable(),
        }
    }

    /// Walks the poststart hooks once the task runs.
    pub(super) async fn run_poststart(&mut self, driver: &Driver, handle: &TaskHandle) {
        let hooks = Arc::clone(&self.hooks);
        let alloc = Arc::clone(&self.config.alloc);
        let task = self.config.task.clone();
        let env = self.env.clone();
        let scope = Arc::clone(&self.scope);
        for hook in hooks.iter() {
            let Some(poststart) = hook.as_poststart() else {
                continue;
            };
            let (sender, mut receiver) = HookEvents::channel();
            let req = PoststartRequest {
                alloc: &alloc,
                task: &task,
                env: &env,
                driver,
                handle,
                scope: &scope,
                events: &sender,
            };
            let future = poststart.poststart(&req);
            self.walk_one(hook.name(), "poststart", future, &mut receiver)
                .await;
        }
    }

    /// Walks the pre-kill hooks, before a kill or a restart.
    pub(super) async fn run_pre_kill(&mut self) {
        let hooks = Arc::clone(&self.hooks);
        let alloc = Arc::clone(&self.config.alloc);
        let task = self.config.task.clone();
        for hook in hooks.iter() {
            let Some(pre_kill) = hook.as_pre_kill() else {
                continue;
            };
            let (sender, mut receiver) = HookEvents::channel();
            let req = TaskRequest {
                alloc: &alloc,
                task: &task,
                events: &sender,
            };
            let future = pre_kill.pre_kill(&req);
            self.walk_one(hook.name(), "pre_kill", future, &mut receiver)
                .await;
        }
    }

    /// Walks the exited hooks after the task exits.
    pub(super) async fn run_exited(&mut self, exit: Option<&ExitResult>) {
        let hooks = Arc::clone(&self.hooks);
        let alloc = Arc::clone(&self.config.alloc);
        let task = self.config.task.clone();
        for hook in hooks.iter() {
            let Some(exited) = hook.as_exited() else {
                continue;
            };
            let (sender, mut receiver) = HookEvents::channel();
            let req = ExitedRequest {
                alloc: &alloc,
                task: &task,
                exit,
                events: &sender,
            };
            let future = exited.exited(&req);
            self.walk_one(hook.name(), "exited", future, &mut receiver)
                .await;
        }
    }

    /// Walks the stop hooks once the task is dead for good.
    pub(super) async fn run_stop(&mut self) {
        let hooks = Arc::clone(&self.hooks);
        let alloc = Arc::clone(&self.config.alloc);
        let task = self.config.task.clone();
        let alloc_dir = self.config.alloc_dir.clone();
        for hook in hooks.iter() {
            let Some(stop) = hook.as_stop() else {
                continue;
            };
            let existing = self
                .hook_states
                .get(hook.name())
                .and_then(|state| state.data.clone());
            let (sender, mut receiver) = HookEvents::channel();
            let req = StopRequest {
                alloc: &alloc,
                task: &task,
                alloc_dir: &alloc_dir,
                existing_state: existing.as_ref(),
                events: &sender,
            };
            let future = stop.stop(&req);
            self.walk_one(hook.name(), "stop", future, &mut receiver)
                .await;
        }
    }

    /// Walks the shutdown hooks when the agent leaves the task running.
    pub(super) async fn run_shutdown(&mut self) {
        let hooks = Arc::clone(&self.hooks);
        let alloc = Arc::clone(&self.config.alloc);
        let task = self.config.task.clone();
        for hook in hooks.iter() {
            let Some(shutdown) = hook.as_shutdown() else {
                continue;
            };
            let (sender, mut receiver) = HookEvents::channel();
            let req = TaskRequest {
                alloc: &alloc,
                task: &task,
                events: &sender,
            };
            let future = shutdown.shutdown(&req);
            self.walk_one(hook.name(), "shutdown", future, &mut receiver)
                .await;
        }
    }

    /// Takes a newer allocation from the servers (Nomad's `TaskRunner.Update`) and walks the
    /// update hooks. An update whose group lacks this task changes nothing here: the alloc
    /// runner stops what the servers no longer want.
    pub(super) async fn run_update(&mut self, alloc: Arc<Allocation>) {
        let task = alloc
            .job
            .as_ref()
            .and_then(|job| job.task_group(&alloc.task_group))
            .and_then(|group| {
                group
                    .tasks
                    .iter()
                    .find(|task| task.name == self.config.task.name)
            })
            .cloned();
        let Some(task) = task else {
            tracing::warn!("allocation update is missing the task; ignored");
            return;
        };
        self.config.alloc = Arc::clone(&alloc);
        self.config.task = task.clone();
        let hooks = Arc::clone(&self.hooks);
        let env = self.env.clone();
        for hook in hooks.iter() {
            let Some(update) = hook.as_update() else {
                continue;
            };
            let (sender, mut receiver) = HookEvents::channel();
            let req = UpdateRequest {
                alloc: &alloc,
                task: &task,
                env: &env,
                events: &sender,
            };
            let future = update.update(&req);
            self.walk_one(hook.name(), "update", future, &mut receiver)
                .await;
        }
    }

    /// Runs one hook of a phase whose failures are logged, not fatal.
    async fn walk_one(
        &mut self,
        name: &'static str,
        phase: &'static str,
        future: impl Future<Output = Result<(), HookError>>,
        receiver: &mut mpsc::UnboundedReceiver<TaskEvent>,
    ) {
        let started = Instant::now();
        let result = self
            .drive(future.instrument(hook_span(name, phase)), receiver)
            .await;
        tracing::debug!(hook = name, phase, elapsed = ?started.elapsed(), "finished hook");
        if let Err(err) = result {
            tracing::warn!(hook = name, phase, error = %err, "task hook failed");
        }
    }
}
