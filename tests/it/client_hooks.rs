//! The task runner's hooks across a client restart: a real `Client` with the raw_exec driver,
//! linked over HTTP to the stand-in server (`client_server.rs`) on a loopback port. A prestart
//! hook that reported `done` (artifacts) is not run again by the next client on the same data
//! dir, not on recovery and not when the recovered task restarts; the template hook's checksums
//! come back, so an unchanged template is not written again.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use caravan::client::state::StateDb;
use caravan::client::{Client, ClientHandle, ClientOptions, HttpServerLink};
use caravan::structs::{
    AllocClientStatus, AllocId, Allocation, Job, JobId, JobType, NodeId, RestartMode,
    RestartPolicy, Task, TaskArtifact, TaskEvent, TaskGroup, TaskStateValue, Template,
};
use serde_json::json;
use tempfile::TempDir;

use crate::client_server::TestServer;

struct Fixture {
    dir: TempDir,
    server: Arc<TestServer>,
}

impl Fixture {
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn sources(&self) -> PathBuf {
        self.dir.path().join("sources")
    }

    async fn start_client(&self) -> Result<ClientHandle> {
        let options = ClientOptions {
            data_dir: self.data_dir(),
            node_name: "client1".to_owned(),
            plugins: BTreeMap::from([("raw_exec".to_owned(), json!({ "enabled": true }))]),
            network_ip: Some("127.0.0.1".parse()?),
            servers: vec![self.server.url()],
            update_interval: Duration::from_millis(50),
            task_files: caravan::client::TaskFilesConfig {
                artifact_file_allowlist: vec![self.sources()],
                ..caravan::client::TaskFilesConfig::default()
            },
            ..ClientOptions::default()
        };
        let link = Arc::new(HttpServerLink::with_watch_wait(
            &options.servers,
            Duration::from_secs(5),
        ));
        Ok(Client::start(options, link).await?)
    }

    fn task_dir(&self, alloc_id: &AllocId) -> PathBuf {
        self.data_dir()
            .join("alloc")
            .join(alloc_id.as_str())
            .join("web")
    }

    async fn wait_alloc(
        &self,
        alloc_id: &AllocId,
        what: &str,
        check: impl Fn(&Allocation) -> bool,
    ) -> Result<Allocation> {
        self.server
            .wait_alloc(alloc_id, what, Duration::from_secs(30), check)
            .await
    }
}

fn alloc_for(node_id: &NodeId, source: &Path) -> Allocation {
    let task = Task {
        name: "web".to_owned(),
        driver: "raw_exec".to_owned(),
        config: json!({
            "command": "/bin/sh",
            "args": ["-c", "echo $$ > $NOMAD_TASK_DIR/pid; exec sleep 60"],
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
        artifacts: vec![TaskArtifact {
            getter_source: format!("file://{}", source.display()),
            ..TaskArtifact::default()
        }],
        templates: vec![Template {
            embedded_tmpl: "alloc={{ env \"NOMAD_ALLOC_NAME\" }}\n".to_owned(),
            dest_path: "local/app.conf".to_owned(),
            ..Template::default()
        }],
        kill_timeout: Some(Duration::from_secs(2)),
        ..Task::default()
    };
    let job = Job {
        id: JobId::from("example"),
        name: "example".to_owned(),
        job_type: JobType::Service,
        namespace: "default".to_owned(),
        region: "global".to_owned(),
        task_groups: vec![TaskGroup {
            name: "group".to_owned(),
            tasks: vec![task],
            restart_policy: Some(RestartPolicy {
                attempts: 2,
                interval: Duration::from_secs(600),
                delay: Duration::from_millis(100),
                mode: RestartMode::Fail,
                render_templates: false,
            }),
            ..TaskGroup::default()
        }],
        ..Job::default()
    };
    Allocation {
        id: AllocId::generate(),
        namespace: "default".to_owned(),
        name: "example.group[0]".to_owned(),
        node_id: node_id.clone(),
        job_id: job.id.clone(),
        job: Some(Arc::new(job)),
        task_group: "group".to_owned(),
        ..Allocation::default()
    }
}

async fn read_pid(path: &Path, other_than: Option<i32>) -> Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse::<i32>()
            && Some(pid) != other_than
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            bail!("no new pid in {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (inode, mtime in ns) of a file: both change if the file is written again or replaced.
fn identity(path: &Path) -> Result<(u64, i64)> {
    let meta = std::fs::metadata(path).with_context(|| path.display().to_string())?;
    Ok((meta.ino(), meta.mtime() * 1_000_000_000 + meta.mtime_nsec()))
}

fn count(alloc: &Allocation, event_type: &str) -> usize {
    alloc.task_states["web"]
        .events
        .iter()
        .filter(|event| event.event_type == event_type)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_does_not_rerun_done_prestart_hooks() -> Result<()> {
    let fixture = Fixture {
        dir: tempfile::tempdir()?,
        server: TestServer::start(Duration::from_secs(10)).await?,
    };
    std::fs::create_dir_all(fixture.sources())?;
    let source = fixture.sources().join("tool.txt");
    std::fs::write(&source, "v1\n")?;
    let client = fixture.start_client().await?;
    let alloc = alloc_for(&client.node_id(), &source);
    let alloc_id = alloc.id.clone();
    fixture.server.upsert_alloc(alloc);
    fixture
        .wait_alloc(&alloc_id, "running", |alloc| {
            alloc.client_status == AllocClientStatus::Running
        })
        .await?;
    let task_dir = fixture.task_dir(&alloc_id);
    let pid_file = task_dir.join("local/pid");
    let first_pid = read_pid(&pid_file, None).await?;
    let fetched = task_dir.join("local/tool.txt");
    let rendered = task_dir.join("local/app.conf");
    assert_eq!(std::fs::read_to_string(&fetched)?, "v1\n");
    assert_eq!(
        std::fs::read_to_string(&rendered)?,
        "alloc=example.group[0]\n"
    );
    let fetched_before = identity(&fetched)?;
    let rendered_before = identity(&rendered)?;

    client.shutdown().await;
    // A fetch after this point fails: the source is gone.
    std::fs::remove_file(&source)?;
    let persisted = StateDb::open(&fixture.data_dir().join("client"))?
        .load_allocs()
        .into_iter()
        .find(|persisted| persisted.alloc.id == alloc_id)
        .context("persisted allocation")?;
    let hooks = &persisted.tasks.first().context("persisted task")?.1.hooks;
    assert!(hooks["artifacts"].prestart_done, "{hooks:?}");
    assert!(!hooks["template"].prestart_done, "{hooks:?}");
    assert!(hooks["template"].data.is_some(), "{hooks:?}");

    let client = fixture.start_client().await?;
    let runner = client
        .alloc_runner(alloc_id.as_str())
        .context("restored runner")?;
    // The restored state reads "running" at once; the task is recovered once the runner holds
    // its handle again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while runner
        .tasks()
        .get("web")
        .and_then(|task| task.running())
        .is_none()
    {
        ensure!(Instant::now() < deadline, "task not recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        runner.task_states().get("web").map(|state| state.restarts),
        Some(0)
    );
    // The recovered task dies; its restart runs the prestart hooks that are not done.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first_pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let second_pid = read_pid(&pid_file, Some(first_pid)).await?;
    let restarted = fixture
        .wait_alloc(&alloc_id, "restarted and running", |alloc| {
            alloc
                .task_states
                .get("web")
                .is_some_and(|state| state.restarts == 1 && state.state == TaskStateValue::Running)
        })
        .await?;
    ensure!(second_pid != first_pid);
    assert_eq!(
        count(&restarted, TaskEvent::DOWNLOADING_ARTIFACTS),
        1,
        "{:?}",
        restarted.task_states["web"].events
    );
    assert_eq!(count(&restarted, TaskEvent::FAILED_ARTIFACT_DOWNLOAD), 0);
    assert_eq!(count(&restarted, "Task hook failed"), 0);
    assert_eq!(count(&restarted, TaskEvent::STARTED), 2);
    assert_eq!(std::fs::read_to_string(&fetched)?, "v1\n");
    assert_eq!(
        identity(&fetched)?,
        fetched_before,
        "artifact fetched again"
    );
    assert_eq!(
        identity(&rendered)?,
        rendered_before,
        "template written again"
    );

    fixture.server.stop_alloc(&alloc_id);
    fixture
        .wait_alloc(&alloc_id, "complete", |alloc| {
            alloc.client_status == AllocClientStatus::Complete
        })
        .await?;
    client.shutdown().await;
    Ok(())
}

/// An allocation update from the servers reaches the task runner (Nomad's `TaskRunner.Update`):
/// the task's next start is built from the new version of the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocation_update_reaches_the_task_runner_for_its_next_start() -> Result<()> {
    let fixture = Fixture {
        dir: tempfile::tempdir()?,
        server: TestServer::start(Duration::from_secs(10)).await?,
    };
    std::fs::create_dir_all(fixture.sources())?;
    let source = fixture.sources().join("tool.txt");
    std::fs::write(&source, "v1\n")?;
    let client = fixture.start_client().await?;
    let mut alloc = alloc_for(&client.node_id(), &source);
    let with_release = |alloc: &mut Allocation, release: &str, version: u64| {
        if let Some(job) = alloc.job.as_mut() {
            let job = Arc::make_mut(job);
            job.version = version;
            job.meta.insert("release".to_owned(), release.to_owned());
            for task in &mut job.task_groups[0].tasks {
                task.config.insert(
                    "args".to_owned(),
                    json!([
                        "-c",
                        "echo $NOMAD_META_release > $NOMAD_TASK_DIR/release; \
                         echo $$ > $NOMAD_TASK_DIR/pid; exec sleep 60"
                    ]),
                );
            }
        }
    };
    with_release(&mut alloc, "r1", 0);
    let alloc_id = alloc.id.clone();
    fixture.server.upsert_alloc(alloc.clone());
    let task_dir = fixture.task_dir(&alloc_id);
    let pid = read_pid(&task_dir.join("local/pid"), None).await?;
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/release"))?,
        "r1\n"
    );

    with_release(&mut alloc, "r2", 1);
    fixture.server.upsert_alloc(alloc);
    let runner = client
        .alloc_runner(alloc_id.as_str())
        .context("alloc runner")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while runner.alloc().job.as_ref().map(|job| job.version) != Some(1) {
        ensure!(Instant::now() < deadline, "update not received");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    read_pid(&task_dir.join("local/pid"), Some(pid)).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(task_dir.join("local/release")).unwrap_or_default() != "r2\n" {
        ensure!(
            Instant::now() < deadline,
            "the restarted task runs the old version"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fixture.server.stop_alloc(&alloc_id);
    fixture
        .wait_alloc(&alloc_id, "complete", |alloc| {
            alloc.client_status == AllocClientStatus::Complete
        })
        .await?;
    client.shutdown().await;
    Ok(())
}
