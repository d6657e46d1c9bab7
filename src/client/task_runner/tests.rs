//! Unit tests of the task runner's hook walks, with real raw_exec tasks and recording hooks
//! appended to the runner's own list.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::hooks::{
    ExitedRequest, HookError, HookFuture, PoststartRequest, PreKill, Prestart, PrestartRequest,
    PrestartResponse, Stop, StopRequest, TaskHook, TaskRequest, Update, UpdateRequest,
};
use super::runner_hooks::{hook_names, init_hooks};
use super::*;
use crate::client::ServerLink as _;
use crate::client::alloc_runner::alloc_dir::TaskFilesConfig;
use crate::driver_host::DriverHostConfig;
use crate::structs::{AllocId, Job, JobId, RestartMode, TaskGroup, Template};

type Log = Arc<Mutex<Vec<String>>>;

/// Records every phase it is walked in; in prestart it keeps a counter as its state.
struct Recorder {
    name: &'static str,
    log: Log,
    fail: bool,
    done: bool,
    /// Its prestart never ends by itself.
    block: bool,
}

impl Recorder {
    fn new(name: &'static str, log: &Log) -> Arc<Recorder> {
        Arc::new(Recorder {
            name,
            log: Arc::clone(log),
            fail: false,
            done: false,
            block: false,
        })
    }

    fn record(&self, entry: String) {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(entry);
    }
}

impl TaskHook for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }
    fn as_prestart(&self) -> Option<&dyn Prestart> {
        Some(self)
    }
    fn as_poststart(&self) -> Option<&dyn super::hooks::Poststart> {
        Some(self)
    }
    fn as_pre_kill(&self) -> Option<&dyn PreKill> {
        Some(self)
    }
    fn as_exited(&self) -> Option<&dyn super::hooks::Exited> {
        Some(self)
    }
    fn as_update(&self) -> Option<&dyn Update> {
        Some(self)
    }
    fn as_stop(&self) -> Option<&dyn Stop> {
        Some(self)
    }
    fn as_shutdown(&self) -> Option<&dyn super::hooks::Shutdown> {
        Some(self)
    }
}

impl Prestart for Recorder {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let previous = req.previous::<u32>();
            self.record(format!("{}:prestart:{previous:?}", self.name));
            if self.fail {
                return Err(HookError::new("boom"));
            }
            if self.block {
                std::future::pending::<()>().await;
            }
            resp.set_state(&(previous.unwrap_or(0) + 1))?;
            resp.env
                .insert(format!("HOOK_{}", self.name.to_uppercase()), "1".to_owned());
            resp.done = self.done;
            Ok(())
        })
    }
}

impl super::hooks::Poststart for Recorder {
    fn poststart<'a>(&'a self, _req: &'a PoststartRequest<'a>) -> HookFuture<'a> {
        Box::pin(async move {
            self.record(format!("{}:poststart", self.name));
            Ok(())
        })
    }
}

impl PreKill for Recorder {
    fn pre_kill<'a>(&'a self, _req: &'a TaskRequest<'a>) -> HookFuture<'a> {
        Box::pin(async move {
            self.record(format!("{}:pre_kill", self.name));
            Ok(())
        })
    }
}

impl super::hooks::Exited for Recorder {
    fn exited<'a>(&'a self, req: &'a ExitedRequest<'a>) -> HookFuture<'a> {
        Box::pin(async move {
            let code = req.exit.map(|exit| exit.exit_code);
            self.record(format!("{}:exited:{code:?}", self.name));
            Ok(())
        })
    }
}

impl Update for Recorder {
    fn update<'a>(&'a self, req: &'a UpdateRequest<'a>) -> HookFuture<'a> {
        Box::pin(async move {
            let version = req.alloc.job.as_ref().map(|job| job.version);
            self.record(format!("{}:update:{version:?}", self.name));
            Ok(())
        })
    }
}

impl Stop for Recorder {
    fn stop<'a>(&'a self, req: &'a StopRequest<'a>) -> HookFuture<'a> {
        Box::pin(async move {
            let existing = req.existing_state.cloned();
            self.record(format!("{}:stop:{existing:?}", self.name));
            Ok(())
        })
    }
}

impl super::hooks::Shutdown for Recorder {
    fn shutdown<'a>(&'a self, _req: &'a TaskRequest<'a>) -> HookFuture<'a> {
        Box::pin(async move {
            self.record(format!("{}:shutdown", self.name));
            Ok(())
        })
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    driver_host: DriverHost,
    state_db: StateDb,
}

impl Fixture {
    fn new() -> anyhow::Result<Fixture> {
        let dir = tempfile::tempdir()?;
        let driver_host = DriverHost::new(DriverHostConfig {
            cache_dir: Some(dir.path().join("cache")),
            plugins: BTreeMap::from([("raw_exec".to_owned(), json!({ "enabled": true }))]),
            ..DriverHostConfig::default()
        })?;
        let state_db = StateDb::open(&dir.path().join("client"))?;
        Ok(Fixture {
            dir,
            driver_host,
            state_db,
        })
    }

    fn config(
        &self,
        alloc: &Arc<Allocation>,
        restored: Option<TaskRunnerState>,
    ) -> TaskRunnerConfig {
        let task = alloc
            .job
            .as_ref()
            .and_then(|job| job.task_groups.first())
            .and_then(|group| group.tasks.first())
            .cloned()
            .unwrap_or_default();
        TaskRunnerConfig {
            alloc: Arc::clone(alloc),
            task,
            job_type: JobType::Service,
            restart_policy: RestartPolicy {
                attempts: 0,
                interval: Duration::from_secs(60),
                delay: Duration::from_millis(50),
                mode: RestartMode::Fail,
                render_templates: false,
            },
            alloc_dir: AllocDir::new(&self.dir.path().join("alloc"), alloc.id.as_str()),
            driver_host: self.driver_host.clone(),
            facts: Arc::new(NodeFacts::default()),
            state_db: self.state_db.clone(),
            restored,
            max_kill_timeout: Duration::from_secs(5),
            task_files: Arc::new(TaskFilesConfig::default()),
            changed: Arc::new(tokio::sync::Notify::new()),
            link: None,
        }
    }

    /// The runner's own hooks followed by `extra`.
    fn spawn(
        &self,
        alloc: &Arc<Allocation>,
        restored: Option<TaskRunnerState>,
        extra: Vec<Arc<dyn TaskHook>>,
    ) -> TaskRunnerHandle {
        let config = self.config(alloc, restored);
        let mut hooks: Vec<Arc<dyn TaskHook>> = init_hooks(&config).iter().cloned().collect();
        hooks.extend(extra);
        spawn_with_hooks(config, Arc::new(hooks))
    }

    fn persisted(&self, alloc_id: &AllocId) -> Option<TaskRunnerState> {
        self.state_db
            .load_allocs()
            .into_iter()
            .find(|persisted| persisted.alloc.id == *alloc_id)
            .and_then(|persisted| persisted.tasks.into_iter().next())
            .map(|(_, state)| state)
    }
}

fn alloc_running(script: &str) -> Arc<Allocation> {
    let task = Task {
        name: "web".to_owned(),
        driver: "raw_exec".to_owned(),
        config: json!({ "command": "/bin/sh", "args": ["-c", script] })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        kill_timeout: Some(Duration::from_secs(1)),
        ..Task::default()
    };
    let job = Job {
        id: JobId::from("example"),
        name: "example".to_owned(),
        namespace: "default".to_owned(),
        task_groups: vec![TaskGroup {
            name: "group".to_owned(),
            tasks: vec![task],
            ..TaskGroup::default()
        }],
        ..Job::default()
    };
    Arc::new(Allocation {
        id: AllocId::generate(),
        namespace: "default".to_owned(),
        name: "example.group[0]".to_owned(),
        job_id: job.id.clone(),
        job: Some(Arc::new(job)),
        task_group: "group".to_owned(),
        ..Allocation::default()
    })
}

async fn wait_for(
    handle: &TaskRunnerHandle,
    what: &str,
    check: impl Fn(&TaskState) -> bool,
) -> anyhow::Result<TaskState> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = handle.state();
        if check(&state) {
            return Ok(state);
        }
        anyhow::ensure!(Instant::now() < deadline, "task not {what}: {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_log(log: &Log, entry: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let entries = log.lock().map(|log| log.clone()).unwrap_or_default();
        if entries.iter().any(|logged| logged == entry) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "no {entry:?} in {entries:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().map(|log| log.clone()).unwrap_or_default()
}

#[test]
fn the_list_is_built_in_nomads_order() -> anyhow::Result<()> {
    let fixture = Fixture::new()?;
    let alloc = alloc_running("true");
    let mut config = fixture.config(&alloc, None);
    assert_eq!(
        hook_names(&init_hooks(&config)),
        ["task_dir", "logs", "artifacts", "env"]
    );
    config.task.templates = vec![Template::default()];
    assert_eq!(
        hook_names(&init_hooks(&config)),
        ["task_dir", "logs", "artifacts", "env", "template"]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phase_walks_the_hooks_in_list_order() -> anyhow::Result<()> {
    let fixture = Fixture::new()?;
    let log = Log::default();
    let alloc =
        alloc_running("echo \"$HOOK_A$HOOK_B$HOOK_C\" > $NOMAD_TASK_DIR/env; exec sleep 30");
    let hooks: Vec<Arc<dyn TaskHook>> = vec![
        Recorder::new("a", &log),
        Recorder::new("b", &log),
        Recorder::new("c", &log),
    ];
    let handle = fixture.spawn(&alloc, None, hooks);
    handle.send(TaskCommand::Start);
    wait_for(&handle, "running", |state| {
        state.state == TaskStateValue::Running
    })
    .await?;
    wait_log(&log, "c:poststart").await?;
    let mut updated = (*alloc).clone();
    if let Some(job) = updated.job.as_mut() {
        Arc::make_mut(job).version = 7;
    }
    handle.send(TaskCommand::Update(Arc::new(updated)));
    wait_log(&log, "c:update:Some(7)").await?;
    handle.send(TaskCommand::Kill { reason: None });
    wait_for(&handle, "dead", |state| state.state == TaskStateValue::Dead).await?;
    let phase = |phase: &str| -> Vec<String> {
        ["a", "b", "c"]
            .iter()
            .map(|name| format!("{name}:{phase}"))
            .collect()
    };
    let mut expected = phase("prestart:None");
    expected.extend(phase("poststart"));
    expected.extend(phase("update:Some(7)"));
    expected.extend(phase("pre_kill"));
    expected.extend(phase("exited:None"));
    expected.extend(phase("stop:Some(Number(1))"));
    assert_eq!(entries(&log), expected);
    // Each hook's environment reached the task.
    let task_dir = fixture.config(&alloc, None).alloc_dir.task_dir("web");
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/env"))?,
        "111\n"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_prestart_hook_stops_the_walk_and_fails_the_task() -> anyhow::Result<()> {
    let fixture = Fixture::new()?;
    let log = Log::default();
    let alloc = alloc_running("exec sleep 30");
    let hooks: Vec<Arc<dyn TaskHook>> = vec![
        Recorder::new("a", &log),
        Arc::new(Recorder {
            name: "bad",
            log: Arc::clone(&log),
            fail: true,
            done: false,
            block: false,
        }),
        Recorder::new("c", &log),
    ];
    let handle = fixture.spawn(&alloc, None, hooks);
    handle.send(TaskCommand::Start);
    let state = wait_for(&handle, "dead", |state| state.state == TaskStateValue::Dead).await?;
    assert!(state.failed, "{state:?}");
    assert_eq!(
        entries(&log),
        [
            "a:prestart:None",
            "bad:prestart:None",
            "a:stop:Some(Number(1))",
            "bad:stop:None",
            "c:stop:None"
        ]
    );
    let failed = state
        .events
        .iter()
        .find(|event| event.event_type == events::TASK_HOOK_FAILED)
        .ok_or_else(|| anyhow::anyhow!("no hook failure event in {:?}", state.events))?;
    assert_eq!(failed.display_message, "bad: boom");
    assert_eq!(failed.message, "bad: boom");
    assert!(
        !state
            .events
            .iter()
            .any(|event| event.event_type == TaskEvent::STARTED),
        "{:?}",
        state.events
    );
    assert_eq!(
        state.events.last().map(|event| event.event_type.as_str()),
        Some(TaskEvent::NOT_RESTARTING)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_state_is_handed_back_after_restore_and_done_hooks_are_skipped() -> anyhow::Result<()>
{
    let fixture = Fixture::new()?;
    let alloc = alloc_running("echo \"$HOOK_ONCE\" >> $NOMAD_TASK_DIR/env; exec sleep 30");
    fixture.state_db.put_alloc(&alloc)?;
    let first = Log::default();
    let once = |log: &Log| -> Arc<dyn TaskHook> {
        Arc::new(Recorder {
            name: "once",
            log: Arc::clone(log),
            fail: false,
            done: true,
            block: false,
        })
    };
    let handle = fixture.spawn(
        &alloc,
        None,
        vec![once(&first), Recorder::new("every", &first)],
    );
    handle.send(TaskCommand::Start);
    wait_log(&first, "every:poststart").await?;
    handle.send(TaskCommand::Detach);
    wait_log(&first, "every:shutdown").await?;
    assert_eq!(
        entries(&first),
        [
            "once:prestart:None",
            "every:prestart:None",
            "once:poststart",
            "every:poststart",
            "once:shutdown",
            "every:shutdown"
        ]
    );

    // What the next agent reads back: each hook's state by name.
    let persisted = fixture
        .persisted(&alloc.id)
        .ok_or_else(|| anyhow::anyhow!("no state"))?;
    assert!(persisted.handle.is_some());
    let once_state = &persisted.hooks["once"];
    assert!(once_state.prestart_done);
    assert_eq!(once_state.data, Some(json!(1)));
    assert_eq!(
        once_state.env.get("HOOK_ONCE").map(String::as_str),
        Some("1")
    );
    assert!(!persisted.hooks["every"].prestart_done);
    assert_eq!(persisted.hooks["every"].data, Some(json!(1)));
    assert!(persisted.hooks["artifacts"].prestart_done);
    assert!(!persisted.hooks["task_dir"].prestart_done);

    // A runner restored from it recovers the task: `once` is skipped, `every` gets its state.
    let second = Log::default();
    let handle = fixture.spawn(
        &alloc,
        Some(persisted),
        vec![once(&second), Recorder::new("every", &second)],
    );
    wait_log(&second, "every:poststart").await?;
    assert_eq!(
        entries(&second),
        [
            "every:prestart:Some(1)",
            "once:poststart",
            "every:poststart"
        ]
    );
    let persisted = fixture
        .persisted(&alloc.id)
        .ok_or_else(|| anyhow::anyhow!("no state"))?;
    assert_eq!(persisted.hooks["every"].data, Some(json!(2)));
    assert_eq!(persisted.hooks["once"].data, Some(json!(1)));

    // A restart of the recovered task skips `once` too, and still gets its environment.
    handle.send(TaskCommand::Restart {
        reason: None,
        failure: false,
    });
    wait_log(&second, "every:prestart:Some(2)").await?;
    wait_for(&handle, "restarted", |state| {
        state.restarts == 1 && state.state == TaskStateValue::Running
    })
    .await?;
    let task_dir = fixture.config(&alloc, None).alloc_dir.task_dir("web");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(task_dir.join("local/env")).unwrap_or_default() != "1\n1\n" {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the restarted task lacks HOOK_ONCE"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !entries(&second)
            .iter()
            .any(|entry| entry.starts_with("once:prestart")),
        "{:?}",
        entries(&second)
    );
    handle.send(TaskCommand::Kill { reason: None });
    wait_for(&handle, "dead", |state| state.state == TaskStateValue::Dead).await?;
    Ok(())
}

/// A kill while a prestart hook waits cancels it: the task dies without starting, not failed,
/// and the stop hooks run; the agent's shutdown cancels it too, leaving the task to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_or_shutdown_cancels_a_waiting_prestart_hook() -> anyhow::Result<()> {
    let fixture = Fixture::new()?;
    let blocker = |log: &Log| -> Arc<dyn TaskHook> {
        Arc::new(Recorder {
            name: "blocker",
            log: Arc::clone(log),
            fail: false,
            done: false,
            block: true,
        })
    };
    let log = Log::default();
    let alloc = alloc_running("exec sleep 30");
    let handle = fixture.spawn(
        &alloc,
        None,
        vec![
            Recorder::new("a", &log),
            blocker(&log),
            Recorder::new("c", &log),
        ],
    );
    handle.send(TaskCommand::Start);
    wait_log(&log, "blocker:prestart:None").await?;
    handle.send(TaskCommand::Kill {
        reason: Some(events::sibling_failed("other")),
    });
    let state = wait_for(&handle, "dead", |state| state.state == TaskStateValue::Dead).await?;
    assert!(!state.failed, "{state:?}");
    assert_eq!(
        entries(&log),
        [
            "a:prestart:None",
            "blocker:prestart:None",
            "a:stop:Some(Number(1))",
            "blocker:stop:None",
            "c:stop:None"
        ]
    );
    let types: Vec<&str> = state
        .events
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert!(!types.contains(&TaskEvent::STARTED), "{types:?}");
    assert_eq!(types.last(), Some(&TaskEvent::SIBLING_FAILED));

    let log = Log::default();
    let alloc = alloc_running("exec sleep 30");
    let handle = fixture.spawn(&alloc, None, vec![blocker(&log)]);
    handle.send(TaskCommand::Start);
    wait_log(&log, "blocker:prestart:None").await?;
    handle.send(TaskCommand::Detach);
    wait_log(&log, "blocker:shutdown").await?;
    assert_ne!(handle.state().state, TaskStateValue::Dead);
    assert!(handle.running().is_none());
    Ok(())
}

/// A raw_exec task whose templates read the service `web` through a fake link, re-rendered by
/// the runner's template watcher.
fn alloc_with_templates(script: &str, templates: Vec<Template>) -> Arc<Allocation> {
    let mut alloc = (*alloc_running(script)).clone();
    if let Some(job) = alloc.job.as_mut() {
        let job = Arc::make_mut(job);
        if let Some(task) = job
            .task_groups
            .first_mut()
            .and_then(|group| group.tasks.first_mut())
        {
            task.templates = templates;
        }
    }
    Arc::new(alloc)
}

fn web_instance(port: i32) -> crate::structs::ServiceRegistration {
    crate::structs::ServiceRegistration {
        id: format!("web-{port}"),
        service_name: "web".to_owned(),
        namespace: "default".to_owned(),
        address: "127.0.0.1".to_owned(),
        port,
        ..crate::structs::ServiceRegistration::default()
    }
}

const UPSTREAMS: &str = "{{ range nomadService \"web\" }}{{ .Port }}\n{{ end }}";

async fn wait_file(path: &std::path::Path, expected: &str) -> anyhow::Result<()> {
    // Generous: on a loaded machine (the whole suite on 2 cores) a re-render, its splay and the
    // signal through the driver can take many seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let contents = std::fs::read_to_string(path).unwrap_or_default();
        if contents == expected {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} holds {contents:?}, not {expected:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two templates reading the same service change together: both files are rewritten and the
/// task restarts once, with Nomad's event; the `noop` one alone would not restart it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_re_render_on_service_changes_and_restart_once() -> anyhow::Result<()> {
    let fixture = Fixture::new()?;
    let link = crate::client::fake_link::FakeLink::new(Duration::from_secs(10));
    let node = crate::structs::NodeId::from("node-1");
    link.sync_services(&node, &[web_instance(8080)], &[])
        .await?;
    let link: Arc<dyn crate::client::ServerLink> = Arc::new(link);
    let template = |dest: &str, mode: &str| Template {
        embedded_tmpl: UPSTREAMS.to_owned(),
        dest_path: dest.to_owned(),
        change_mode: mode.to_owned(),
        perms: "0600".to_owned(),
        ..Template::default()
    };
    let alloc = alloc_with_templates(
        "exec sleep 300",
        vec![
            template("local/restart", "restart"),
            template("local/noop", "noop"),
        ],
    );
    let mut config = fixture.config(&alloc, None);
    config.link = Some(Arc::clone(&link));
    let task_dir = config.alloc_dir.task_dir("web");
    let handle = spawn(config);
    handle.send(TaskCommand::Start);
    wait_for(&handle, "running", |state| {
        state.state == TaskStateValue::Running
    })
    .await?;
    wait_file(&task_dir.join("local/restart"), "8080\n").await?;
    assert_eq!(handle.state().restarts, 0);
    link.sync_services(&node, &[web_instance(8081)], &[])
        .await?;
    wait_file(&task_dir.join("local/noop"), "8080\n8081\n").await?;
    wait_file(&task_dir.join("local/restart"), "8080\n8081\n").await?;
    let state = wait_for(&handle, "restarted and running", |state| {
        state.restarts == 1 && state.state == TaskStateValue::Running
    })
    .await?;
    let restarts: Vec<_> = state
        .events
        .iter()
        .filter(|event| event.event_type == TaskEvent::RESTART_SIGNAL)
        .collect();
    assert_eq!(restarts.len(), 1, "{:?}", state.events);
    assert_eq!(
        restarts[0].display_message,
        "Template with change_mode restart re-rendered"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(task_dir.join("local/restart"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // An instance going away re-renders too.
    link.sync_services(&node, &[], &["web-8080".to_owned()])
        .await?;
    wait_file(&task_dir.join("local/noop"), "8081\n").await?;
    wait_for(&handle, "restarted twice", |state| {
        state.restarts == 2 && state.state == TaskStateValue::Running
    })
    .await?;
    handle.send(TaskCommand::Kill { reason: None });
    wait_for(&handle, "dead", |state| state.state == TaskStateValue::Dead).await?;
    // Stopped: the watcher is gone, so a later change writes nothing.
    link.sync_services(&node, &[web_instance(9000)], &[])
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/noop"))?,
        "8081\n"
    );
    Ok(())
}

/// `signal` sends the template's signal through the driver ("Template re-rendered"); `script`
/// runs its command through the driver's `exec`; neither restarts the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_render_signals_the_task_and_runs_the_change_script() -> anyhow::Result<()> {
    let fixture = Fixture::new()?;
    let link = crate::client::fake_link::FakeLink::new(Duration::from_secs(10));
    let node = crate::structs::NodeId::from("node-1");
    link.sync_services(&node, &[web_instance(8080)], &[])
        .await?;
    let link: Arc<dyn crate::client::ServerLink> = Arc::new(link);
    let marker_dir = tempfile::tempdir()?;
    let hup = marker_dir.path().join("hup");
    let ran = marker_dir.path().join("ran");
    let trapped = marker_dir.path().join("trapped");
    // The task says when its trap is set: a SIGHUP before it would end the shell instead.
    let script = format!(
        "trap 'echo hup >> {}' HUP; echo set > {}; while :; do sleep 0.1; done",
        hup.display(),
        trapped.display()
    );
    let alloc = alloc_with_templates(
        &script,
        vec![
            Template {
                embedded_tmpl: UPSTREAMS.to_owned(),
                dest_path: "local/signal".to_owned(),
                change_mode: "signal".to_owned(),
                change_signal: "SIGHUP".to_owned(),
                ..Template::default()
            },
            Template {
                embedded_tmpl: UPSTREAMS.to_owned(),
                dest_path: "local/script".to_owned(),
                change_mode: "script".to_owned(),
                change_script: Some(crate::structs::ChangeScript {
                    command: "/bin/sh".to_owned(),
                    args: vec!["-c".to_owned(), format!("echo ran >> {}", ran.display())],
                    ..crate::structs::ChangeScript::default()
                }),
                ..Template::default()
            },
        ],
    );
    let mut config = fixture.config(&alloc, None);
    config.link = Some(Arc::clone(&link));
    let task_dir = config.alloc_dir.task_dir("web");
    let handle = spawn(config);
    handle.send(TaskCommand::Start);
    wait_for(&handle, "running", |state| {
        state.state == TaskStateValue::Running
    })
    .await?;
    wait_file(&task_dir.join("local/signal"), "8080\n").await?;
    wait_file(&trapped, "set\n").await?;
    link.sync_services(&node, &[web_instance(8081)], &[])
        .await?;
    wait_file(&task_dir.join("local/script"), "8080\n8081\n").await?;
    wait_file(&hup, "hup\n").await?;
    wait_file(&ran, "ran\n").await?;
    let state = wait_for(&handle, "script event recorded", |state| {
        state
            .events
            .iter()
            .any(|event| event.event_type == events::TASK_HOOK_MESSAGE)
    })
    .await?;
    assert!(
        state.events.iter().any(|event| {
            event.event_type == TaskEvent::SIGNALING
                && event.display_message == "Template re-rendered"
        }),
        "{:?}",
        state.events
    );
    assert_eq!(state.restarts, 0);
    assert_eq!(state.state, TaskStateValue::Running);
    handle.send(TaskCommand::Kill { reason: None });
    wait_for(&handle, "dead", |state| state.state == TaskStateValue::Dead).await?;
    Ok(())
}
