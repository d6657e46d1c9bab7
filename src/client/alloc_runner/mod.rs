//! The alloc runner: one allocation on this node, its directory and one task runner per task,
//! started in lifecycle order (Nomad: `client/allocrunner/alloc_runner.go` and
//! `task_hook_coordinator.go`).
//!
//! ```text
//!  prestart (run to completion) ─► prestart sidecars + main tasks ─► poststart (once main runs)
//!                                                  │
//!             all main tasks dead ─► kill sidecars ┴─► everything else dead ─► poststop ─► done
//!  a task failed (after its restarts) / the leader died / desired stop ─► kill the others
//! ```
//!
//! The runner is a level-triggered loop: on every task state change or server update it looks at
//! all task states and opens start gates or sends kills it has not sent yet ([`AllocRunner::step`]),
//! then reports the derived client status if it changed.
//!
//! **Invariant:** each gate is opened once and each kill sent once per task.
//!
//! An allocation placed in a deployment also has its health decided here (`health.rs`) and
//! reported with its status, once. Its native services are registered and checked by the
//! service hook (`services.rs`, `checks.rs`), which the loop steps with the task states and
//! whose checks feed health.

pub(crate) mod alloc_dir;
pub mod checks;
pub mod grpc_health;
pub mod health;
pub mod services;
pub(crate) mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc, watch};

use crate::client::server_link::AllocUpdate;
use crate::client::state::{StateDb, TaskRunnerState};
use crate::client::task_runner::env_hook::NodeFacts;
use crate::client::task_runner::{self, TaskCommand, TaskRunnerConfig, TaskRunnerHandle, events};
use crate::driver_host::DriverHost;
use crate::structs::{
    AllocClientStatus, AllocDeploymentStatus, AllocDesiredStatus, Allocation, JobType, NodeId,
    RestartPolicy, TaskLifecycle, TaskState, TaskStateValue, strategy_of,
};
use alloc_dir::AllocDir;
use checks::CheckResults;
use health::{AllocHealth, HealthTracker, Verdict};
use services::{ServiceHook, ServiceHookConfig, ServiceSync};

/// Where a task sits in the group's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prestart,
    PrestartSidecar,
    Main,
    Poststart,
    PoststartSidecar,
    Poststop,
}

fn phase_of(lifecycle: Option<&TaskLifecycle>) -> Phase {
    match lifecycle {
        None => Phase::Main,
        Some(lifecycle) => match (lifecycle.hook.as_str(), lifecycle.sidecar) {
            (TaskLifecycle::PRESTART, false) => Phase::Prestart,
            (TaskLifecycle::PRESTART, true) => Phase::PrestartSidecar,
            (TaskLifecycle::POSTSTART, false) => Phase::Poststart,
            (TaskLifecycle::POSTSTART, true) => Phase::PoststartSidecar,
            (TaskLifecycle::POSTSTOP, _) => Phase::Poststop,
            _ => Phase::Main,
        },
    }
}

/// Everything an alloc runner needs.
pub struct AllocRunnerConfig {
    pub alloc: Arc<Allocation>,
    /// Where allocation directories live (`<data_dir>/alloc` by default).
    pub alloc_root: std::path::PathBuf,
    /// The agent's `max_kill_timeout`: no task waits longer between its kill signal and SIGKILL.
    pub max_kill_timeout: std::time::Duration,
    /// What the host may do with files for tasks (artifact sources, log collectors).
    pub task_files: Arc<alloc_dir::TaskFilesConfig>,
    pub node_id: NodeId,
    pub driver_host: DriverHost,
    pub facts: Arc<NodeFacts>,
    pub state_db: StateDb,
    /// Task states read back at start-up; empty for a new allocation.
    pub restored_tasks: BTreeMap<String, TaskRunnerState>,
    pub updates: mpsc::UnboundedSender<AllocUpdate>,
    /// Where the service hook sends registrations for the servers.
    pub services: mpsc::UnboundedSender<ServiceSync>,
    /// The client's link to the servers (templates read services through it).
    pub link: Arc<dyn crate::client::ServerLink>,
}

enum AllocCommand {
    Update(Arc<Allocation>),
    Stop,
    Detach,
}

/// The client's and the API's view of an alloc runner. Cheap to clone.
#[derive(Clone)]
pub struct AllocRunnerHandle {
    alloc: Arc<Mutex<Arc<Allocation>>>,
    alloc_dir: AllocDir,
    tasks: Arc<BTreeMap<String, TaskRunnerHandle>>,
    commands: mpsc::UnboundedSender<AllocCommand>,
    done: watch::Receiver<bool>,
    health: AllocHealth,
    check_results: Arc<Mutex<CheckResults>>,
}

impl std::fmt::Debug for AllocRunnerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllocRunnerHandle")
            .field("alloc_dir", &self.alloc_dir)
            .finish_non_exhaustive()
    }
}

impl AllocRunnerHandle {
    pub fn alloc(&self) -> Arc<Allocation> {
        Arc::clone(
            &self
                .alloc
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub fn alloc_dir(&self) -> &AllocDir {
        &self.alloc_dir
    }

    pub fn tasks(&self) -> &BTreeMap<String, TaskRunnerHandle> {
        &self.tasks
    }

    /// The allocation's checks verdict, the input health checks feed (see `health.rs`).
    pub fn health(&self) -> &AllocHealth {
        &self.health
    }

    /// The latest result of each of the allocation's service checks, by check ID.
    pub fn check_results(&self) -> CheckResults {
        self.check_results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn task_states(&self) -> BTreeMap<String, TaskState> {
        self.tasks
            .iter()
            .map(|(name, task)| (name.clone(), task.state()))
            .collect()
    }

    /// Hands the runner a newer version of the allocation from the servers. Each task runner
    /// is handed it first, in order with any command sent to it after this call returns (a
    /// restart asked after an update starts the updated task); it walks its update hooks.
    pub fn update(&self, alloc: Arc<Allocation>) {
        for task in self.tasks.values() {
            task.send(TaskCommand::Update(Arc::clone(&alloc)));
        }
        *self
            .alloc
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::clone(&alloc);
        let _ = self.commands.send(AllocCommand::Update(alloc));
    }

    /// Kills every task (poststop tasks then run).
    pub fn stop(&self) {
        let _ = self.commands.send(AllocCommand::Stop);
    }

    /// Stops supervising without touching the tasks (agent shutdown): they keep running and the
    /// next agent on this data dir recovers them.
    pub fn detach(&self) {
        let _ = self.commands.send(AllocCommand::Detach);
    }

    /// True once every task is dead and the runner has finished.
    pub fn is_done(&self) -> bool {
        *self.done.borrow()
    }

    /// Waits until every task is dead.
    pub async fn wait_done(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|done| *done).await;
    }
}

/// Starts an alloc runner for `config.alloc`.
pub fn spawn(config: AllocRunnerConfig) -> AllocRunnerHandle {
    let alloc = Arc::clone(&config.alloc);
    let alloc_dir = AllocDir::new(&config.alloc_root, alloc.id.as_str());
    if let Err(err) = config.state_db.put_alloc(&alloc) {
        tracing::error!(alloc_id = %alloc.id, error = %err, "failed to persist allocation");
    }
    let changed = Arc::new(Notify::new());
    let job = alloc.job.clone();
    let group = job
        .as_ref()
        .and_then(|job| job.task_group(&alloc.task_group))
        .cloned();
    let job_type = job.as_ref().map(|job| job.job_type).unwrap_or_default();
    let mut tasks = BTreeMap::new();
    let mut restored_tasks = config.restored_tasks;
    if let Some(group) = &group {
        for task in &group.tasks {
            // The stored job has every default applied (`JobSubmission::into_job`): a task
            // follows its own policy, else its group's. A job without either never restarts.
            let restart_policy = task
                .restart_policy
                .clone()
                .or_else(|| group.restart_policy.clone())
                .unwrap_or_else(|| {
                    tracing::warn!(alloc_id = %alloc.id, task = %task.name, "task has no restart policy; it will not be restarted");
                    RestartPolicy::default()
                });
            let handle = task_runner::spawn(TaskRunnerConfig {
                alloc: Arc::clone(&alloc),
                task: task.clone(),
                job_type,
                restart_policy,
                alloc_dir: alloc_dir.clone(),
                driver_host: config.driver_host.clone(),
                facts: Arc::clone(&config.facts),
                state_db: config.state_db.clone(),
                restored: restored_tasks.remove(&task.name),
                max_kill_timeout: config.max_kill_timeout,
                task_files: Arc::clone(&config.task_files),
                changed: Arc::clone(&changed),
                link: Some(Arc::clone(&config.link)),
            });
            tasks.insert(task.name.clone(), handle);
        }
    }
    let (done_tx, done_rx) = watch::channel(false);
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    let health = AllocHealth::default();
    let tracker = health_tracker_for(&alloc);
    let run_deadline = run_deadline(&alloc, job.as_deref(), group.as_ref());
    let check_results = Arc::new(Mutex::new(CheckResults::new()));
    let tasks = Arc::new(tasks);
    let services = ServiceHook::new(
        &alloc,
        ServiceHookConfig {
            facts: Arc::clone(&config.facts),
            alloc_dir: alloc_dir.clone(),
            tasks: Arc::clone(&tasks),
            health: health.clone(),
            sync: config.services,
            results: Arc::clone(&check_results),
        },
    );
    let handle = AllocRunnerHandle {
        alloc: Arc::new(Mutex::new(Arc::clone(&alloc))),
        alloc_dir,
        tasks,
        commands: command_tx,
        done: done_rx,
        health: health.clone(),
        check_results,
    };
    let runner = AllocRunner {
        alloc,
        missing_group: group.is_none(),
        node_id: config.node_id,
        state_db: config.state_db,
        tasks: Arc::clone(&handle.tasks),
        changed,
        commands: command_rx,
        updates: config.updates,
        done: done_tx,
        opened: BTreeSet::new(),
        killed: BTreeSet::new(),
        stopping: false,
        last_update: None,
        checks: health.subscribe(),
        health,
        tracker,
        wake: None,
        run_deadline,
        run_expired: false,
        services,
    };
    if let Err(err) = handle.alloc_dir.build() {
        tracing::error!(error = %err, "failed to build alloc dir");
    }
    let span = tracing::info_span!("alloc", alloc_id = %runner.alloc.id);
    tokio::spawn(tracing::Instrument::instrument(runner.run(), span));
    handle
}

struct AllocRunner {
    alloc: Arc<Allocation>,
    missing_group: bool,
    node_id: NodeId,
    state_db: StateDb,
    tasks: Arc<BTreeMap<String, TaskRunnerHandle>>,
    changed: Arc<Notify>,
    commands: mpsc::UnboundedReceiver<AllocCommand>,
    updates: mpsc::UnboundedSender<AllocUpdate>,
    done: watch::Sender<bool>,
    opened: BTreeSet<String>,
    killed: BTreeSet<String>,
    stopping: bool,
    last_update: Option<AllocUpdate>,
    health: AllocHealth,
    checks: watch::Receiver<Option<bool>>,
    tracker: Option<HealthTracker>,
    /// When the health tracker wants to look again.
    wake: Option<tokio::time::Instant>,
    /// A batch group's `max_run_duration`: when it runs out, and the duration.
    run_deadline: Option<(tokio::time::Instant, std::time::Duration)>,
    /// The `max_run_duration` ran out: every task still alive is killed, failing.
    run_expired: bool,
    /// Registers and checks the native services; `None` without any.
    services: Option<ServiceHook>,
}

/// When a batch or sysbatch group's `max_run_duration` runs out, counted from the allocation's
/// creation (so an agent restart does not extend it).
fn run_deadline(
    alloc: &Allocation,
    job: Option<&crate::structs::Job>,
    group: Option<&crate::structs::TaskGroup>,
) -> Option<(tokio::time::Instant, std::time::Duration)> {
    let limit = group?.max_run_duration?;
    if !job?.is_batch_like() {
        return None;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
        });
    let elapsed = std::time::Duration::from_nanos(
        u64::try_from(now.saturating_sub(alloc.create_time)).unwrap_or(0),
    );
    Some((
        tokio::time::Instant::now() + limit.saturating_sub(elapsed),
        limit,
    ))
}

/// The next probe result of the hook's checks, or never.
async fn next_check_result(services: &mut Option<ServiceHook>) -> (String, checks::ProbeResult) {
    match services {
        Some(hook) => hook.next_result().await,
        None => std::future::pending().await,
    }
}

/// The tracker of an allocation placed in a deployment, from now; outside a deployment, a
/// service allocation is judged by its group's `migrate` block, for node drains. Health is
/// decided once per deployment: an allocation the servers already know the health of (a restart
/// of the agent) is not judged again.
fn health_tracker_for(alloc: &Allocation) -> Option<HealthTracker> {
    let undecided = alloc
        .deployment_status
        .as_ref()
        .is_none_or(|status| status.healthy.is_none());
    let job = alloc.job.as_ref().filter(|_| undecided)?;
    let now = tokio::time::Instant::now();
    if alloc.deployment_id.is_some() {
        return strategy_of(job, &alloc.task_group)
            .map(|strategy| HealthTracker::new(&strategy, now));
    }
    if job.job_type != JobType::Service {
        return None;
    }
    job.task_group(&alloc.task_group)?
        .migrate
        .as_ref()
        .map(|strategy| HealthTracker::for_migration(strategy, now))
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl AllocRunner {
    async fn run(mut self) {
        if self.alloc.desired_status != AllocDesiredStatus::Run {
            self.stopping = true;
        }
        loop {
            let states: BTreeMap<String, TaskState> = self
                .tasks
                .iter()
                .map(|(name, task)| (name.clone(), task.state()))
                .collect();
            self.step(&states);
            if let Some(hook) = &mut self.services {
                let main_tasks: Vec<String> = self
                    .tasks
                    .iter()
                    .filter(|(_, task)| phase_of(task.lifecycle.as_ref()) == Phase::Main)
                    .map(|(name, _)| name.clone())
                    .collect();
                hook.step(&self.alloc, &states, &main_tasks, self.stopping);
            }
            let healthy = self.judge(&states);
            self.report(&states, healthy);
            let all_dead = states
                .values()
                .all(|state| state.state == TaskStateValue::Dead);
            if all_dead && !self.done.borrow().to_owned() {
                self.done.send_replace(true);
            }
            tokio::select! {
                () = self.changed.notified() => {}
                () = sleep_until(self.wake) => {}
                () = sleep_until(self.run_deadline.map(|(at, _)| at)), if !self.run_expired => {
                    self.run_expired = true;
                }
                _ = self.checks.changed() => {}
                (check_id, result) = next_check_result(&mut self.services) => {
                    if let Some(hook) = &mut self.services {
                        hook.on_result(&check_id, result);
                    }
                }
                command = self.commands.recv() => match command {
                    Some(AllocCommand::Update(alloc)) => {
                        if alloc.desired_status != AllocDesiredStatus::Run {
                            self.stopping = true;
                        }
                        if let Err(err) = self.state_db.put_alloc(&alloc) {
                            tracing::error!(error = %err, "failed to persist allocation");
                        }
                        // Updated in place into a new deployment: its health is judged anew.
                        if alloc.deployment_id != self.alloc.deployment_id {
                            self.tracker = health_tracker_for(&alloc);
                        }
                        // The servers marked it `unknown` while this node was disconnected:
                        // tell them again how it really is (Nomad: `allocRunner.Reconnect`).
                        if alloc.client_status == AllocClientStatus::Unknown {
                            self.last_update = None;
                        }
                        self.alloc = alloc;
                    }
                    Some(AllocCommand::Stop) => self.stopping = true,
                    Some(AllocCommand::Detach) | None => {
                        if let Some(hook) = &mut self.services {
                            hook.detach();
                        }
                        for task in self.tasks.values() {
                            task.send(TaskCommand::Detach);
                        }
                        return;
                    }
                },
            }
        }
    }

    fn phase(&self, name: &str) -> Phase {
        self.tasks
            .get(name)
            .map(|task| phase_of(task.lifecycle.as_ref()))
            .unwrap_or(Phase::Main)
    }

    fn open(&mut self, name: &str) {
        if self.opened.insert(name.to_owned())
            && let Some(task) = self.tasks.get(name)
        {
            task.send(TaskCommand::Start);
        }
    }

    fn kill(&mut self, name: &str, state: &TaskState, reason: Option<crate::structs::TaskEvent>) {
        if state.state != TaskStateValue::Dead
            && self.killed.insert(name.to_owned())
            && let Some(task) = self.tasks.get(name)
        {
            task.send(TaskCommand::Kill { reason });
        }
    }

    /// Opens the gates and sends the kills the task states call for.
    fn step(&mut self, states: &BTreeMap<String, TaskState>) {
        if self.run_expired
            && let Some((_, limit)) = self.run_deadline
        {
            for (name, state) in states {
                self.kill(name, state, Some(events::max_run_duration_exceeded(limit)));
            }
        }
        let is_dead = |name: &str| {
            states
                .get(name)
                .is_some_and(|state| state.state == TaskStateValue::Dead)
        };
        let names_in = |phases: &[Phase], this: &Self| -> Vec<String> {
            states
                .keys()
                .filter(|name| phases.contains(&this.phase(name)))
                .cloned()
                .collect()
        };
        let non_poststop = names_in(
            &[
                Phase::Prestart,
                Phase::PrestartSidecar,
                Phase::Main,
                Phase::Poststart,
                Phase::PoststartSidecar,
            ],
            self,
        );
        let failed_task = states
            .iter()
            .find(|(name, state)| {
                state.state == TaskStateValue::Dead
                    && state.failed
                    && self.phase(name) != Phase::Poststop
            })
            .map(|(name, _)| name.clone());
        let dead_leader = self
            .tasks
            .iter()
            .find(|(name, task)| task.leader && is_dead(name))
            .map(|(name, _)| name.clone());
        if let Some(failed) = failed_task {
            for name in &non_poststop {
                if *name != failed {
                    self.kill(name, &states[name], Some(events::sibling_failed(&failed)));
                }
            }
        } else if let Some(leader) = dead_leader {
            for name in &non_poststop {
                if *name != leader {
                    self.kill(name, &states[name], Some(events::leader_dead()));
                }
            }
        } else if self.stopping {
            for name in &non_poststop {
                self.kill(name, &states[name], None);
            }
        } else {
            for name in names_in(&[Phase::Prestart, Phase::PrestartSidecar], self) {
                self.open(&name);
            }
            let prestart_done = names_in(&[Phase::Prestart], self)
                .iter()
                .all(|name| is_dead(name));
            if prestart_done {
                let main = names_in(&[Phase::Main], self);
                for name in &main {
                    self.open(name);
                }
                let main_started = main.iter().all(|name| {
                    states.get(name).is_some_and(|state| {
                        state.state == TaskStateValue::Dead || state.started_at.is_some()
                    })
                });
                if main_started {
                    for name in names_in(&[Phase::Poststart, Phase::PoststartSidecar], self) {
                        self.open(&name);
                    }
                }
                // Sidecars live as long as the main tasks; poststart tasks that are not
                // sidecars run to completion.
                if !main.is_empty() && main.iter().all(|name| is_dead(name)) {
                    for name in names_in(&[Phase::PrestartSidecar, Phase::PoststartSidecar], self) {
                        self.kill(&name, &states[&name], Some(events::main_tasks_dead()));
                    }
                }
            }
        }
        if non_poststop.iter().all(|name| is_dead(name)) {
            for name in names_in(&[Phase::Poststop], self) {
                self.open(&name);
            }
        }
    }

    /// The allocation's health in its deployment, once decided; arms the tracker's wake-up.
    fn judge(&mut self, states: &BTreeMap<String, TaskState>) -> Option<bool> {
        let long_running: BTreeMap<String, &TaskState> = states
            .iter()
            .filter(|(name, _)| {
                matches!(
                    self.phase(name),
                    Phase::Main | Phase::PrestartSidecar | Phase::PoststartSidecar
                )
            })
            .map(|(name, state)| (name.clone(), state))
            .collect();
        let checks_passing = self.health.checks_passing();
        let tracker = self.tracker.as_mut()?;
        if self.stopping {
            // Stopped by the servers: that says nothing about its health.
            self.wake = None;
            return tracker.decided();
        }
        match tracker.observe(tokio::time::Instant::now(), &long_running, checks_passing) {
            Verdict::Decided(healthy) => {
                self.wake = None;
                Some(healthy)
            }
            Verdict::WaitUntil(at) => {
                self.wake = Some(at);
                None
            }
            Verdict::Undecided => {
                self.wake = None;
                None
            }
        }
    }

    /// Sends the derived status to the servers if it changed.
    fn report(&mut self, states: &BTreeMap<String, TaskState>, healthy: Option<bool>) {
        let (client_status, description) = if self.missing_group {
            (
                AllocClientStatus::Failed,
                "allocation has no job or task group to run",
            )
        } else {
            status::client_status(states)
        };
        let update = AllocUpdate {
            id: self.alloc.id.clone(),
            node_id: self.node_id.clone(),
            client_status,
            client_description: description.to_owned(),
            task_states: states.clone(),
            deployment_status: healthy.map(|healthy| AllocDeploymentStatus {
                healthy: Some(healthy),
                ..AllocDeploymentStatus::default()
            }),
        };
        if self.last_update.as_ref() != Some(&update) {
            tracing::debug!(status = %client_status, "allocation status");
            let _ = self.updates.send(update.clone());
            self.last_update = Some(update);
        }
    }
}

/// Removes an allocation's directory (on a blocking thread: it may hold many files) and its
/// state once its runner is done; returns when both are gone.
pub async fn destroy(handle: &AllocRunnerHandle, state_db: &StateDb) {
    let alloc_id = handle.alloc().id.clone();
    let alloc_dir = handle.alloc_dir().clone();
    let removed = tokio::task::spawn_blocking(move || alloc_dir.destroy()).await;
    if let Err(err) = removed
        .map_err(std::io::Error::other)
        .and_then(|removed| removed)
    {
        tracing::warn!(alloc_id = %alloc_id, error = %err, "failed to remove alloc dir");
    }
    state_db.delete_alloc(alloc_id.as_str()).wait().await;
}

#[cfg(test)]
mod run_deadline_tests {
    use std::time::Duration;

    use super::run_deadline;
    use crate::structs::{Allocation, Job, JobType, TaskGroup};

    #[test]
    fn only_batch_groups_with_a_limit_get_a_deadline_counted_from_creation() {
        let group = TaskGroup {
            name: "g".to_owned(),
            max_run_duration: Some(Duration::from_secs(60)),
            ..TaskGroup::default()
        };
        let job = |job_type| Job {
            job_type,
            ..Job::default()
        };
        let now_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as i64);
        let alloc = Allocation {
            create_time: now_nanos - 45_000_000_000,
            ..Allocation::default()
        };
        let before = tokio::time::Instant::now();
        let (at, limit) = run_deadline(&alloc, Some(&job(JobType::Batch)), Some(&group))
            .expect("a batch group with a limit");
        assert_eq!(limit, Duration::from_secs(60));
        let left = at - before;
        assert!(
            // Two clocks are read (wall for creation, monotonic for the
            // deadline), so allow a little slack either side of 15 s.
            left > Duration::from_secs(13) && left < Duration::from_millis(15_500),
            "45 s of 60 are gone: {left:?}"
        );
        assert!(run_deadline(&alloc, Some(&job(JobType::Service)), Some(&group)).is_none());
        let unlimited = TaskGroup {
            max_run_duration: None,
            ..group
        };
        assert!(run_deadline(&alloc, Some(&job(JobType::Batch)), Some(&unlimited)).is_none());
    }
}
