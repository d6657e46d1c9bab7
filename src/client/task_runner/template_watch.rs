//! The template watcher: once a task runs, its templates render again when what they read
//! changes, and a destination whose content really changed gets its template's `change_mode`
//! (Nomad: `client/allocrunner/taskrunner/template/template.go`, `handleTemplateRerenders`).
//!
//! One watcher per run of a task, owned by the task runner: spawned after the task starts,
//! aborted with its pollers when the run ends (the [`Watcher`] guard), so a stopped task leaves
//! no query behind. A restart's prestart renders afresh and the next run gets a new watcher.
//!
//! - **What is watched:** each template's last render says what it read ([`Dependencies`]): one
//!   poller per service name `nomadService` read and one for `nomadServices`, each a blocking
//!   query on the servers' catalog through the client's link, with the index of its last answer.
//!   `env` and the task's metadata are static for a run; a template reading nothing else, or one
//!   with `once = true`, is never rendered again.
//! - **Quiescence:** a change starts the template's `wait` ([`Quiescence`]): it renders once
//!   `min` has passed without another change, and at the latest `max` after the first (4 × `min`
//!   when only `min` is set, as consul-template).
//! - **What is done:** a destination is written (atomically, permissions kept) only when its
//!   content changed; the templates written together give one [`Plan`]: `restart` (also any
//!   `env = true` template not `noop`) restarts the task once through the runner's command path
//!   with Nomad's "Template with change_mode restart re-rendered" event, else every distinct
//!   `change_signal` is sent through the driver's signal path ("Template re-rendered") and every
//!   `change_script` runs through the driver's `exec`; `noop` only writes. Before a restart,
//!   signal or script the watcher sleeps a random part of the largest `splay`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::TaskCommand;
use super::events;
use super::template_hook;
use crate::client::ServerLink;
use crate::driver_host::{Driver, TaskHandle, TaskScope};
use crate::structs::{
    ChangeScript, ServiceRegistration, ServiceRegistrationStub, TaskEvent, Template, WaitConfig,
};
use crate::template::{Dependencies, Inputs};

/// Nomad's default `change_script` timeout.
const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between failed queries of one poller.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a watcher needs of its task runner.
pub struct WatchConfig {
    pub task_dir: PathBuf,
    pub templates: Vec<Template>,
    pub env: BTreeMap<String, String>,
    pub namespace: String,
    pub link: Arc<dyn ServerLink>,
    /// Destination → checksum of what the prestart render wrote.
    pub checksums: BTreeMap<String, String>,
    /// The runner's own command channel (weak: the watcher does not keep the runner alive).
    pub commands: mpsc::WeakUnboundedSender<TaskCommand>,
    /// The running task, for `change_script`.
    pub driver: Driver,
    pub handle: TaskHandle,
    pub scope: TaskScope,
}

/// The running watcher; dropping it stops it and its pollers.
pub struct Watcher(tokio::task::JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts watching, unless no template may render again (all `once`).
pub fn spawn(mut config: WatchConfig) -> Option<Watcher> {
    config.templates.retain(|template| !template.once);
    if config.templates.is_empty() {
        return None;
    }
    Some(Watcher(tokio::spawn(watch(config))))
}

/// A template's `wait`: when a render is due after changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Quiescence {
    min: Duration,
    max: Option<Duration>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Quiescence {
    pub(crate) fn new(wait: Option<&WaitConfig>) -> Quiescence {
        let min = wait.and_then(|wait| wait.min).unwrap_or_default();
        let max = wait
            .and_then(|wait| wait.max)
            .or_else(|| (!min.is_zero()).then(|| min.saturating_mul(4)));
        Quiescence {
            min,
            max,
            first: None,
            last: None,
        }
    }

    /// What the template reads changed at `now`.
    pub(crate) fn changed(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the template is to render: `min` after the last change, `max` after the first at
    /// the latest; `None` with no change pending.
    pub(crate) fn due(&self) -> Option<Instant> {
        let last = self.last?;
        let quiet = last + self.min;
        Some(match (self.first, self.max) {
            (Some(first), Some(max)) => quiet.min(first + max),
            _ => quiet,
        })
    }

    /// The render happened.
    pub(crate) fn clear(&mut self) {
        self.first = None;
        self.last = None;
    }
}

/// What the templates written together ask of the task.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    pub restart: bool,
    pub signals: BTreeSet<String>,
    pub scripts: Vec<ChangeScript>,
    /// The largest `splay` of the templates that act.
    pub splay: Duration,
}

impl Plan {
    pub(crate) fn of<'a>(changed: impl IntoIterator<Item = &'a Template>) -> Plan {
        let mut plan = Plan::default();
        for template in changed {
            let acts = match template.change_mode.as_str() {
                "noop" => false,
                "signal" => {
                    let signal = if template.change_signal.is_empty() {
                        "SIGHUP"
                    } else {
                        &template.change_signal
                    };
                    plan.signals.insert(signal.to_owned());
                    true
                }
                "script" => {
                    plan.scripts.extend(template.change_script.clone());
                    true
                }
                _ => {
                    plan.restart = true;
                    true
                }
            };
            // The task's environment changes only with a new start.
            if template.envvars && acts {
                plan.restart = true;
            }
            if acts {
                plan.splay = plan.splay.max(template.splay);
            }
        }
        if plan.restart {
            plan.signals.clear();
            plan.scripts.clear();
        }
        plan
    }

    pub(crate) fn is_noop(&self) -> bool {
        !self.restart && self.signals.is_empty() && self.scripts.is_empty()
    }
}

/// A random part (`fraction` in 0..1) of `splay`.
pub(crate) fn splay_delay(splay: Duration, fraction: f64) -> Duration {
    splay.mul_f64(fraction.clamp(0.0, 1.0))
}

/// One thing a template may read from the servers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Dependency {
    Service(String),
    ServiceList,
}

/// A poller's answer.
enum Answer {
    Service(String, Vec<ServiceRegistration>),
    ServiceList(Vec<ServiceRegistrationStub>),
}

fn dependencies(read: &Dependencies) -> impl Iterator<Item = Dependency> + '_ {
    read.services
        .iter()
        .cloned()
        .map(Dependency::Service)
        .chain(read.service_list.then_some(Dependency::ServiceList))
}

/// The watcher's loop; ends when the task runner drops its [`Watcher`] or after asking for a
/// restart.
async fn watch(config: WatchConfig) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut pollers = JoinSet::new();
    let mut polled = BTreeSet::new();
    let mut inputs = Inputs {
        env: config.env.clone(),
        ..Inputs::default()
    };
    let mut checksums = config.checksums.clone();
    let count = config.templates.len();
    let mut waits: Vec<Quiescence> = config
        .templates
        .iter()
        .map(|template| Quiescence::new(template.wait.as_ref()))
        .collect();
    let mut reads = vec![Dependencies::default(); count];
    // Every template renders once first, to learn what it reads (nothing fetched yet: a template
    // reading services writes nothing until its pollers answer).
    let mut due: Vec<usize> = (0..count).collect();
    loop {
        if !due.is_empty() {
            let mut written = Vec::new();
            for &index in &due {
                let template = &config.templates[index];
                match render(&config, template, &inputs, &checksums).await {
                    Ok(rendered) => {
                        for dependency in dependencies(&rendered.dependencies) {
                            if polled.insert(dependency.clone()) {
                                pollers.spawn(poll(
                                    Arc::clone(&config.link),
                                    config.namespace.clone(),
                                    dependency,
                                    tx.clone(),
                                ));
                            }
                        }
                        if !rendered.dependencies.missing {
                            checksums.extend(rendered.checksums);
                            if !rendered.written.is_empty() {
                                written.push(template);
                            }
                        }
                        reads[index] = rendered.dependencies;
                    }
                    Err(err) => {
                        tracing::warn!(destination = %template.dest_path, error = %err, "template re-render failed");
                    }
                }
            }
            due.clear();
            if !written.is_empty() {
                tracing::info!(destinations = ?written.iter().map(|t| &t.dest_path).collect::<Vec<_>>(), "templates re-rendered");
                let plan = Plan::of(written.iter().copied());
                if act(&config, plan).await {
                    return;
                }
            }
        }
        let next = waits.iter().filter_map(Quiescence::due).min();
        tokio::select! {
            answer = rx.recv() => {
                let Some(answer) = answer else { return };
                let changed = match answer {
                    Answer::Service(name, instances) => {
                        let changed = inputs.services.get(&name) != Some(&instances);
                        inputs.services.insert(name.clone(), instances);
                        changed.then_some(Dependency::Service(name))
                    }
                    Answer::ServiceList(list) => {
                        let changed = inputs.service_list.as_ref() != Some(&list);
                        inputs.service_list = Some(list);
                        changed.then_some(Dependency::ServiceList)
                    }
                };
                if let Some(changed) = changed {
                    let now = Instant::now();
                    for (read, wait) in reads.iter().zip(&mut waits) {
                        if dependencies(read).any(|dependency| dependency == changed) {
                            wait.changed(now);
                        }
                    }
                }
            }
            () = sleep_until(next), if next.is_some() => {
                let now = Instant::now();
                for (index, wait) in waits.iter_mut().enumerate() {
                    if wait.due().is_some_and(|at| at <= now) {
                        wait.clear();
                        due.push(index);
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Renders one template with what has been fetched, writing it if its content changed.
async fn render(
    config: &WatchConfig,
    template: &Template,
    inputs: &Inputs,
    checksums: &BTreeMap<String, String>,
) -> Result<template_hook::Rendered, String> {
    let (dir, list, fed) = (
        config.task_dir.clone(),
        vec![template.clone()],
        inputs.clone(),
    );
    let previous = checksums.clone();
    tokio::task::spawn_blocking(move || template_hook::run(&dir, &list, &fed, &previous))
        .await
        .map_err(|err| err.to_string())?
}

/// Carries out `plan`; true when the task restarts (this watcher's run ends).
async fn act(config: &WatchConfig, plan: Plan) -> bool {
    if plan.is_noop() {
        return false;
    }
    let delay = splay_delay(plan.splay, rand::random::<f64>());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Some(commands) = config.commands.upgrade() else {
        return true;
    };
    if plan.restart {
        let _ = commands.send(TaskCommand::Restart {
            reason: Some(events::template_restart()),
            failure: false,
        });
        return true;
    }
    for signal in plan.signals {
        let _ = commands.send(TaskCommand::Signal {
            reason: Some(events::template_signal(&signal)),
            signal,
        });
    }
    for script in plan.scripts {
        let (event, kill) = run_script(config, &script).await;
        if kill {
            let _ = commands.send(TaskCommand::Kill {
                reason: Some(event),
            });
            return true;
        }
        let _ = commands.send(TaskCommand::Event(event));
    }
    false
}

/// Runs a `change_script` in the task through its driver's `exec`: the event to record, and
/// whether the task is to be killed (a failure with `fail_on_error`).
async fn run_script(config: &WatchConfig, script: &ChangeScript) -> (TaskEvent, bool) {
    let timeout = script
        .timeout
        .filter(|timeout| !timeout.is_zero())
        .unwrap_or(DEFAULT_SCRIPT_TIMEOUT);
    let command: Vec<String> = std::iter::once(script.command.clone())
        .chain(script.args.iter().cloned())
        .collect();
    let failure = |message: String| {
        (
            events::template_script_failed(message, script.fail_on_error),
            script.fail_on_error,
        )
    };
    if !config.driver.info().capabilities.exec {
        return failure(format!(
            "Template failed to run script {} with arguments {:?} because task driver doesn't \
             support the exec operation",
            script.command, script.args
        ));
    }
    let ran = tokio::time::timeout(
        timeout,
        config
            .driver
            .exec_task(&config.scope, &config.handle, &command, timeout),
    )
    .await;
    match ran {
        Ok(Ok(result)) if result.exit_code == 0 => (
            events::template_script_ran(&script.command, &script.args, result.exit_code),
            false,
        ),
        Ok(Ok(result)) => failure(format!(
            "Template ran script {} with arguments {:?} on change but it exited with code code: {}",
            script.command, script.args, result.exit_code
        )),
        Ok(Err(err)) => failure(format!(
            "Template failed to run script {} with arguments {:?}: {err}",
            script.command, script.args
        )),
        Err(_) => failure(format!(
            "Template failed to run script {} with arguments {:?}: timed out after {}",
            script.command,
            script.args,
            crate::structs::duration::format_go_duration(timeout)
        )),
    }
}

/// Follows one dependency with blocking queries, sending each answer; failed queries are retried
/// with a growing pause.
async fn poll(
    link: Arc<dyn ServerLink>,
    namespace: String,
    dependency: Dependency,
    answers: mpsc::UnboundedSender<Answer>,
) {
    let mut index = 0;
    let mut backoff = Duration::from_secs(1);
    loop {
        let answer = match &dependency {
            Dependency::Service(name) => link
                .read_service(&namespace, name, index)
                .await
                .map(|(instances, at)| (Answer::Service(name.clone(), instances), at)),
            Dependency::ServiceList => {
                link.list_services(&namespace, index)
                    .await
                    .map(|(lists, at)| {
                        let list = template_hook::services_of(lists, &namespace);
                        (Answer::ServiceList(list), at)
                    })
            }
        };
        match answer {
            Ok((answer, at)) => {
                backoff = Duration::from_secs(1);
                // An index that went back (a restored server) starts over; 0 would not block.
                index = at.max(1);
                if answers.send(answer).is_err() {
                    return;
                }
            }
            Err(err) => {
                tracing::warn!(?dependency, error = %err, "template query failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests;
