//! Unit tests of the client loop against the in-process fake link, with real raw_exec tasks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::fake_link::FakeLink;
use super::*;
use crate::structs::{
    AllocClientStatus, Job, JobId, JobType, RestartMode, RestartPolicy, Task, TaskEvent, TaskGroup,
    TaskLifecycle,
};

fn options(data_dir: &std::path::Path) -> ClientOptions {
    ClientOptions {
        data_dir: data_dir.to_path_buf(),
        node_name: "test-node".to_owned(),
        plugins: BTreeMap::from([("raw_exec".to_owned(), json!({ "enabled": true }))]),
        network_ip: Some("127.0.0.1".parse().expect("literal ip")),
        update_interval: Duration::from_millis(20),
        task_files: super::TaskFilesConfig {
            // The tests' `file://` artifacts come from their own temp dir.
            artifact_file_allowlist: vec![data_dir.to_path_buf()],
            ..super::TaskFilesConfig::default()
        },
        ..ClientOptions::default()
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
        kill_timeout: Some(Duration::from_secs(1)),
        ..Task::default()
    }
}

fn alloc_for(node_id: &NodeId, job_type: JobType, tasks: Vec<Task>) -> Allocation {
    let job = Job {
        id: JobId::from("example"),
        name: "example".to_owned(),
        job_type,
        namespace: "default".to_owned(),
        task_groups: vec![TaskGroup {
            name: "group".to_owned(),
            tasks,
            restart_policy: Some(RestartPolicy {
                attempts: 0,
                interval: Duration::from_secs(60),
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

async fn wait_until(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

async fn wait_status(link: &FakeLink, alloc_id: &AllocId, status: AllocClientStatus) -> Allocation {
    let ok = wait_until(Duration::from_secs(20), || {
        link.alloc(alloc_id)
            .is_some_and(|alloc| alloc.client_status == status)
    })
    .await;
    let alloc = link.alloc(alloc_id).expect("alloc exists");
    assert!(ok, "alloc never became {status}: {:#?}", alloc.task_states);
    alloc
}

fn event_types(alloc: &Allocation, task: &str) -> Vec<String> {
    alloc.task_states[task]
        .events
        .iter()
        .map(|event| event.event_type.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_runs_a_batch_task_and_reports_completion() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let link = Arc::new(FakeLink::new(Duration::from_secs(10)));
    let client = Client::start(options(dir.path()), link.clone()).await?;
    let node_id = client.node_id();
    assert!(wait_until(Duration::from_secs(30), || link.node(&node_id).is_some()).await);
    let node = link.node(&node_id).expect("registered");
    assert_eq!(
        node.attributes.get("driver.raw_exec").map(String::as_str),
        Some("1")
    );
    assert!(node.drivers["raw_exec"].healthy);
    assert!(node.attributes.contains_key("cpu.totalcompute"));

    let alloc = alloc_for(
        &node_id,
        JobType::Batch,
        vec![sh_task(
            "hello",
            "echo hello from $NOMAD_TASK_NAME in $NOMAD_ALLOC_NAME",
        )],
    );
    let alloc_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    let done = wait_status(&link, &alloc_id, AllocClientStatus::Complete).await;
    assert_eq!(
        event_types(&done, "hello"),
        [
            TaskEvent::RECEIVED,
            TaskEvent::TASK_SETUP,
            TaskEvent::STARTED,
            TaskEvent::TERMINATED
        ]
    );
    let stdout = dir
        .path()
        .join(format!("alloc/{alloc_id}/alloc/logs/hello.stdout.0"));
    assert_eq!(
        std::fs::read_to_string(stdout)?,
        "hello from hello in example.group[0]\n"
    );
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_fails_the_alloc_and_kills_its_sibling() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let link = Arc::new(FakeLink::new(Duration::from_secs(10)));
    let client = Client::start(options(dir.path()), link.clone()).await?;
    let alloc = alloc_for(
        &client.node_id(),
        JobType::Service,
        vec![
            sh_task("bad", "sleep 0.3; exit 3"),
            sh_task("good", "exec sleep 30"),
        ],
    );
    let alloc_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    let failed = wait_status(&link, &alloc_id, AllocClientStatus::Failed).await;
    assert!(
        wait_until(Duration::from_secs(10), || {
            link.alloc(&alloc_id).is_some_and(|alloc| {
                alloc.task_states["good"].state == crate::structs::TaskStateValue::Dead
            })
        })
        .await
    );
    let alloc = link.alloc(&alloc_id).expect("alloc");
    assert!(failed.task_states["bad"].failed);
    let bad_events = event_types(&alloc, "bad");
    assert_eq!(
        bad_events.last().map(String::as_str),
        Some(TaskEvent::NOT_RESTARTING)
    );
    let terminated = alloc.task_states["bad"]
        .events
        .iter()
        .find(|event| event.event_type == TaskEvent::TERMINATED)
        .expect("terminated event");
    assert_eq!(terminated.exit_code, 3);
    assert_eq!(terminated.display_message, "Exit Code: 3");
    let good_events = event_types(&alloc, "good");
    assert!(
        good_events.contains(&TaskEvent::SIBLING_FAILED.to_owned()),
        "{good_events:?}"
    );
    assert!(
        good_events.contains(&TaskEvent::KILLED.to_owned()),
        "{good_events:?}"
    );
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_order_prestart_main_poststop() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let link = Arc::new(FakeLink::new(Duration::from_secs(10)));
    let client = Client::start(options(dir.path()), link.clone()).await?;
    let order = dir.path().join("order");
    let record = |name: &str| format!("echo {name} >> {}", order.display());
    let mut init = sh_task("init", &format!("sleep 0.2; {}", record("init")));
    init.lifecycle = Some(TaskLifecycle {
        hook: TaskLifecycle::PRESTART.to_owned(),
        sidecar: false,
    });
    let main = sh_task("main", &record("main"));
    let mut cleanup = sh_task("cleanup", &record("cleanup"));
    cleanup.lifecycle = Some(TaskLifecycle {
        hook: TaskLifecycle::POSTSTOP.to_owned(),
        sidecar: false,
    });
    let alloc = alloc_for(&client.node_id(), JobType::Batch, vec![cleanup, main, init]);
    let alloc_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    wait_status(&link, &alloc_id, AllocClientStatus::Complete).await;
    assert_eq!(std::fs::read_to_string(&order)?, "init\nmain\ncleanup\n");
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_stop_kills_the_task_and_a_forgotten_node_registers_again() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let link = Arc::new(FakeLink::new(Duration::from_millis(200)));
    let client = Client::start(options(dir.path()), link.clone()).await?;
    let alloc = alloc_for(
        &client.node_id(),
        JobType::Service,
        vec![sh_task("web", "exec sleep 30")],
    );
    let alloc_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    wait_status(&link, &alloc_id, AllocClientStatus::Running).await;

    let registrations = link.registrations();
    link.forget_nodes();
    assert!(
        wait_until(Duration::from_secs(30), || link.registrations()
            > registrations)
        .await
    );

    link.stop_alloc(&alloc_id);
    let stopped = wait_status(&link, &alloc_id, AllocClientStatus::Complete).await;
    let events = event_types(&stopped, "web");
    assert!(
        events.ends_with(&[
            TaskEvent::KILLING.to_owned(),
            TaskEvent::TERMINATED.to_owned(),
            TaskEvent::KILLED.to_owned()
        ]),
        "{events:?}"
    );
    assert!(!link.updates().is_empty());
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_and_templates_are_in_place_before_the_task_starts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let link = Arc::new(FakeLink::new(Duration::from_secs(10)));
    let client = Client::start(options(dir.path()), link.clone()).await?;
    let source = dir.path().join("greeting.txt");
    std::fs::write(&source, "artifact content\n")?;
    let mut task = sh_task(
        "show",
        "cat local/greeting.txt local/app.conf; echo \"secret=$SECRET_TOKEN\"",
    );
    task.artifacts = vec![crate::structs::TaskArtifact {
        getter_source: format!("file://{}", source.display()),
        ..crate::structs::TaskArtifact::default()
    }];
    task.templates = vec![
        crate::structs::Template {
            embedded_tmpl: "alloc={{ env \"NOMAD_ALLOC_NAME\" }}\n".to_owned(),
            dest_path: "local/app.conf".to_owned(),
            ..crate::structs::Template::default()
        },
        crate::structs::Template {
            embedded_tmpl: "SECRET_TOKEN=s3cr3t\n".to_owned(),
            dest_path: "secrets/env".to_owned(),
            envvars: true,
            ..crate::structs::Template::default()
        },
    ];
    let alloc = alloc_for(&client.node_id(), JobType::Batch, vec![task]);
    let alloc_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    let done = wait_status(&link, &alloc_id, AllocClientStatus::Complete).await;
    assert!(event_types(&done, "show").contains(&TaskEvent::DOWNLOADING_ARTIFACTS.to_owned()));
    let stdout = dir
        .path()
        .join(format!("alloc/{alloc_id}/alloc/logs/show.stdout.0"));
    assert_eq!(
        std::fs::read_to_string(stdout)?,
        "artifact content\nalloc=example.group[0]\nsecret=s3cr3t\n"
    );
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_are_killed_when_the_main_task_ends_and_poststart_runs_after_main()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let link = Arc::new(FakeLink::new(Duration::from_secs(10)));
    let client = Client::start(options(dir.path()), link.clone()).await?;
    let order = dir.path().join("order");
    let record = |name: &str| format!("echo {name} >> {}", order.display());
    let mut sidecar = sh_task("proxy", &format!("{}; exec sleep 30", record("proxy")));
    sidecar.lifecycle = Some(TaskLifecycle {
        hook: TaskLifecycle::PRESTART.to_owned(),
        sidecar: true,
    });
    let main = sh_task("main", &format!("sleep 0.5; {}", record("main")));
    let mut poststart = sh_task("announce", &record("announce"));
    poststart.lifecycle = Some(TaskLifecycle {
        hook: TaskLifecycle::POSTSTART.to_owned(),
        sidecar: false,
    });
    let alloc = alloc_for(
        &client.node_id(),
        JobType::Batch,
        vec![poststart, sidecar, main],
    );
    let alloc_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    let done = wait_status(&link, &alloc_id, AllocClientStatus::Complete).await;
    let recorded = std::fs::read_to_string(&order)?;
    let lines: Vec<&str> = recorded.lines().collect();
    assert_eq!(lines.last(), Some(&"main"), "{lines:?}");
    assert!(
        lines.contains(&"proxy") && lines.contains(&"announce"),
        "{lines:?}"
    );
    let proxy_events = event_types(&done, "proxy");
    assert!(
        proxy_events.contains(&"Main Tasks Dead".to_owned()),
        "{proxy_events:?}"
    );
    assert!(!done.task_states["proxy"].failed);
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_logs_rotate_per_the_logs_block() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let link = Arc::new(FakeLink::new(Duration::from_secs(10)));
    let client = Client::start(options(dir.path()), link.clone()).await?;
    // 1 MiB files, 2 kept: ~2.7 MiB of output in three bursts fills .0 and .1 and starts .2;
    // .0 is then removed (Nomad's numbering: the highest index is the newest).
    let mut task = sh_task(
        "chatty",
        "for burst in 1 2 3; do head -c 900000 /dev/zero | tr '\\0' a; echo; sleep 1.2; done; exec sleep 30",
    );
    task.log_config = Some(crate::structs::LogConfig {
        max_files: 2,
        max_file_size_mb: 1,
        disabled: false,
    });
    let alloc = alloc_for(&client.node_id(), JobType::Service, vec![task]);
    let alloc_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    wait_status(&link, &alloc_id, AllocClientStatus::Running).await;
    let logs = dir.path().join(format!("alloc/{alloc_id}/alloc/logs"));
    let newest = logs.join("chatty.stdout.2");
    assert!(
        wait_until(Duration::from_secs(15), || newest.exists()).await,
        "never rotated"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !logs
            .join("chatty.stdout.0")
            .exists())
        .await,
        "max_files is 2"
    );
    assert_eq!(
        std::fs::metadata(logs.join("chatty.stdout.1"))?.len(),
        1 << 20
    );
    assert!(std::fs::metadata(&newest)?.len() < 1 << 20);
    link.stop_alloc(&alloc_id);
    wait_status(&link, &alloc_id, AllocClientStatus::Complete).await;
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_overrides_reach_the_registered_node() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let link = Arc::new(FakeLink::new(Duration::from_secs(10)));
    let mut options = options(dir.path());
    options.cpu_total_compute = Some(4000);
    options.memory_total_mb = Some(2048);
    options.disk_free_mb = Some(123_456);
    options.min_dynamic_port = Some(21000);
    options.max_dynamic_port = Some(22000);
    options.node_class = "edge".to_owned();
    options.meta = BTreeMap::from([("rack".to_owned(), "r7".to_owned())]);
    options.reserved.reserved_host_ports = "22".to_owned();
    options.host_volumes = BTreeMap::from([(
        "data".to_owned(),
        crate::structs::HostVolume {
            path: "/srv/data".to_owned(),
            read_only: true,
        },
    )]);
    options.state_dir = Some(dir.path().join("state"));
    let client = Client::start(options, link.clone()).await?;
    let node_id = client.node_id();
    assert!(wait_until(Duration::from_secs(30), || link.node(&node_id).is_some()).await);
    let node = link.node(&node_id).expect("registered");
    assert_eq!(node.node_resources.cpu.cpu_shares, 4000);
    assert_eq!(node.attributes["cpu.totalcompute"], "4000");
    assert_eq!(node.node_resources.memory.memory_mb, 2048);
    assert_eq!(node.node_resources.disk.disk_mb, 123_456);
    assert_eq!(node.node_resources.min_dynamic_port, 21000);
    assert_eq!(node.node_resources.max_dynamic_port, 22000);
    assert_eq!(node.node_class, "edge");
    assert_eq!(node.meta["rack"], "r7");
    assert_eq!(node.reserved_resources.reserved_host_ports, "22");
    assert!(node.host_volumes["data"].read_only);
    assert!(dir.path().join("state/node-id").is_file());
    client.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_driver_fails_the_task_and_shutdown_delay_precedes_the_kill()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let link = Arc::new(FakeLink::new(Duration::from_secs(10)));
    let client = Client::start(options(dir.path()), link.clone()).await?;
    let mut missing = sh_task("ghost", "true");
    missing.driver = "nope".to_owned();
    let alloc = alloc_for(&client.node_id(), JobType::Service, vec![missing]);
    let missing_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    let failed = wait_status(&link, &missing_id, AllocClientStatus::Failed).await;
    let events = event_types(&failed, "ghost");
    assert!(
        events.contains(&TaskEvent::DRIVER_FAILURE.to_owned()),
        "{events:?}"
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some(TaskEvent::NOT_RESTARTING)
    );

    let mut web = sh_task("web", "exec sleep 30");
    web.shutdown_delay = Some(Duration::from_millis(300));
    let alloc = alloc_for(&client.node_id(), JobType::Service, vec![web]);
    let web_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    wait_status(&link, &web_id, AllocClientStatus::Running).await;
    let stop_asked = Instant::now();
    link.stop_alloc(&web_id);
    let stopped = wait_status(&link, &web_id, AllocClientStatus::Complete).await;
    assert!(stop_asked.elapsed() >= Duration::from_millis(300));
    let events = event_types(&stopped, "web");
    assert!(
        events.ends_with(&[
            "Waiting for shutdown delay".to_owned(),
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
async fn a_hung_driver_fingerprint_stops_neither_start_up_nor_heartbeats() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir)?;
    // The blocker's fingerprint never answers until its deadline; rounds follow each other.
    std::fs::copy(
        std::path::Path::new(env!("CARAVAN_TESTING_DRIVERS_DIR")).join("blocker.wasm"),
        plugin_dir.join("blocker.wasm"),
    )?;
    let mut options = options(dir.path());
    options.plugin_dir = Some(plugin_dir);
    options
        .plugins
        .insert("blocker".to_owned(), json!({ "capabilities": ["process"] }));
    options.driver_limits.fingerprint_timeout = Duration::from_secs(4);
    // The blocker's fingerprint spins: a CPU budget past the deadline lets the deadline cut it.
    options.driver_limits.cpu_budget = Duration::from_secs(60);
    options.driver_fingerprint_interval = Duration::from_millis(100);
    let link = Arc::new(FakeLink::new(Duration::from_millis(300)));
    let started = Instant::now();
    let client = Client::start(options, link.clone()).await?;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "start-up waited {:?} for the drivers",
        started.elapsed()
    );
    let node_id = client.node_id();
    assert!(wait_until(Duration::from_secs(15), || link.node(&node_id).is_some()).await);
    let node = link.node(&node_id).expect("registered");
    let blocker = &node.drivers["blocker"];
    assert!(
        !blocker.healthy && blocker.health_description.contains("no answer within 4s"),
        "{blocker:?}"
    );
    // raw_exec answers in its own deadline; on a loaded machine one round may still miss it,
    // so what is asserted is that a later round (not blocked by the blocker) reports it healthy.
    assert!(
        wait_until(Duration::from_secs(20), || link
            .node(&node_id)
            .is_some_and(|node| node.drivers["raw_exec"].healthy))
        .await,
        "raw_exec: {:?}",
        link.node(&node_id)
            .map(|node| node.drivers["raw_exec"].clone())
    );
    // A new round is blocked for 4 s from now on, and heartbeats (every 150-225 ms) go on.
    let before = link.heartbeats();
    assert!(
        wait_until(Duration::from_secs(3), || link.heartbeats() >= before + 8).await,
        "{} heartbeats in 3 s",
        link.heartbeats() - before
    );
    // Tasks see the drivers' attributes, fingerprinted after start-up.
    let alloc = alloc_for(
        &node_id,
        JobType::Batch,
        vec![sh_task("attrs", "echo raw_exec=${attr.driver.raw_exec}")],
    );
    let alloc_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    wait_status(&link, &alloc_id, AllocClientStatus::Complete).await;
    let stdout = std::fs::read_to_string(
        dir.path()
            .join(format!("alloc/{alloc_id}/alloc/logs/attrs.stdout.0")),
    )?;
    assert_eq!(stdout.trim(), "raw_exec=1");
    client.shutdown().await;
    Ok(())
}

/// A task service with a tcp check on a port the test listens on, and a script check run
/// through raw_exec's `exec`: registered with both checks passing while the task runs, the
/// script check failing once its file is gone, deregistered when the allocation stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_checks_and_deregisters_a_native_service() -> anyhow::Result<()> {
    use crate::structs::{AllocatedPort, CheckStatus, Service, ServiceCheck};
    let dir = tempfile::tempdir()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = i32::from(listener.local_addr()?.port());
    let marker = dir.path().join("healthy");
    std::fs::write(&marker, "")?;
    let link = Arc::new(FakeLink::new(Duration::from_secs(10)));
    let client = Client::start(options(dir.path()), link.clone()).await?;
    let node_id = client.node_id();
    let mut task = sh_task("web", "sleep 60");
    task.services = vec![Service {
        name: "web-${NOMAD_TASK_NAME}".to_owned(),
        port_label: "web".to_owned(),
        provider: "nomad".to_owned(),
        tags: vec!["a".to_owned()],
        checks: vec![
            ServiceCheck {
                name: "listening".to_owned(),
                check_type: "tcp".to_owned(),
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(1),
                ..ServiceCheck::default()
            },
            ServiceCheck {
                name: "marker".to_owned(),
                check_type: "script".to_owned(),
                command: "/bin/test".to_owned(),
                args: vec!["-f".to_owned(), marker.display().to_string()],
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(2),
                ..ServiceCheck::default()
            },
        ],
        ..Service::default()
    }];
    let mut alloc = alloc_for(&node_id, JobType::Service, vec![task]);
    alloc.allocated_resources.shared.ports = vec![AllocatedPort {
        label: "web".to_owned(),
        value: port,
        to: 0,
        host_ip: "127.0.0.1".to_owned(),
    }];
    let alloc_id = alloc.id.clone();
    link.upsert_alloc(alloc);
    let statuses = |link: &FakeLink| -> Option<BTreeMap<String, CheckStatus>> {
        link.services()
            .first()
            .map(|service| service.checks.clone())
    };
    let passing = wait_until(Duration::from_secs(20), || {
        statuses(&link).is_some_and(|checks| {
            checks.len() == 2
                && checks
                    .values()
                    .all(|status| *status == CheckStatus::Success)
        })
    })
    .await;
    assert!(passing, "checks never passed: {:?}", link.services());
    let registration = link.services().remove(0);
    assert_eq!(registration.service_name, "web-web");
    assert_eq!(registration.address, "127.0.0.1");
    assert_eq!(registration.port, port);
    assert_eq!(registration.tags, vec!["a".to_owned()]);
    assert_eq!(
        registration.id,
        format!("_nomad-task-{alloc_id}-web-web-web-web")
    );
    let runner = client.alloc_runner(alloc_id.as_str()).expect("runner");
    assert_eq!(runner.check_results().len(), 2);

    std::fs::remove_file(&marker)?;
    let failing = wait_until(Duration::from_secs(20), || {
        statuses(&link).is_some_and(|checks| checks.get("marker") == Some(&CheckStatus::Failure))
    })
    .await;
    assert!(failing, "script check never failed: {:?}", link.services());
    assert!(!runner.health().checks_passing());

    link.stop_alloc(&alloc_id);
    assert!(
        wait_until(Duration::from_secs(20), || link.services().is_empty()).await,
        "never deregistered: {:?}",
        link.services()
    );
    drop(listener);
    client.shutdown_and_stop_tasks().await;
    Ok(())
}

#[test]
fn pending_status_updates_go_out_in_requests_under_the_body_limit() {
    let mut pending: BTreeMap<AllocId, AllocUpdate> = (0..2_500)
        .map(|index| {
            let id = AllocId::from(format!("alloc-{index:05}"));
            let update = AllocUpdate {
                id: id.clone(),
                client_status: AllocClientStatus::Complete,
                ..AllocUpdate::default()
            };
            (id, update)
        })
        .collect();
    let mut sizes = Vec::new();
    let mut sent = std::collections::BTreeSet::new();
    while !pending.is_empty() {
        let batch = super::next_batch(&pending);
        sizes.push(batch.len());
        for update in &batch {
            pending.remove(&update.id);
            sent.insert(update.id.clone());
        }
    }
    assert_eq!(sizes, [1_000, 1_000, 500]);
    assert_eq!(sent.len(), 2_500);
}
