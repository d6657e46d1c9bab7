//! The client agent end to end in-process: a real `Client` with real drivers (raw_exec running
//! `/bin/sh`, the wasm driver running the `hello` and `counter` examples), linked over HTTP to a
//! stand-in server (`client_server.rs`) on a loopback port, with its client API served too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use caravan::client::{Client, ClientHandle, ClientOptions, HttpServerLink};
use caravan::structs::{
    AllocClientStatus, AllocId, AllocatedPort, Allocation, Job, JobId, JobType, LogConfig, NodeId,
    RestartMode, RestartPolicy, Task, TaskEvent, TaskGroup, TaskStateValue,
};
use serde_json::json;
use tempfile::TempDir;

use crate::client_server::TestServer;

const HELLO_WASM: &str = env!("CARAVAN_EXAMPLE_HELLO_WASM");
const COUNTER_WASM: &str = env!("CARAVAN_EXAMPLE_COUNTER_WASM");
const TESTING_DRIVERS: &str = env!("CARAVAN_TESTING_DRIVERS_DIR");

struct Fixture {
    dir: TempDir,
    server: Arc<TestServer>,
}

impl Fixture {
    async fn new(heartbeat_ttl: Duration) -> Result<Fixture> {
        Ok(Fixture {
            dir: tempfile::tempdir()?,
            server: TestServer::start(heartbeat_ttl).await?,
        })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn start_client(&self) -> Result<ClientHandle> {
        self.start_client_with(|_| {}).await
    }

    async fn start_client_with(
        &self,
        adjust: impl FnOnce(&mut ClientOptions),
    ) -> Result<ClientHandle> {
        let mut options = ClientOptions {
            data_dir: self.data_dir(),
            node_name: "client1".to_owned(),
            plugins: BTreeMap::from([("raw_exec".to_owned(), json!({ "enabled": true }))]),
            network_ip: Some("127.0.0.1".parse()?),
            servers: vec![self.server.url()],
            update_interval: Duration::from_millis(50),
            // The wasm examples arrive as `file://` artifacts (modules are relative to the task
            // directory): their build directory is allowed.
            task_files: caravan::client::TaskFilesConfig {
                artifact_file_allowlist: [HELLO_WASM, COUNTER_WASM]
                    .iter()
                    .filter_map(|module| Path::new(module).parent().map(Path::to_path_buf))
                    .collect(),
                ..caravan::client::TaskFilesConfig::default()
            },
            ..ClientOptions::default()
        };
        adjust(&mut options);
        let link = Arc::new(HttpServerLink::with_watch_wait(
            &options.servers,
            Duration::from_secs(5),
        ));
        Ok(Client::start(options, link).await?)
    }

    fn log_path(&self, alloc_id: &AllocId, file: &str) -> PathBuf {
        self.data_dir()
            .join("alloc")
            .join(alloc_id.as_str())
            .join("alloc/logs")
            .join(file)
    }

    fn task_dir(&self, alloc_id: &AllocId, task: &str) -> PathBuf {
        self.data_dir()
            .join("alloc")
            .join(alloc_id.as_str())
            .join(task)
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

    async fn wait_status(
        &self,
        alloc_id: &AllocId,
        status: AllocClientStatus,
    ) -> Result<Allocation> {
        self.wait_alloc(alloc_id, &status.to_string(), |alloc| {
            alloc.client_status == status
        })
        .await
    }
}

fn sh_task(name: &str, script: &str) -> Task {
    Task {
        name: name.to_owned(),
        driver: "raw_exec".to_owned(),
        config: json!({ "command": "/bin/sh", "args": ["-c", script] })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        kill_timeout: Some(Duration::from_secs(2)),
        ..Task::default()
    }
}

/// A wasm task running `module`, fetched into the task's `local/` as an artifact (the wasm
/// driver's modules are relative to the task directory).
fn wasm_task(name: &str, module: &str, args: &[&str]) -> Task {
    let file_name = Path::new(module)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    Task {
        name: name.to_owned(),
        driver: "wasm".to_owned(),
        config: json!({ "module": format!("local/{file_name}"), "args": args })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        artifacts: vec![caravan::structs::TaskArtifact {
            getter_source: format!("file://{module}"),
            ..caravan::structs::TaskArtifact::default()
        }],
        kill_timeout: Some(Duration::from_secs(2)),
        ..Task::default()
    }
}

fn alloc_for(
    node_id: &NodeId,
    job_type: JobType,
    restart: RestartPolicy,
    tasks: Vec<Task>,
) -> Allocation {
    let job = Job {
        id: JobId::from("example"),
        name: "example".to_owned(),
        job_type,
        namespace: "default".to_owned(),
        region: "global".to_owned(),
        task_groups: vec![TaskGroup {
            name: "group".to_owned(),
            tasks,
            restart_policy: Some(restart),
            ..TaskGroup::default()
        }],
        ..Job::default()
    };
    let mut alloc = Allocation {
        id: AllocId::generate(),
        namespace: "default".to_owned(),
        name: "example.group[0]".to_owned(),
        node_id: node_id.clone(),
        job_id: job.id.clone(),
        job: Some(Arc::new(job)),
        task_group: "group".to_owned(),
        ..Allocation::default()
    };
    alloc.allocated_resources.shared.ports.push(AllocatedPort {
        label: "http".to_owned(),
        value: 24567,
        to: 0,
        host_ip: "127.0.0.1".to_owned(),
    });
    alloc
}

fn no_restarts() -> RestartPolicy {
    RestartPolicy {
        attempts: 0,
        interval: Duration::from_secs(60),
        delay: Duration::from_millis(100),
        mode: RestartMode::Fail,
        render_templates: false,
    }
}

fn event_types(alloc: &Allocation, task: &str) -> Vec<String> {
    alloc
        .task_states
        .get(task)
        .map(|state| {
            state
                .events
                .iter()
                .map(|event| event.event_type.clone())
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_for_file(path: &Path, within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("{} never appeared", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pid_alive(pid: i32) -> bool {
    // Signal 0 checks for existence; a zombie still counts, so also look at /proc state.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_registers_over_http_and_runs_a_raw_exec_batch_task() -> Result<()> {
    let fixture = Fixture::new(Duration::from_secs(10)).await?;
    let client = fixture.start_client().await?;
    let node_id = client.node_id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fixture.server.node(&node_id).is_none() {
        ensure!(Instant::now() < deadline, "node never registered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let node = fixture.server.node(&node_id).context("node")?;
    assert_eq!(node.name, "client1");
    assert_eq!(node.datacenter, "dc1");
    for attribute in [
        "cpu.numcores",
        "cpu.frequency",
        "cpu.totalcompute",
        "memory.totalbytes",
        "kernel.name",
        "os.name",
        "unique.hostname",
        "unique.network.ip-address",
        "driver.raw_exec",
        "driver.wasm",
    ] {
        assert!(
            node.attributes.contains_key(attribute),
            "missing {attribute}: {:?}",
            node.attributes
        );
    }
    assert!(node.node_resources.cpu.cpu_shares > 0);

    let alloc = alloc_for(
        &node_id,
        JobType::Batch,
        no_restarts(),
        vec![sh_task(
            "hello",
            "echo \"hi from $NOMAD_TASK_NAME on $NOMAD_ADDR_http\"; echo oops >&2",
        )],
    );
    let alloc_id = alloc.id.clone();
    fixture.server.upsert_alloc(alloc);
    let done = fixture
        .wait_status(&alloc_id, AllocClientStatus::Complete)
        .await?;
    assert_eq!(
        event_types(&done, "hello"),
        [
            TaskEvent::RECEIVED,
            TaskEvent::TASK_SETUP,
            TaskEvent::STARTED,
            TaskEvent::TERMINATED
        ]
    );
    assert_eq!(done.task_states["hello"].state, TaskStateValue::Dead);
    assert!(!done.task_states["hello"].failed);
    assert_eq!(
        std::fs::read_to_string(fixture.log_path(&alloc_id, "hello.stdout.0"))?,
        "hi from hello on 127.0.0.1:24567\n"
    );
    assert_eq!(
        std::fs::read_to_string(fixture.log_path(&alloc_id, "hello.stderr.0"))?,
        "oops\n"
    );
    for dir in [
        "alloc/tmp",
        "alloc/data",
        "hello/local",
        "hello/secrets",
        "hello/tmp",
    ] {
        assert!(
            fixture
                .data_dir()
                .join("alloc")
                .join(alloc_id.as_str())
                .join(dir)
                .is_dir(),
            "{dir}"
        );
    }

    let failing = alloc_for(
        &node_id,
        JobType::Batch,
        no_restarts(),
        vec![sh_task("fail", "exit 7")],
    );
    let failing_id = failing.id.clone();
    fixture.server.upsert_alloc(failing);
    let failed = fixture
        .wait_status(&failing_id, AllocClientStatus::Failed)
        .await?;
    let events = &failed.task_states["fail"].events;
    let terminated = events
        .iter()
        .find(|event| event.event_type == TaskEvent::TERMINATED)
        .context("terminated")?;
    assert_eq!(terminated.exit_code, 7);
    assert_eq!(
        events.last().map(|event| event.event_type.as_str()),
        Some(TaskEvent::NOT_RESTARTING)
    );
    assert_eq!(
        events.last().map(|event| event.display_message.as_str()),
        Some("Policy allows no restarts")
    );
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_hello_completes_and_counter_runs_until_stopped() -> Result<()> {
    let fixture = Fixture::new(Duration::from_secs(10)).await?;
    let client = fixture.start_client().await?;
    let node_id = client.node_id();
    let hello = alloc_for(
        &node_id,
        JobType::Batch,
        no_restarts(),
        vec![wasm_task("hello", HELLO_WASM, &["${NOMAD_ALLOC_INDEX}"])],
    );
    let hello_id = hello.id.clone();
    fixture.server.upsert_alloc(hello);
    fixture
        .wait_status(&hello_id, AllocClientStatus::Complete)
        .await?;
    let stdout = std::fs::read_to_string(fixture.log_path(&hello_id, "hello.stdout.0"))?;
    assert!(stdout.starts_with("hello from caravan\n"), "{stdout}");
    assert!(stdout.contains("arg[1]=0\n"), "{stdout}");
    assert!(stdout.contains("env NOMAD_TASK_NAME=hello\n"), "{stdout}");
    assert!(stdout.contains("env NOMAD_TASK_DIR=local\n"), "{stdout}");

    let counter = alloc_for(
        &node_id,
        JobType::Service,
        no_restarts(),
        vec![wasm_task("counter", COUNTER_WASM, &["20"])],
    );
    let counter_id = counter.id.clone();
    fixture.server.upsert_alloc(counter);
    fixture
        .wait_status(&counter_id, AllocClientStatus::Running)
        .await?;
    let log = fixture.log_path(&counter_id, "counter.stdout.0");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("count 3\n")
    {
        ensure!(Instant::now() < deadline, "counter never counted to 3");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fixture.server.stop_alloc(&counter_id);
    let stopped = fixture
        .wait_status(&counter_id, AllocClientStatus::Complete)
        .await?;
    let events = event_types(&stopped, "counter");
    assert!(
        events.ends_with(&[
            TaskEvent::KILLING.to_owned(),
            TaskEvent::TERMINATED.to_owned(),
            TaskEvent::KILLED.to_owned()
        ]),
        "{events:?}"
    );
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_task_restarts_per_policy_with_restarting_events() -> Result<()> {
    let fixture = Fixture::new(Duration::from_secs(10)).await?;
    let client = fixture.start_client().await?;
    let restart = RestartPolicy {
        attempts: 1,
        interval: Duration::from_secs(600),
        delay: Duration::from_millis(200),
        mode: RestartMode::Fail,
        render_templates: false,
    };
    let alloc = alloc_for(
        &client.node_id(),
        JobType::Service,
        restart,
        vec![sh_task(
            "web",
            "echo $$ > $NOMAD_TASK_DIR/pid; exec sleep 60",
        )],
    );
    let alloc_id = alloc.id.clone();
    fixture.server.upsert_alloc(alloc);
    fixture
        .wait_status(&alloc_id, AllocClientStatus::Running)
        .await?;
    let pid_file = fixture.task_dir(&alloc_id, "web").join("local/pid");
    let first_pid: i32 = wait_for_file(&pid_file, Duration::from_secs(10))
        .await?
        .trim()
        .parse()?;
    std::fs::remove_file(&pid_file)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first_pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;

    let restarted = fixture
        .wait_alloc(&alloc_id, "restarted and running", |alloc| {
            alloc
                .task_states
                .get("web")
                .is_some_and(|state| state.restarts == 1 && state.state == TaskStateValue::Running)
        })
        .await?;
    let events = &restarted.task_states["web"].events;
    let terminated = events
        .iter()
        .find(|event| event.event_type == TaskEvent::TERMINATED)
        .context("terminated")?;
    assert_eq!(terminated.signal, 9, "{terminated:?}");
    let restarting = events
        .iter()
        .find(|event| event.event_type == TaskEvent::RESTARTING)
        .context("restarting")?;
    assert!(
        restarting
            .display_message
            .starts_with("Task restarting in "),
        "{restarting:?}"
    );
    assert_eq!(restarting.restart_reason, "Restart within policy");
    assert_eq!(
        events.last().map(|event| event.event_type.as_str()),
        Some(TaskEvent::STARTED)
    );
    let second_pid: i32 = wait_for_file(&pid_file, Duration::from_secs(10))
        .await?
        .trim()
        .parse()?;
    assert_ne!(first_pid, second_pid);

    // The one allowed restart is used: the next kill fails the task and the allocation.
    std::fs::remove_file(&pid_file)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(second_pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let failed = fixture
        .wait_status(&alloc_id, AllocClientStatus::Failed)
        .await?;
    let last = failed.task_states["web"]
        .events
        .last()
        .context("an event")?;
    assert_eq!(last.event_type, TaskEvent::NOT_RESTARTING);
    assert_eq!(
        last.display_message,
        "Exceeded allowed attempts 1 in interval 10m0s and mode is \"fail\""
    );
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_recovers_its_running_task_with_the_same_pid() -> Result<()> {
    let fixture = Fixture::new(Duration::from_secs(10)).await?;
    let client = fixture.start_client().await?;
    let node_id = client.node_id();
    let alloc = alloc_for(
        &node_id,
        JobType::Service,
        no_restarts(),
        vec![sh_task(
            "web",
            "echo $$ > $NOMAD_TASK_DIR/pid; exec sleep 60",
        )],
    );
    let alloc_id = alloc.id.clone();
    fixture.server.upsert_alloc(alloc);
    fixture
        .wait_status(&alloc_id, AllocClientStatus::Running)
        .await?;
    let pid: i32 = wait_for_file(
        &fixture.task_dir(&alloc_id, "web").join("local/pid"),
        Duration::from_secs(10),
    )
    .await?
    .trim()
    .parse()?;
    let events_before = event_types(&fixture.server.alloc(&alloc_id).context("alloc")?, "web");

    client.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(pid_alive(pid), "the task must survive the client");

    let client = fixture.start_client().await?;
    assert_eq!(
        client.node_id(),
        node_id,
        "the node ID is stable across restarts"
    );
    let runner = client
        .alloc_runner(alloc_id.as_str())
        .context("restored runner")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while runner.task_states().get("web").map(|state| state.state) != Some(TaskStateValue::Running)
    {
        ensure!(
            Instant::now() < deadline,
            "task not recovered: {:?}",
            runner.task_states()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pid_alive(pid), "recovered, not restarted");
    let states = runner.task_states();
    assert_eq!(states["web"].restarts, 0);
    let events_after: Vec<String> = states["web"]
        .events
        .iter()
        .map(|event| event.event_type.clone())
        .collect();
    assert_eq!(
        events_after, events_before,
        "no new Started event after recovery"
    );
    let pid_now: i32 =
        std::fs::read_to_string(fixture.task_dir(&alloc_id, "web").join("local/pid"))?
            .trim()
            .parse()?;
    assert_eq!(pid_now, pid);

    fixture.server.stop_alloc(&alloc_id);
    fixture
        .wait_status(&alloc_id, AllocClientStatus::Complete)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(pid) {
        ensure!(Instant::now() < deadline, "stopped task {pid} still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_upgraded_in_the_plugin_dir_keeps_its_task_running_and_stops_it() -> Result<()> {
    let fixture = Fixture::new(Duration::from_secs(10)).await?;
    let plugin_dir = fixture.dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir)?;
    let install = |fixture_name: &str| -> Result<()> {
        let temporary = plugin_dir.join("upgrader.wasm.tmp");
        std::fs::copy(
            Path::new(TESTING_DRIVERS).join(format!("{fixture_name}.wasm")),
            &temporary,
        )?;
        Ok(std::fs::rename(
            &temporary,
            plugin_dir.join("upgrader.wasm"),
        )?)
    };
    install("upgrade_v1")?;
    let client = fixture
        .start_client_with(|options| {
            options.plugin_dir = Some(plugin_dir.clone());
            options.plugins.insert(
                String::from("upgrader"),
                json!({ "capabilities": ["process", "fs"] }),
            );
        })
        .await?;
    let task = Task {
        name: "app".to_owned(),
        driver: "upgrader".to_owned(),
        kill_timeout: Some(Duration::from_secs(2)),
        ..Task::default()
    };
    let alloc = alloc_for(
        &client.node_id(),
        JobType::Service,
        no_restarts(),
        vec![task],
    );
    let alloc_id = alloc.id.clone();
    fixture.server.upsert_alloc(alloc);
    fixture
        .wait_status(&alloc_id, AllocClientStatus::Running)
        .await?;
    let runner = client.alloc_runner(alloc_id.as_str()).context("runner")?;
    let (driver, handle, _) = runner.tasks()["app"].running().context("running")?;
    ensure!(driver.info().version == "1.0.0");
    let caravan::driver_host::WaitOn::Process(pid) = handle.wait_on else {
        bail!("the upgrader waits on its process: {:?}", handle.wait_on);
    };

    // Version 2 replaces the file; the client's driver host loads it and v2 re-attaches the task.
    install("upgrade_v2")?;
    let recovered = wait_for_file(
        &fixture
            .task_dir(&alloc_id, "app")
            .join("recovered-by-2.0.0"),
        Duration::from_secs(20),
    )
    .await?;
    ensure!(recovered == pid.to_string(), "{recovered} != {pid}");
    ensure!(
        driver.info().version == "2.0.0",
        "the runner's driver is the new version"
    );
    let alloc = fixture.server.alloc(&alloc_id).context("alloc")?;
    ensure!(
        alloc.client_status == AllocClientStatus::Running
            && alloc.task_states["app"].state == TaskStateValue::Running
            && alloc.task_states["app"].restarts == 0,
        "{:?}",
        alloc.task_states
    );
    ensure!(pid_alive(i32::try_from(pid)?), "nothing restarted");

    // Stopping the allocation goes through v2.
    fixture.server.stop_alloc(&alloc_id);
    fixture
        .wait_status(&alloc_id, AllocClientStatus::Complete)
        .await?;
    let stopped =
        std::fs::read_to_string(fixture.task_dir(&alloc_id, "app").join("stopped-by-2.0.0"))?;
    ensure!(stopped == pid.to_string());
    ensure!(
        !fixture
            .task_dir(&alloc_id, "app")
            .join("stopped-by-1.0.0")
            .exists()
    );
    ensure!(!pid_alive(i32::try_from(pid)?), "stopped");
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_flow_and_a_forgotten_node_registers_again() -> Result<()> {
    let fixture = Fixture::new(Duration::from_millis(300)).await?;
    let client = fixture.start_client().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while fixture.server.heartbeats() < 2 {
        ensure!(Instant::now() < deadline, "no heartbeats");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let registrations = fixture.server.registrations();
    fixture.server.forget_nodes();
    while fixture.server.registrations() <= registrations {
        ensure!(Instant::now() < deadline, "never registered again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fixture.server.node(&client.node_id()).is_some());
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_api_serves_logs_files_and_restarts() -> Result<()> {
    let fixture = Fixture::new(Duration::from_secs(10)).await?;
    let client = fixture.start_client().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    let router = client.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let mut task = sh_task(
        "web",
        "echo first; echo $$ > $NOMAD_TASK_DIR/pid; i=0; while true; do i=$((i+1)); echo line $i; sleep 0.05; done",
    );
    task.log_config = Some(LogConfig {
        max_files: 2,
        max_file_size_mb: 1,
        disabled: false,
    });
    let alloc = alloc_for(
        &client.node_id(),
        JobType::Service,
        no_restarts(),
        vec![task],
    );
    let alloc_id = alloc.id.clone();
    fixture.server.upsert_alloc(alloc);
    fixture
        .wait_status(&alloc_id, AllocClientStatus::Running)
        .await?;
    let pid_file = fixture.task_dir(&alloc_id, "web").join("local/pid");
    let pid: i32 = wait_for_file(&pid_file, Duration::from_secs(10))
        .await?
        .trim()
        .parse()?;
    let http = reqwest::Client::new();

    let plain = http
        .get(format!(
            "{api}/v1/client/fs/logs/{alloc_id}?task=web&type=stdout&plain=true"
        ))
        .send()
        .await?
        .text()
        .await?;
    assert!(plain.starts_with("first\n"), "{plain}");
    // python-nomad sends booleans as `True`, which Go's ParseBool reads as true.
    let plain_python = http
        .get(format!(
            "{api}/v1/client/fs/logs/{alloc_id}?task=web&type=stdout&plain=True"
        ))
        .send()
        .await?
        .text()
        .await?;
    assert!(plain_python.starts_with("first\n"), "{plain_python}");
    let tail = http
        .get(format!(
            "{api}/v1/client/fs/logs/{alloc_id}?task=web&plain=true&origin=end&offset=7"
        ))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(tail.len(), 7, "{tail:?}");

    let framed = http
        .get(format!(
            "{api}/v1/client/fs/logs/{alloc_id}?task=web&type=stdout"
        ))
        .send()
        .await?
        .text()
        .await?;
    let frame: serde_json::Value = serde_json::from_str(framed.lines().next().context("a frame")?)?;
    assert_eq!(frame["File"], "alloc/logs/web.stdout.0");
    assert!(
        frame["Data"]
            .as_str()
            .is_some_and(|data| data.starts_with("Zmlyc3QK")),
        "{frame}"
    );

    // follow: the stream keeps delivering new lines.
    let mut follow = http
        .get(format!(
            "{api}/v1/client/fs/logs/{alloc_id}?task=web&plain=true&follow=true&origin=end&offset=0"
        ))
        .send()
        .await?;
    let mut followed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while followed.iter().filter(|byte| **byte == b'\n').count() < 3 {
        ensure!(Instant::now() < deadline, "follow delivered nothing");
        if let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), follow.chunk()).await?? {
            followed.extend_from_slice(&chunk);
        }
    }
    assert!(
        String::from_utf8_lossy(&followed).contains("line "),
        "{followed:?}"
    );
    drop(follow);

    let listing: serde_json::Value = http
        .get(format!("{api}/v1/client/fs/ls/{alloc_id}?path=/alloc/logs"))
        .send()
        .await?
        .json()
        .await?;
    let names: Vec<&str> = listing
        .as_array()
        .context("array")?
        .iter()
        .filter_map(|entry| entry["Name"].as_str())
        .collect();
    assert!(
        names.contains(&"web.stdout.0") && names.contains(&"web.stderr.0"),
        "{names:?}"
    );
    let stat: serde_json::Value = http
        .get(format!(
            "{api}/v1/client/fs/stat/{alloc_id}?path=/web/local"
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(stat["IsDir"], true);
    let cat = http
        .get(format!(
            "{api}/v1/client/fs/cat/{alloc_id}?path=web/local/pid"
        ))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(cat.trim(), pid.to_string());
    let escape = http
        .get(format!(
            "{api}/v1/client/fs/cat/{alloc_id}?path=../../../etc/passwd"
        ))
        .send()
        .await?;
    assert_eq!(escape.status().as_u16(), 400);
    std::os::unix::fs::symlink("/etc", fixture.task_dir(&alloc_id, "web").join("local/etc"))?;
    let through_symlink = http
        .get(format!(
            "{api}/v1/client/fs/cat/{alloc_id}?path=web/local/etc/passwd"
        ))
        .send()
        .await?;
    assert_eq!(through_symlink.status().as_u16(), 400);
    let unknown = http
        .get(format!("{api}/v1/client/fs/ls/nope"))
        .send()
        .await?;
    assert_eq!(unknown.status().as_u16(), 404);

    let stats: serde_json::Value = http
        .get(format!("{api}/v1/client/allocation/{alloc_id}/stats"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        stats["Tasks"]["web"]["ResourceUsage"]["MemoryStats"]["RSS"]
            .as_u64()
            .is_some_and(|rss| rss > 0),
        "{stats}"
    );
    let host: serde_json::Value = http
        .get(format!("{api}/v1/client/stats"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        host["Memory"]["Total"]
            .as_u64()
            .is_some_and(|total| total > 0),
        "{host}"
    );

    let addr = api.trim_start_matches("http://").to_owned();
    let frames = websocket_frames(
        &addr,
        &format!("/v1/client/allocation/{alloc_id}/exec"),
        &[
            ("task", "web"),
            (
                "command",
                r#"["/bin/sh","-c","echo out; echo err >&2; exit 3"]"#,
            ),
        ],
    )
    .await?;
    assert_eq!(
        frames,
        [
            r#"{"stdout":{"data":"b3V0Cg=="}}"#,
            r#"{"stderr":{"data":"ZXJyCg=="}}"#,
            r#"{"exited":true,"result":{"exit_code":3}}"#,
        ]
    );

    std::fs::remove_file(&pid_file)?;
    let restart = http
        .put(format!("{api}/v1/client/allocation/{alloc_id}/restart"))
        .json(&json!({ "TaskName": "web" }))
        .send()
        .await?;
    assert!(restart.status().is_success());
    let new_pid: i32 = wait_for_file(&pid_file, Duration::from_secs(10))
        .await?
        .trim()
        .parse()?;
    assert_ne!(new_pid, pid);
    let restarted = fixture
        .wait_alloc(&alloc_id, "restarted on request", |alloc| {
            alloc.task_states["web"].restarts == 1
                && alloc.task_states["web"].state == TaskStateValue::Running
        })
        .await?;
    let events = event_types(&restarted, "web");
    assert!(
        events.contains(&TaskEvent::RESTART_SIGNAL.to_owned()),
        "{events:?}"
    );

    fixture.server.stop_alloc(&alloc_id);
    fixture
        .wait_status(&alloc_id, AllocClientStatus::Complete)
        .await?;
    client.shutdown().await;
    Ok(())
}

/// Opens a websocket by hand (no client crate in the tree) and returns the server's text frames
/// until it closes the connection.
async fn websocket_frames(addr: &str, path: &str, query: &[(&str, &str)]) -> Result<Vec<String>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse_with_params(&format!("http://{addr}{path}"), query)?;
    let target = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await??;
    let header_end = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("no HTTP response")?;
    let head = String::from_utf8_lossy(&bytes[..header_end]);
    ensure!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
    let mut rest = &bytes[header_end + 4..];
    let mut frames = Vec::new();
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0f;
        let (len, header) = match rest[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 => bail!("frame too long for this test"),
            len => (usize::from(len), 2),
        };
        ensure!(rest.len() >= header + len, "truncated frame");
        if opcode == 1 {
            frames.push(String::from_utf8(rest[header..header + len].to_vec())?);
        }
        rest = &rest[header + len..];
    }
    Ok(frames)
}
