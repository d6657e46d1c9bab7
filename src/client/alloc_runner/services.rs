//! The alloc runner's service hook: registers the allocation's native services (`provider =
//! "nomad"`, group and task `service` blocks) with the servers while it runs, runs their checks,
//! and feeds the checks' verdict to allocation health (Nomad: `client/allocrunner/
//! group_service_hook.go`, `taskrunner/service_hook.go` and `checks_hook.go`, in one hook).
//!
//! ```text
//!  every main task started, not stopping ─► register each service instance, start its checks
//!  check result ─► CheckTracker ─► status changed? re-register with the checks' statuses
//!                               ─► AllocHealth::set_checks(every health check succeeds)
//!                               ─► check_restart limit reached? restart the task, say why;
//!                                  the restart counts against the group's restart policy
//!  stopping, or every main task dead ─► stop the checks, deregister
//!  agent shutdown ─► stop the checks only (the next agent registers the same IDs again)
//! ```
//!
//! The alloc runner drives it: [`ServiceHook::step`] on every state change (level-triggered,
//! idempotent), [`ServiceHook::on_result`] for each probe result. Registrations leave for the
//! servers through the client's service sync loop, which retries; the servers also drop an
//! allocation's registrations when it turns terminal and a node's when the node goes down.
//! A task restart does not deregister (the instance comes back on the same address); it starts
//! `check_restart`'s grace again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::alloc_dir::AllocDir;
use super::checks::{CheckQueryResult, CheckResults, CheckTracker, ProbeResult, Thresholds};
use super::health::AllocHealth;
use crate::client::task_runner::env_hook::{self, NodeFacts, TaskPaths, ports_of};
use crate::client::task_runner::{TaskCommand, TaskRunnerHandle, events};
use crate::driver_host::FsIsolation;
use crate::structs::{
    Allocation, CheckStatus, Service, ServiceCheck, ServiceRegistration, TaskEvent, TaskState,
    TaskStateValue,
};

/// Registrations and deregistrations on their way to the servers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceSync {
    pub upserts: Vec<ServiceRegistration>,
    pub deletes: Vec<String>,
}

/// Everything the hook needs from its alloc runner.
pub struct ServiceHookConfig {
    pub facts: Arc<NodeFacts>,
    pub alloc_dir: AllocDir,
    pub tasks: Arc<BTreeMap<String, TaskRunnerHandle>>,
    pub health: AllocHealth,
    pub sync: mpsc::UnboundedSender<ServiceSync>,
    pub results: Arc<Mutex<CheckResults>>,
}

/// One check of one service instance, as the hook runs it.
#[derive(Clone, Debug, PartialEq)]
struct CheckSpec {
    id: String,
    registration_id: String,
    group: String,
    /// The task a task service belongs to, or a group check's `task`.
    task: Option<String>,
    service: String,
    check: ServiceCheck,
    target: Target,
    /// False for `on_update = "ignore"` (Nomad's readiness checks).
    for_health: bool,
    thresholds: Thresholds,
}

/// Where a check probes.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    Http(String),
    Tcp(String),
    /// The health RPC at `address` (`host:port`) for `service`.
    Grpc {
        address: String,
        service: String,
    },
    Script(Vec<String>),
    /// A check caravan cannot run, and why.
    Refused(String),
}

struct RunningCheck {
    spec: CheckSpec,
    tracker: CheckTracker,
    prober: tokio::task::JoinHandle<()>,
}

/// The hook; `None` of it exists for an allocation without native services.
pub struct ServiceHook {
    config: ServiceHookConfig,
    /// The registrations the servers were last sent, by ID.
    registered: BTreeMap<String, ServiceRegistration>,
    checks: BTreeMap<String, RunningCheck>,
    results_tx: mpsc::UnboundedSender<(String, ProbeResult)>,
    results_rx: mpsc::UnboundedReceiver<(String, ProbeResult)>,
    /// Each task's `StartedAt` last seen, to notice restarts.
    starts: BTreeMap<String, Option<String>>,
    /// The allocation version (`AllocModifyIndex`, job modify index) registered for, so a step
    /// with nothing new does not rebuild the registrations.
    registered_for: Option<(u64, u64)>,
    http: reqwest::Client,
}

/// The native services of `alloc`'s group and tasks: (owner, task, service).
fn native_services(alloc: &Allocation) -> Vec<(String, Option<String>, &Service)> {
    let Some(group) = alloc
        .job
        .as_ref()
        .and_then(|job| job.task_group(&alloc.task_group))
    else {
        return Vec::new();
    };
    let is_native = |service: &&Service| matches!(service.provider.as_str(), "" | "nomad");
    let mut services: Vec<(String, Option<String>, &Service)> = group
        .services
        .iter()
        .filter(is_native)
        .map(|service| (format!("group-{}", group.name), None, service))
        .collect();
    for task in &group.tasks {
        services.extend(
            task.services
                .iter()
                .filter(is_native)
                .map(|service| (task.name.clone(), Some(task.name.clone()), service)),
        );
    }
    services
}

/// True when `alloc` has checks that gate its health.
pub fn has_health_checks(alloc: &Allocation) -> bool {
    native_services(alloc).iter().any(|(_, _, service)| {
        service
            .checks
            .iter()
            .any(|check| on_update_of(service, check) != "ignore")
    })
}

fn on_update_of<'a>(service: &'a Service, check: &'a ServiceCheck) -> &'a str {
    if check.on_update.is_empty() {
        &service.on_update
    } else {
        &check.on_update
    }
}

impl ServiceHook {
    /// A hook for `alloc`, or `None` when it has no native service.
    pub fn new(alloc: &Allocation, config: ServiceHookConfig) -> Option<ServiceHook> {
        if native_services(alloc).is_empty() {
            return None;
        }
        if has_health_checks(alloc) {
            // Not passing until they have run: health must not be decided before.
            config.health.set_checks(false);
        }
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        Some(ServiceHook {
            config,
            registered: BTreeMap::new(),
            checks: BTreeMap::new(),
            results_tx,
            results_rx,
            starts: BTreeMap::new(),
            registered_for: None,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        })
    }

    /// The next probe result; pending forever while no check runs.
    pub async fn next_result(&mut self) -> (String, ProbeResult) {
        match self.results_rx.recv().await {
            Some(result) => result,
            // The hook holds a sender itself: the channel never closes.
            None => std::future::pending().await,
        }
    }

    /// Registers or deregisters as the allocation's state calls for.
    pub fn step(
        &mut self,
        alloc: &Allocation,
        states: &BTreeMap<String, TaskState>,
        main_tasks: &[String],
        stopping: bool,
    ) {
        let started = !main_tasks.is_empty()
            && main_tasks.iter().all(|name| {
                states
                    .get(name)
                    .is_some_and(|state| state.started_at.is_some())
            });
        let all_dead = main_tasks.iter().all(|name| {
            states
                .get(name)
                .is_some_and(|state| state.state == TaskStateValue::Dead)
        });
        if stopping || all_dead || !started {
            if !self.registered.is_empty() || !self.checks.is_empty() {
                self.deregister();
            }
            return;
        }
        let now = Instant::now();
        let restarted: Vec<String> = states
            .iter()
            .filter(|(name, state)| {
                self.starts
                    .get(*name)
                    .is_some_and(|seen| seen.is_some() && *seen != state.started_at)
            })
            .map(|(name, _)| name.clone())
            .collect();
        self.starts = states
            .iter()
            .map(|(name, state)| (name.clone(), state.started_at.clone()))
            .collect();
        for running in self.checks.values_mut() {
            let affected = match &running.spec.task {
                Some(task) => restarted.contains(task),
                None => !restarted.is_empty(),
            };
            if affected {
                running.tracker.task_started(now);
            }
        }
        let version = (
            alloc.alloc_modify_index,
            alloc.job.as_ref().map_or(0, |job| job.job_modify_index),
        );
        if self.registered_for != Some(version) {
            self.register(alloc);
            self.registered_for = Some(version);
        }
    }

    /// Brings registrations and checks in line with `alloc`'s services.
    fn register(&mut self, alloc: &Allocation) {
        let (registrations, specs) = self.desired(alloc);
        let mut sync = ServiceSync::default();
        for id in self.registered.keys() {
            if !registrations.contains_key(id) {
                sync.deletes.push(id.clone());
            }
        }
        self.registered
            .retain(|id, _| registrations.contains_key(id));
        // Stop the checks that changed or went; start the new ones.
        let stale: Vec<String> = self
            .checks
            .iter()
            .filter(|(id, running)| specs.get(*id) != Some(&running.spec))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(running) = self.checks.remove(&id) {
                running.prober.abort();
            }
            self.results().remove(&id);
        }
        for (id, spec) in specs {
            if self.checks.contains_key(&id) {
                continue;
            }
            let tracker = CheckTracker::new(spec.thresholds, Instant::now());
            let prober = self.spawn_prober(&spec);
            self.record(&spec, tracker.status(), ProbeResult::default());
            self.checks.insert(
                id,
                RunningCheck {
                    spec,
                    tracker,
                    prober,
                },
            );
        }
        for (id, mut registration) in registrations {
            registration.checks = self.statuses_of(&id);
            if self
                .registered
                .get(&id)
                .is_none_or(|sent| *sent != registration)
            {
                sync.upserts.push(registration.clone());
                self.registered.insert(id, registration);
            }
        }
        self.send(sync);
        self.update_health();
    }

    /// Stops every check and removes every registration (the allocation stops).
    fn deregister(&mut self) {
        for (_, running) in std::mem::take(&mut self.checks) {
            running.prober.abort();
        }
        self.registered_for = None;
        let deletes = std::mem::take(&mut self.registered).into_keys().collect();
        self.send(ServiceSync {
            upserts: Vec::new(),
            deletes,
        });
    }

    /// Stops the checks and leaves the registrations to the next agent (shutdown).
    pub fn detach(&mut self) {
        for (_, running) in std::mem::take(&mut self.checks) {
            running.prober.abort();
        }
    }

    /// Takes one probe result.
    pub fn on_result(&mut self, id: &str, result: ProbeResult) {
        let Some(running) = self.checks.get_mut(id) else {
            return;
        };
        let before = running.tracker.status();
        let observed = running.tracker.observe(Instant::now(), result.success);
        let spec = running.spec.clone();
        if observed.status != before {
            tracing::info!(check = %spec.check.name, service = %spec.service, status = %observed.status, "check status changed");
        }
        self.record(&spec, observed.status, result);
        if observed.status != before
            && let Some(registration) = self.registered.get(&spec.registration_id)
        {
            let mut registration = registration.clone();
            registration.checks = self.statuses_of(&spec.registration_id);
            self.registered
                .insert(registration.id.clone(), registration.clone());
            self.send(ServiceSync {
                upserts: vec![registration],
                deletes: Vec::new(),
            });
        }
        self.update_health();
        if observed.restart {
            self.restart_for(&spec);
        }
    }

    fn restart_for(&self, spec: &CheckSpec) {
        let reason = format!("healthcheck: check {:?} unhealthy", spec.check.name);
        let targets: Vec<&TaskRunnerHandle> = match &spec.task {
            Some(task) => self.config.tasks.get(task).into_iter().collect(),
            None => self
                .config
                .tasks
                .values()
                .filter(|task| task.lifecycle.is_none())
                .collect(),
        };
        for task in targets {
            tracing::info!(task = %task.name, reason, "restarting task for its check");
            let mut event = events::new(TaskEvent::RESTART_SIGNAL, reason.clone());
            event.restart_reason = reason.clone();
            task.send(TaskCommand::Restart {
                reason: Some(event),
                failure: true,
            });
        }
    }

    fn statuses_of(&self, registration_id: &str) -> BTreeMap<String, CheckStatus> {
        self.checks
            .values()
            .filter(|running| running.spec.registration_id == registration_id)
            .map(|running| (running.spec.check.name.clone(), running.tracker.status()))
            .collect()
    }

    fn update_health(&self) {
        let health_checks: Vec<&RunningCheck> = self
            .checks
            .values()
            .filter(|running| running.spec.for_health)
            .collect();
        if health_checks.is_empty() {
            return;
        }
        self.config.health.set_checks(
            health_checks
                .iter()
                .all(|running| running.tracker.status() == CheckStatus::Success),
        );
    }

    fn results(&self) -> std::sync::MutexGuard<'_, CheckResults> {
        self.config
            .results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, spec: &CheckSpec, status: CheckStatus, result: ProbeResult) {
        let entry = CheckQueryResult {
            id: spec.id.clone(),
            mode: if spec.for_health {
                "healthiness"
            } else {
                "readiness"
            }
            .to_owned(),
            status,
            status_code: result.status_code,
            output: result.output,
            timestamp: events::now_nanos() / 1_000_000_000,
            group: spec.group.clone(),
            task: spec.task.clone().unwrap_or_default(),
            service: spec.service.clone(),
            check: spec.check.name.clone(),
        };
        self.results().insert(spec.id.clone(), entry);
    }

    fn send(&self, sync: ServiceSync) {
        if sync.upserts.is_empty() && sync.deletes.is_empty() {
            return;
        }
        // The client outlives its alloc runners; a send after it is gone is moot.
        let _ = self.config.sync.send(sync);
    }

    fn spawn_prober(&self, spec: &CheckSpec) -> tokio::task::JoinHandle<()> {
        let id = spec.id.clone();
        let target = spec.target.clone();
        let check = spec.check.clone();
        let interval = if check.interval.is_zero() {
            Duration::from_secs(10)
        } else {
            check.interval
        };
        let timeout = if check.timeout.is_zero() {
            Duration::from_secs(2)
        } else {
            check.timeout
        };
        let task = spec
            .task
            .as_ref()
            .and_then(|task| self.config.tasks.get(task))
            .cloned();
        let http = self.http.clone();
        let results = self.results_tx.clone();
        tokio::spawn(async move {
            loop {
                let result = match &target {
                    Target::Http(url) => {
                        super::checks::probe_http(&http, url, &check, timeout).await
                    }
                    Target::Tcp(address) => super::checks::probe_tcp(address, timeout).await,
                    Target::Grpc { address, service } => {
                        super::grpc_health::probe(address, service, timeout).await
                    }
                    Target::Script(command) => probe_script(task.as_ref(), command, timeout).await,
                    Target::Refused(reason) => ProbeResult::failure(reason.clone()),
                };
                if results.send((id.clone(), result)).is_err() {
                    return;
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// The registrations and checks `alloc`'s services call for.
    fn desired(
        &self,
        alloc: &Allocation,
    ) -> (
        BTreeMap<String, ServiceRegistration>,
        BTreeMap<String, CheckSpec>,
    ) {
        let mut registrations = BTreeMap::new();
        let mut specs = BTreeMap::new();
        let node = &self.config.facts.node;
        let first_task = alloc
            .job
            .as_ref()
            .and_then(|job| job.task_group(&alloc.task_group))
            .and_then(|group| group.tasks.first());
        for (owner, task_name, service) in native_services(alloc) {
            let task = task_name
                .as_deref()
                .and_then(|name| {
                    alloc
                        .job
                        .as_ref()
                        .and_then(|job| job.task_group(&alloc.task_group))
                        .and_then(|group| group.tasks.iter().find(|task| task.name == name))
                })
                .or(first_task);
            let env = task
                .map(|task| {
                    let paths = TaskPaths::for_driver(
                        self.config.alloc_dir.root(),
                        &self.config.alloc_dir.task_dir(&task.name),
                        FsIsolation::None,
                    );
                    env_hook::build_env(alloc, task, &self.config.facts, &paths)
                })
                .unwrap_or_default();
            let interpolate = |text: &str| env_hook::interpolate(text, &env, &self.config.facts);
            let name = interpolate(&service.name);
            let ports = ports_of(alloc, task.map(|task| task.name.as_str()).unwrap_or(""));
            let resolve = |label: &str| -> (String, i32) {
                let label = interpolate(label);
                if let Ok(number) = label.parse::<i32>() {
                    return (default_ip(alloc), number);
                }
                match ports.iter().find(|port| port.label == label) {
                    Some(port) if !port.host_ip.is_empty() => (port.host_ip.clone(), port.value),
                    Some(port) => ("127.0.0.1".to_owned(), port.value),
                    None => (default_ip(alloc), 0),
                }
            };
            let (mut address, port) = resolve(&service.port_label);
            if !service.address.is_empty() {
                address = interpolate(&service.address);
            }
            let id = ServiceRegistration::make_id(&alloc.id, &owner, &name, &service.port_label);
            registrations.insert(
                id.clone(),
                ServiceRegistration {
                    id: id.clone(),
                    service_name: name.clone(),
                    namespace: alloc.namespace.clone(),
                    node_id: node.id.clone(),
                    datacenter: node.datacenter.clone(),
                    job_id: alloc.job_id.clone(),
                    alloc_id: alloc.id.clone(),
                    tags: service.tags.iter().map(|tag| interpolate(tag)).collect(),
                    address: address.clone(),
                    port,
                    ..ServiceRegistration::default()
                },
            );
            for check in &service.checks {
                let (check_address, check_port) = if check.port_label.is_empty() {
                    (address.clone(), port)
                } else {
                    resolve(&check.port_label)
                };
                let check_task = task_name
                    .clone()
                    .or_else(|| (!check.task_name.is_empty()).then(|| check.task_name.clone()));
                let host = if check_address.contains(':') {
                    format!("[{check_address}]")
                } else {
                    check_address.clone()
                };
                let target = match check.check_type.as_str() {
                    "http" => {
                        let protocol = if check.protocol.is_empty() {
                            "http"
                        } else {
                            check.protocol.as_str()
                        };
                        let path = interpolate(&check.path);
                        let path = if path.starts_with('/') {
                            path
                        } else {
                            format!("/{path}")
                        };
                        Target::Http(format!("{protocol}://{host}:{check_port}{path}"))
                    }
                    "tcp" => Target::Tcp(format!("{host}:{check_port}")),
                    "grpc" if check.grpc_use_tls => Target::Refused(format!(
                        "caravan runs gRPC checks without TLS only (check {:?} sets \
                         grpc_use_tls)",
                        check.name
                    )),
                    "grpc" => Target::Grpc {
                        address: format!("{host}:{check_port}"),
                        service: interpolate(&check.grpc_service),
                    },
                    "script" if check_task.is_none() => Target::Refused(format!(
                        "script check {:?} of group service {name:?} needs a task",
                        check.name
                    )),
                    "script" => {
                        let mut command = vec![interpolate(&check.command)];
                        command.extend(check.args.iter().map(|arg| interpolate(arg)));
                        Target::Script(command)
                    }
                    other => Target::Refused(format!(
                        "caravan does not run {other:?} checks (check {:?})",
                        check.name
                    )),
                };
                let check_id = format!("{owner}.{name}.{}", check.name);
                specs.insert(
                    check_id.clone(),
                    CheckSpec {
                        id: check_id,
                        registration_id: id.clone(),
                        group: alloc.task_group.clone(),
                        task: check_task,
                        service: name.clone(),
                        check: check.clone(),
                        target,
                        for_health: on_update_of(service, check) != "ignore",
                        thresholds: Thresholds::of(check, service.check_restart.as_ref()),
                    },
                );
            }
        }
        (registrations, specs)
    }
}

impl Drop for ServiceHook {
    fn drop(&mut self) {
        for running in self.checks.values() {
            running.prober.abort();
        }
    }
}

/// The allocation's address when a service names no port: its first network's IP.
fn default_ip(alloc: &Allocation) -> String {
    alloc
        .allocated_resources
        .shared
        .networks
        .first()
        .map(|network| network.ip.clone())
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| "127.0.0.1".to_owned())
}

/// A script check through the task's driver `exec`, refused with the reason when the task is not
/// running or its driver has no `exec`.
async fn probe_script(
    task: Option<&TaskRunnerHandle>,
    command: &[String],
    timeout: Duration,
) -> ProbeResult {
    let Some(task) = task else {
        return ProbeResult::failure("script check has no task to run in");
    };
    let Some((driver, handle, scope)) = task.running() else {
        return ProbeResult::failure(format!("task {:?} is not running", task.name));
    };
    if !driver.info().capabilities.exec {
        return ProbeResult::failure(format!(
            "driver {:?} of task {:?} does not support exec: script checks cannot run",
            driver.name(),
            task.name
        ));
    }
    match tokio::time::timeout(timeout, driver.exec_task(&scope, &handle, command, timeout)).await {
        Ok(Ok(result)) => {
            super::checks::script_result(result.exit_code, &result.stdout, &result.stderr)
        }
        Ok(Err(err)) => ProbeResult::failure(format!("script check failed: {err}")),
        Err(_) => ProbeResult::failure(format!(
            "script check timed out after {}",
            crate::structs::duration::format_go_duration(timeout)
        )),
    }
}
