//! The docker driver through the driver host against the node's real Docker daemon, on the offline
//! test image `caravan-test/busybox:latest` (built by scripts/test-image.sh from busybox-static).
//!
//! Without a daemon the tests print why and pass on a developer machine; with `CI=true` they fail
//! (scripts/test.sh starts one with scripts/dockerd.sh).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use caravan::driver_host::{
    DriverError, DriverHost, DriverHostConfig, Error, Health, HostRecord, PortMapping, Resources,
    TaskConfig, TaskHandle, TaskScope, TaskState,
};
use serde_json::json;
use tempfile::TempDir;

pub(crate) const TEST_IMAGE: &str = "caravan-test/busybox:latest";

/// Whether a daemon answers and the test image is there; `false` (with the reason printed) lets a
/// test pass on a machine without Docker, except in CI.
pub(crate) fn docker_ready() -> Result<bool> {
    let answers = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !answers {
        if std::env::var("CI").as_deref() == Ok("true") {
            bail!("CI=true but no Docker daemon answers: run scripts/dockerd.sh start");
        }
        eprintln!("skipping: no Docker daemon answers (start one with scripts/dockerd.sh start)");
        return Ok(false);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-image.sh");
    let status = Command::new(&script)
        .arg(TEST_IMAGE)
        .status()
        .with_context(|| format!("run {}", script.display()))?;
    ensure!(status.success(), "{} failed", script.display());
    Ok(true)
}

pub(crate) fn docker_cli(args: &[&str]) -> Result<String> {
    let output = Command::new("docker").args(args).output()?;
    ensure!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// An allocation directory of its own, a driver host, and cleanup of the allocation's containers.
struct Fixture {
    dir: TempDir,
    alloc_id: String,
    host: DriverHost,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let filter = format!("label=caravan.alloc_id={}", self.alloc_id);
        if let Ok(ids) = docker_cli(&["ps", "-aq", "--filter", &filter]) {
            for id in ids.lines() {
                let _ = docker_cli(&["rm", "-f", id]);
            }
        }
    }
}

fn fixture(plugin_config: Option<serde_json::Value>) -> Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let mut plugins = BTreeMap::new();
    if let Some(config) = plugin_config {
        plugins.insert(String::from("docker"), config);
    }
    let host = DriverHost::new(DriverHostConfig {
        plugins,
        ..DriverHostConfig::default()
    })?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    Ok(Fixture {
        dir,
        alloc_id: format!("it-{nanos:x}"),
        host,
    })
}

impl Fixture {
    fn alloc_dir(&self) -> PathBuf {
        self.dir.path().join(&self.alloc_id)
    }

    /// A task laid out as the client does: `<alloc>/<task>/{local,secrets,tmp}`,
    /// `<alloc>/alloc/logs`, with its scope (the client's record) and config.
    fn task(&self, name: &str, config: serde_json::Value) -> Result<Task> {
        let alloc_dir = self.alloc_dir();
        let logs = alloc_dir.join("alloc").join("logs");
        std::fs::create_dir_all(&logs)?;
        let mut scope = TaskScope::new(
            &self.alloc_id,
            name,
            &alloc_dir,
            logs.join(format!("{name}.stdout.0")),
            logs.join(format!("{name}.stderr.0")),
        );
        for sub in ["local", "secrets", "tmp"] {
            std::fs::create_dir_all(scope.task_dir.join(sub))?;
        }
        scope.resources = Resources {
            cpu_mhz: 100,
            memory_mb: 64,
            memory_max_mb: 0,
        };
        Ok(Task {
            scope,
            config: TaskConfig {
                job_name: String::from("example"),
                group_name: String::from("web"),
                config,
                env: BTreeMap::from([
                    (String::from("NOMAD_TASK_NAME"), name.to_owned()),
                    (String::from("NOMAD_ALLOC_DIR"), String::from("/alloc")),
                ]),
                ..TaskConfig::default()
            },
        })
    }
}

/// A task: the client's record of it (its scope, also reachable through `Deref`) and its config.
struct Task {
    scope: TaskScope,
    config: TaskConfig,
}

impl std::ops::Deref for Task {
    type Target = TaskScope;
    fn deref(&self) -> &TaskScope {
        &self.scope
    }
}

impl std::ops::DerefMut for Task {
    fn deref_mut(&mut self) -> &mut TaskScope {
        &mut self.scope
    }
}

fn container_id(handle: &TaskHandle) -> Result<String> {
    let state: serde_json::Value = serde_json::from_slice(&handle.driver_state)?;
    Ok(state["container_id"]
        .as_str()
        .context("container_id in the driver state")?
        .to_owned())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn wait_for_text(path: &Path, needle: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if read(path).contains(needle) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "{} has no {needle:?} after {within:?}: {:?}",
        path.display(),
        read(path)
    )
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A plain HTTP/1.0 GET; the body of the answer.
fn http_get(port: u16) -> Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

pub(crate) async fn http_get_within(port: u16, within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    loop {
        match http_get(port) {
            Ok(answer) if answer.contains("200 OK") => return Ok(answer),
            other if Instant::now() >= deadline => bail!("no answer on port {port}: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn httpd_config() -> serde_json::Value {
    json!({
        "image": TEST_IMAGE,
        "command": "/bin/sh",
        "args": ["-c", "echo started; echo to-stderr >&2; exec httpd -f -p 8080 -h /www"],
        "ports": ["http"],
    })
}

#[tokio::test]
async fn docker_fingerprints_the_daemon_and_is_undetected_without_one() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = fixture(None)?;
    let docker = fixture.host.driver("docker").await?;
    let fingerprint = docker.fingerprint().await?;
    ensure!(fingerprint.health == Health::Healthy, "{fingerprint:?}");
    let version = docker_cli(&["version", "--format", "{{.Server.Version}}"])?;
    ensure!(
        fingerprint.attributes.get("driver.docker.version") == Some(&version),
        "{fingerprint:?}"
    );

    let missing = fixture_without_daemon()?;
    let fingerprint = missing.host.driver("docker").await?.fingerprint().await?;
    ensure!(fingerprint.health == Health::Undetected, "{fingerprint:?}");
    ensure!(
        fingerprint
            .description
            .contains("Failed to connect to docker daemon"),
        "{fingerprint:?}"
    );
    Ok(())
}

fn fixture_without_daemon() -> Result<Fixture> {
    fixture(Some(
        json!({ "endpoint": "unix:///nonexistent/docker.sock" }),
    ))
}

#[tokio::test]
async fn docker_runs_httpd_with_a_published_port_logs_mounts_exec_stats_and_stop() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = fixture(None)?;
    let docker = fixture.host.driver("docker").await?;
    let port = free_port()?;
    let mut task = fixture.task("web", httpd_config())?;
    task.config.ports = vec![PortMapping {
        label: String::from("http"),
        value: port,
        to: 8080,
        host_ip: String::from("127.0.0.1"),
    }];
    let handle = docker.start_task(&task.scope, &task.config).await?;
    let id = container_id(&handle)?;

    let answer = http_get_within(port, Duration::from_secs(10)).await?;
    ensure!(answer.contains("hello from caravan"), "{answer}");
    wait_for_text(&task.stdout_path, "started", Duration::from_secs(10)).await?;
    wait_for_text(&task.stderr_path, "to-stderr", Duration::from_secs(10)).await?;

    // Labels, resources and the allocation's directories.
    let labels = docker_cli(&["inspect", "--format", "{{json .Config.Labels}}", &id])?;
    let labels: BTreeMap<String, String> = serde_json::from_str(&labels)?;
    ensure!(
        labels.get("caravan.managed").map(String::as_str) == Some("true"),
        "{labels:?}"
    );
    ensure!(
        labels.get("caravan.alloc_id") == Some(&fixture.alloc_id),
        "{labels:?}"
    );
    ensure!(
        labels.get("caravan.task").map(String::as_str) == Some("web"),
        "{labels:?}"
    );
    let limits = docker_cli(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}}",
        &id,
    ])?;
    ensure!(limits == format!("{} 100", 64 << 20), "{limits}");
    let status = docker.inspect_task(&task.scope, &handle).await?;
    ensure!(status.state == TaskState::Running, "{status:?}");

    let exec = docker
        .exec_task(
            &task.scope,
            &handle,
            &[
                String::from("sh"),
                String::from("-c"),
                String::from("echo from-exec > /local/out.txt; echo shared > /alloc/shared.txt; cat /www/index.html; exit 3"),
            ],
            Duration::from_secs(10),
        )
        .await?;
    ensure!(exec.exit_code == 3, "{exec:?}");
    ensure!(
        String::from_utf8_lossy(&exec.stdout).contains("hello from caravan"),
        "{exec:?}"
    );
    ensure!(read(&task.task_dir.join("local/out.txt")) == "from-exec\n");
    ensure!(read(&fixture.alloc_dir().join("alloc/shared.txt")) == "shared\n");

    let stats = docker.task_stats(&task.scope, &handle).await?;
    ensure!(
        stats.memory_rss_bytes > 0 || !stats.pids.is_empty(),
        "{stats:?}"
    );

    // httpd as pid 1 ignores SIGTERM: the stop escalates to SIGKILL after the timeout.
    let started = Instant::now();
    docker
        .stop_task(&task.scope, &handle, Duration::from_secs(1), "")
        .await?;
    let exit = docker.wait_task(&task.scope, &handle).await?;
    ensure!(exit.exit_code == 137 || exit.exit_code == 143, "{exit:?}");
    ensure!(started.elapsed() < Duration::from_secs(20));
    docker.destroy_task(&task.scope, &handle, true).await?;
    ensure!(
        docker_cli(&["inspect", &id]).is_err(),
        "container {id} is still there"
    );
    Ok(())
}

#[tokio::test]
async fn docker_reports_exit_codes_and_delivers_signals() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = fixture(None)?;
    let docker = fixture.host.driver("docker").await?;
    let task = fixture.task(
        "exits",
        json!({ "image": TEST_IMAGE, "args": ["sh", "-c", "echo bye; exit 7"] }),
    )?;
    let handle = docker.start_task(&task.scope, &task.config).await?;
    let exit = docker.wait_task(&task.scope, &handle).await?;
    ensure!(exit.exit_code == 7 && !exit.oom_killed, "{exit:?}");
    ensure!(
        read(&task.stdout_path).contains("bye"),
        "logs are complete when the wait returns"
    );
    docker.destroy_task(&task.scope, &handle, false).await?;

    let task = fixture.task(
        "trapper",
        json!({
            "image": TEST_IMAGE,
            "entrypoint": ["/bin/sh", "-c"],
            "args": ["trap 'echo got-hup; exit 0' HUP; echo ready; while true; do sleep 0.1; done"],
        }),
    )?;
    let handle = docker.start_task(&task.scope, &task.config).await?;
    wait_for_text(&task.stdout_path, "ready", Duration::from_secs(10)).await?;
    docker.signal_task(&task.scope, &handle, "SIGHUP").await?;
    let exit = docker.wait_task(&task.scope, &handle).await?;
    ensure!(exit.exit_code == 0, "{exit:?}");
    ensure!(read(&task.stdout_path).contains("got-hup"));
    docker.destroy_task(&task.scope, &handle, true).await?;
    Ok(())
}

#[tokio::test]
async fn docker_bad_image_fails_with_dockers_message() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = fixture(None)?;
    let docker = fixture.host.driver("docker").await?;
    let task = fixture.task("bad", json!({ "image": "caravan-test/no-such-image:nope" }))?;
    let err = docker
        .start_task(&task.scope, &task.config)
        .await
        .expect_err("no such image");
    let message = err.to_string();
    ensure!(
        message.contains("failed to pull `caravan-test/no-such-image:nope`"),
        "{message}"
    );
    // Docker's own words follow (no registry here: a lookup or connection error; with one, "pull
    // access denied" or "manifest unknown").
    let (_, docker_text) = message
        .split_once("nope`: ")
        .context("the driver's prefix")?;
    ensure!(!docker_text.trim().is_empty(), "{message}");

    let task = fixture.task("invalid", json!({ "image": "Not/Valid:Ref" }))?;
    let err = docker
        .start_task(&task.scope, &task.config)
        .await
        .expect_err("invalid reference");
    ensure!(
        err.to_string().contains("invalid reference format"),
        "{err}"
    );

    let task = fixture.task("empty", json!({ "image": "" }))?;
    let err = docker
        .start_task(&task.scope, &task.config)
        .await
        .expect_err("empty image");
    ensure!(
        matches!(err.driver_error(), Some(DriverError::InvalidConfig(_))),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn docker_refuses_privileged_and_host_volumes_unless_allowed() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = fixture(None)?;
    let docker = fixture.host.driver("docker").await?;
    let task = fixture.task(
        "priv",
        json!({ "image": TEST_IMAGE, "args": ["true"], "privileged": true }),
    )?;
    let err = docker
        .start_task(&task.scope, &task.config)
        .await
        .expect_err("privileged");
    ensure!(err.to_string().contains("allow_privileged"), "{err}");
    let task = fixture.task(
        "vol",
        json!({ "image": TEST_IMAGE, "args": ["true"], "volumes": ["/etc:/host-etc:ro"] }),
    )?;
    let err = docker
        .start_task(&task.scope, &task.config)
        .await
        .expect_err("host volume");
    ensure!(err.to_string().contains("volumes"), "{err}");

    let open = fixture_allowing()?;
    let docker = open.host.driver("docker").await?;
    // Allowed, privileged passes the host's check; whether the daemon can grant it depends on the
    // machine (an unprivileged CI container cannot), so only the refusal is asserted.
    let task = open.task(
        "priv",
        json!({ "image": TEST_IMAGE, "args": ["true"], "privileged": true }),
    )?;
    if let Err(err) = docker.start_task(&task.scope, &task.config).await {
        ensure!(!err.to_string().contains("allow_privileged"), "{err}");
    }
    let task = open.task(
        "vol",
        json!({ "image": TEST_IMAGE, "args": ["cat", "/host-etc/hostname"], "volumes": ["/etc:/host-etc:ro"] }),
    )?;
    let handle = docker.start_task(&task.scope, &task.config).await?;
    let exit = docker.wait_task(&task.scope, &handle).await?;
    ensure!(exit.exit_code == 0, "{exit:?} {}", read(&task.stderr_path));
    docker.destroy_task(&task.scope, &handle, true).await?;
    Ok(())
}

fn fixture_allowing() -> Result<Fixture> {
    fixture(Some(
        json!({ "allow_privileged": true, "volumes": [{ "enabled": true }] }),
    ))
}

#[tokio::test]
async fn docker_scope_refuses_a_handle_forged_with_another_containers_id() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = fixture(None)?;
    let docker = fixture.host.driver("docker").await?;
    let sleeper = json!({ "image": TEST_IMAGE, "args": ["sleep", "300"] });
    let victim_task = fixture.task("victim", sleeper.clone())?;
    let victim = docker
        .start_task(&victim_task.scope, &victim_task.config)
        .await?;
    let attacker_task = fixture.task("attacker", sleeper)?;
    let attacker = docker
        .start_task(&attacker_task.scope, &attacker_task.config)
        .await?;

    // The attacker's handle with the victim's container id.
    let mut forged = attacker.clone();
    let mut state: serde_json::Value = serde_json::from_slice(&attacker.driver_state)?;
    state["container_id"] = json!(container_id(&victim)?);
    forged.driver_state = serde_json::to_vec(&state)?;
    let err = docker
        .stop_task(
            &attacker_task.scope,
            &forged,
            Duration::from_secs(1),
            "SIGKILL",
        )
        .await
        .expect_err("forged stop");
    ensure!(
        err.to_string()
            .contains("not created by driver docker for this task"),
        "{err}"
    );
    ensure!(
        matches!(err.driver_error(), Some(DriverError::TaskNotFound(_))),
        "{err}"
    );
    let err = docker
        .exec_task(
            &attacker_task.scope,
            &forged,
            &[String::from("id")],
            Duration::from_secs(5),
        )
        .await
        .expect_err("forged exec");
    ensure!(err.to_string().contains("refused"), "{err}");
    ensure!(
        docker
            .inspect_task(&victim_task.scope, &victim)
            .await?
            .state
            == TaskState::Running
    );

    // A container caravan did not create is out of reach too.
    let outsider = docker_cli(&["create", TEST_IMAGE, "sleep", "1"])?;
    state["container_id"] = json!(outsider);
    forged.driver_state = serde_json::to_vec(&state)?;
    let err = docker
        .destroy_task(&attacker_task.scope, &forged, true)
        .await
        .expect_err("outsider");
    ensure!(err.to_string().contains("refused"), "{err}");
    ensure!(docker_cli(&["inspect", &outsider]).is_ok());

    // Joining a network namespace: the allocation's own containers only.
    let joiner = |peer: &str| json!({ "image": TEST_IMAGE, "args": ["sleep", "300"], "network_mode": format!("container:{peer}") });
    let joiner_task = fixture.task("joiner", joiner(&outsider))?;
    let err = docker
        .start_task(&joiner_task.scope, &joiner_task.config)
        .await
        .expect_err("foreign namespace");
    ensure!(
        err.to_string()
            .contains("not a container of this allocation"),
        "{err}"
    );
    docker_cli(&["rm", "-f", &outsider])?;
    let sidecar_task = fixture.task("joiner", joiner(&container_id(&victim)?))?;
    let sidecar = docker
        .start_task(&sidecar_task.scope, &sidecar_task.config)
        .await?;
    ensure!(
        docker
            .inspect_task(&sidecar_task.scope, &sidecar)
            .await?
            .state
            == TaskState::Running
    );
    docker
        .destroy_task(&sidecar_task.scope, &sidecar, true)
        .await?;

    docker
        .destroy_task(&victim_task.scope, &victim, true)
        .await?;
    docker
        .destroy_task(&attacker_task.scope, &attacker, true)
        .await?;
    Ok(())
}

#[tokio::test]
async fn docker_recovers_a_running_container_after_an_agent_restart() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = fixture(None)?;
    let task = fixture.task(
        "long",
        json!({
            "image": TEST_IMAGE,
            "args": ["sh", "-c", "echo before; while [ ! -e /local/go ]; do sleep 0.1; done; echo after; exit 4"],
        }),
    )?;
    let handle = {
        let docker = fixture.host.driver("docker").await?;
        docker.start_task(&task.scope, &task.config).await?
    };
    wait_for_text(&task.stdout_path, "before", Duration::from_secs(10)).await?;
    // The client persists the handle as JSON; a new agent reads it back.
    let persisted = serde_json::to_string(&handle)?;
    let restarted = DriverHost::new(DriverHostConfig::default())?;
    let handle: TaskHandle = serde_json::from_str(&persisted)?;
    let docker = restarted.driver("docker").await?;
    docker
        .recover_task(&task.scope, &handle, &HostRecord::default())
        .await?;
    std::fs::write(task.task_dir.join("local/go"), "")?;
    let exit = docker.wait_task(&task.scope, &handle).await?;
    ensure!(exit.exit_code == 4, "{exit:?}");
    ensure!(
        read(&task.stdout_path).contains("after"),
        "{:?}",
        read(&task.stdout_path)
    );
    docker.destroy_task(&task.scope, &handle, true).await?;

    let err = docker
        .recover_task(&task.scope, &handle, &HostRecord::default())
        .await
        .expect_err("gone");
    ensure!(
        matches!(
            err,
            Error::Driver {
                error: DriverError::TaskNotFound(_),
                ..
            }
        ),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn docker_reports_an_oom_kill() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = fixture(None)?;
    let docker = fixture.host.driver("docker").await?;
    let mut task = fixture.task(
        "hog",
        json!({
            "image": TEST_IMAGE,
            "args": ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"],
        }),
    )?;
    task.resources.memory_mb = 16;
    let handle = docker.start_task(&task.scope, &task.config).await?;
    let exit = docker.wait_task(&task.scope, &handle).await?;
    ensure!(exit.oom_killed, "{exit:?}");
    ensure!(exit.err.as_deref() == Some("OOM Killed"), "{exit:?}");
    docker.destroy_task(&task.scope, &handle, true).await?;
    Ok(())
}

#[tokio::test]
async fn docker_loads_an_image_archive_from_the_task_dir_and_maps_legacy_ports() -> Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let fixture = fixture(None)?;
    let docker = fixture.host.driver("docker").await?;
    let image = format!("caravan-test/loaded:{}", fixture.alloc_id);
    let port = free_port()?;
    let mut task = fixture.task(
        "loaded",
        json!({
            "image": image,
            "load": "local/image.tar",
            "args": ["httpd", "-f", "-p", "9090", "-h", "/www"],
            "port_map": [{ "http": 9090 }],
            "labels": [{ "team": "caravan" }],
        }),
    )?;
    task.config.ports = vec![PortMapping {
        label: String::from("http"),
        value: port,
        to: 0,
        host_ip: String::from("127.0.0.1"),
    }];
    let archive = task.task_dir.join("local/image.tar");
    docker_cli(&["tag", TEST_IMAGE, &image])?;
    let archive_text = archive.display().to_string();
    docker_cli(&["save", "-o", &archive_text, &image])?;
    docker_cli(&["rmi", &image])?;

    let handle = docker.start_task(&task.scope, &task.config).await?;
    let answer = http_get_within(port, Duration::from_secs(10)).await?;
    ensure!(answer.contains("hello from caravan"), "{answer}");
    let id = container_id(&handle)?;
    ensure!(
        docker_cli(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"team\"}}",
            &id
        ])? == "caravan"
    );
    docker
        .stop_task(&task.scope, &handle, Duration::from_secs(1), "SIGKILL")
        .await?;
    docker.destroy_task(&task.scope, &handle, true).await?;
    docker_cli(&["rmi", &image])?;

    let task = fixture.task(
        "escape",
        json!({ "image": image, "load": "../../etc/image.tar" }),
    )?;
    let err = docker
        .start_task(&task.scope, &task.config)
        .await
        .expect_err("outside the task dir");
    ensure!(
        err.to_string().contains("leaves the task directory"),
        "{err}"
    );
    Ok(())
}

#[test]
fn the_test_image_job_file_parses_into_a_docker_task_config() -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jobs-docker/web.nomad.hcl");
    let job = caravan::jobspec::parse_file(&path, &caravan::jobspec::ParseConfig::default())?;
    let task = &job.task_groups[0].tasks[0];
    ensure!(task.driver == "docker");
    let config = serde_json::Value::Object(task.config.clone());
    ensure!(config["image"] == TEST_IMAGE, "{config}");
    ensure!(config["ports"] == json!(["http"]), "{config}");
    ensure!(config["labels"] == json!([{ "app": "web" }]), "{config}");
    Ok(())
}
