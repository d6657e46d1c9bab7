//! The `docker` driver: runs a task as a container of the node's Docker daemon, as Nomad's docker
//! driver does (Nomad: drivers/docker/driver.go), through capability `host-docker`.
//!
//! Task config: see `config.rs` (`image`, `command`, `args`, `entrypoint`, `ports`, `port_map`,
//! `network_mode`, `volumes`, `mount`, `labels`, `hostname`, `work_dir`, `privileged`, `load`,
//! `force_pull`, `auth`, `auth_soft_fail`). The allocation directory is mounted at `/alloc`, the
//! task's `local` and `secrets` at `/local` and `/secrets`; `resources.cpu` becomes CPU shares,
//! `resources.memory` the memory limit (the reservation when `memory_max` sets the limit).
//!
//! The host enforces the sandbox (which containers a call may touch, `allow_privileged`,
//! `volumes.enabled`); the driver holds the logic (config, image, ports, mounts, exits). Its
//! handle state is the container id and the log files, so `recover-task` re-attaches to a
//! container that kept running across an agent restart.

mod config;

use caravan_driver_sdk::host::docker::{self, ContainerExit};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExecResult, ExitResult, Fingerprint,
    FsIsolation, Health, RawExit, StartedTask, TaskConfig, TaskHandle, TaskState, TaskStats,
    TaskStatus, Waitable,
};
use serde::{Deserialize, Serialize};

use crate::config::DockerConfig;

/// What the handle keeps.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    container_id: String,
    image: String,
    stdout_path: String,
    stderr_path: String,
}

struct DockerDriver;

fn failed(context: &str) -> impl FnOnce(String) -> DriverError + '_ {
    move |err| DriverError::Failed(format!("{context}: {err}"))
}

fn exit_result(exit: ContainerExit) -> ExitResult {
    let err = match (exit.oom_killed, exit.error) {
        (true, _) => Some(String::from("OOM Killed")),
        (false, error) => error,
    };
    ExitResult {
        exit_code: exit.exit_code,
        signal: 0,
        oom_killed: exit.oom_killed,
        err,
    }
}

/// Makes sure the image is on the node: loaded from the task's archive, or pulled when missing
/// (or always with `force_pull`). Errors carry Docker's own message.
fn ensure_image(block: &DockerConfig, config: &TaskConfig) -> Result<(), DriverError> {
    if let Some(archive) = block.load.as_deref().filter(|path| !path.is_empty()) {
        let loaded = docker::load_image(archive)
            .map_err(|err| DriverError::Failed(format!("failed to load image {archive}: {err}")))?;
        caravan_driver_sdk::log::debug(&format!("loaded {loaded:?} from {archive}"));
    }
    let present = docker::inspect_image(&block.image)
        .map_err(failed(&format!("failed to inspect image {}", block.image)))?
        .is_some();
    if present && !block.force_pull {
        return Ok(());
    }
    let auth = block.registry_auth(config)?;
    let pulled = match docker::pull_image(&block.image, auth.as_ref()) {
        Err(err) if auth.is_some() && block.auth_soft_fail => {
            caravan_driver_sdk::log::warn(&format!(
                "pulling {} with credentials failed ({err}); trying without",
                block.image
            ));
            docker::pull_image(&block.image, None)
        }
        other => other,
    };
    pulled.map_err(|err| DriverError::Failed(format!("failed to pull `{}`: {err}", block.image)))
}

fn state_of(handle: &TaskHandle) -> Result<State, DriverError> {
    caravan_driver_sdk::decode_state(handle)
}

/// A container call's error for a container that is gone or not ours: `task-not-found`.
fn not_found_or_failed(handle: &TaskHandle, context: &str, err: String) -> DriverError {
    let gone = err.contains("No such container") || err.contains("not created by driver");
    if gone {
        DriverError::TaskNotFound(format!("task {}: {err}", handle.id))
    } else {
        DriverError::Failed(format!("{context}: {err}"))
    }
}

impl Driver for DockerDriver {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info(
            "docker",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                send_signals: true,
                exec: true,
                fs_isolation: FsIsolation::Image,
            },
        )
    }

    fn config_schema() -> String {
        String::from(
            r#"{"type":"object","required":["image"],"properties":{"image":{"type":"string","minLength":1},"command":{"type":"string"},"args":{"type":"array","items":{"type":"string"}},"entrypoint":{"type":"array","items":{"type":"string"}},"ports":{"type":"array","items":{"type":"string"}},"port_map":{},"network_mode":{"type":"string"},"volumes":{"type":"array","items":{"type":"string"}},"mount":{"type":"array"},"mounts":{"type":"array"},"labels":{},"hostname":{"type":"string"},"work_dir":{"type":"string"},"privileged":{"type":"boolean"},"load":{"type":"string"},"force_pull":{"type":"boolean"},"auth":{},"auth_soft_fail":{"type":"boolean"}}}"#,
        )
    }

    /// Healthy when the daemon answers (Nomad: drivers/docker/fingerprint.go); otherwise
    /// undetected, so the scheduler places no docker task on this node.
    fn fingerprint(plugin_config: String) -> Fingerprint {
        let plugin: serde_json::Value =
            serde_json::from_str(&plugin_config).unwrap_or(serde_json::Value::Null);
        match docker::daemon_version() {
            Ok(version) => {
                let mut attributes = vec![
                    (String::from("driver.docker"), String::from("1")),
                    (
                        String::from("driver.docker.version"),
                        version.version.clone(),
                    ),
                    (
                        String::from("driver.docker.api_version"),
                        version.api_version,
                    ),
                    (String::from("driver.docker.os_type"), version.os),
                    (String::from("driver.docker.arch"), version.arch),
                ];
                if plugin
                    .get("allow_privileged")
                    .and_then(serde_json::Value::as_bool)
                    == Some(true)
                {
                    attributes.push((
                        String::from("driver.docker.privileged.enabled"),
                        String::from("true"),
                    ));
                }
                Fingerprint {
                    health: Health::Healthy,
                    description: format!("healthy: Docker {}", version.version),
                    attributes,
                }
            }
            Err(err) => Fingerprint {
                health: Health::Undetected,
                description: format!("Failed to connect to docker daemon: {err}"),
                attributes: Vec::new(),
            },
        }
    }

    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        let block = DockerConfig::parse(&config)?;
        let spec = block.container_spec(&config)?;
        ensure_image(&block, &config)?;
        let container_id = docker::create_container(&spec).map_err(failed(&format!(
            "failed to create container from {}",
            block.image
        )))?;
        if let Err(err) = docker::start_container(&container_id) {
            let _ = docker::remove_container(&container_id, true);
            return Err(DriverError::Failed(format!(
                "failed to start container {container_id}: {err}"
            )));
        }
        caravan_driver_sdk::log::debug(&format!(
            "task {} started as container {container_id}",
            config.id
        ));
        let state = State {
            container_id: container_id.clone(),
            image: block.image,
            stdout_path: config.stdout_path.clone(),
            stderr_path: config.stderr_path.clone(),
        };
        Ok(caravan_driver_sdk::started(
            &config,
            caravan_driver_sdk::encode_state(&state)?,
            Waitable::Container(container_id),
        ))
    }

    /// Docker's view of the end: an OOM kill is named as Nomad names it.
    fn interpret_exit(_handle: TaskHandle, exit: RawExit) -> ExitResult {
        exit_result(ContainerExit {
            exit_code: exit.exit_code,
            oom_killed: exit.oom_killed,
            error: exit.detail,
        })
    }

    fn stop_task(handle: TaskHandle, timeout_ms: u64, signal: String) -> Result<(), DriverError> {
        let state = state_of(&handle)?;
        docker::stop_container(&state.container_id, timeout_ms, &signal)
            .map_err(|err| not_found_or_failed(&handle, "failed to stop the container", err))
    }

    fn destroy_task(handle: TaskHandle, force: bool) -> Result<(), DriverError> {
        let state = state_of(&handle)?;
        if !force {
            let running = docker::container_state(&state.container_id)
                .map(|status| status.running)
                .unwrap_or(false);
            if running {
                return Err(DriverError::Failed(format!(
                    "task {} still runs; destroy it with force",
                    handle.id
                )));
            }
        }
        docker::remove_container(&state.container_id, true)
            .map_err(failed("failed to remove the container"))
    }

    fn inspect_task(handle: TaskHandle) -> Result<TaskStatus, DriverError> {
        let state = state_of(&handle)?;
        let status = docker::container_state(&state.container_id)
            .map_err(|err| not_found_or_failed(&handle, "inspect", err))?;
        let task_state = if status.running {
            TaskState::Running
        } else {
            TaskState::Exited(exit_result(ContainerExit {
                exit_code: status.exit_code,
                oom_killed: status.oom_killed,
                error: None,
            }))
        };
        Ok(TaskStatus {
            id: handle.id,
            state: task_state,
            attributes: vec![
                (String::from("container_id"), state.container_id),
                (String::from("image"), state.image),
                (String::from("status"), status.status),
                (String::from("pid"), status.pid.to_string()),
            ],
        })
    }

    /// Re-attaches to the container: streams its logs again if it still runs; one that exited
    /// while the agent was away is recovered too, so the host's wait reports its exit code.
    fn recover_task(handle: TaskHandle) -> Result<(), DriverError> {
        let state = state_of(&handle)?;
        let status = docker::container_state(&state.container_id)
            .map_err(|err| not_found_or_failed(&handle, "recover", err))?;
        if status.running {
            docker::follow_logs(&state.container_id, &state.stdout_path, &state.stderr_path)
                .map_err(failed("failed to stream the container's logs"))?;
        }
        Ok(())
    }

    fn signal_task(handle: TaskHandle, signal: String) -> Result<(), DriverError> {
        let state = state_of(&handle)?;
        docker::signal_container(&state.container_id, &signal)
            .map_err(|err| not_found_or_failed(&handle, "failed to signal the container", err))
    }

    fn exec_task(
        handle: TaskHandle,
        cmd: Vec<String>,
        timeout_ms: u64,
    ) -> Result<ExecResult, DriverError> {
        if cmd.is_empty() {
            return Err(DriverError::InvalidConfig(String::from(
                "exec needs a command",
            )));
        }
        let state = state_of(&handle)?;
        let output = docker::exec_container(&state.container_id, &cmd, timeout_ms)
            .map_err(|err| not_found_or_failed(&handle, "exec", err))?;
        Ok(ExecResult {
            exit_code: output.exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn task_stats(handle: TaskHandle) -> Result<TaskStats, DriverError> {
        let state = state_of(&handle)?;
        let stats = docker::stats_container(&state.container_id)
            .map_err(|err| not_found_or_failed(&handle, "stats", err))?;
        let pids = docker::container_state(&state.container_id)
            .ok()
            .map(|status| status.pid)
            .filter(|pid| *pid != 0)
            .into_iter()
            .collect();
        Ok(TaskStats {
            timestamp_ms: stats.timestamp_ms,
            cpu_user_ms: stats.cpu_user_ms,
            cpu_system_ms: stats.cpu_system_ms,
            memory_rss_bytes: stats.memory_rss_bytes,
            pids,
        })
    }
}

caravan_driver_sdk::export_driver!(DockerDriver);
