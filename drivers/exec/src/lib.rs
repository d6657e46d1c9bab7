//! The `exec` driver: a command isolated without a container image, as Nomad's exec driver
//! (Nomad: drivers/exec/driver.go): its task directory as the root of a chroot, its own PID,
//! mount and IPC namespaces, the job's `user` (default `nobody`), memory and CPU limits in a
//! cgroup, the whole process tree killed on stop.
//!
//! Task config: `command` (required), `args`, `pid_mode` and `ipc_mode` (`private`/`host`; unset:
//! the plugin's `default_pid_mode`/`default_ipc_mode`), `cap_add`, `cap_drop`. Plugin config:
//! `allow_caps` (default Nomad's list), `default_pid_mode`, `default_ipc_mode`, and for the host
//! `chroot_env`, `user_denylist`, `default_user`.
//!
//! The driver holds the logic (validate, choose modes and capabilities, escalate a stop);
//! capability `host-isolated` does the system calls and enforces every limit again from the
//! host's own records, and the host waits on the process (`waitable::process`), reporting an OOM
//! kill in its cgroup. Fingerprint: healthy only when the agent runs as root with namespaces and
//! a cgroup memory controller, otherwise undetected with the reason.

use caravan_driver_sdk::host::isolated::{self, IsolatedExit, IsolatedRequest};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExecResult, ExitResult, Fingerprint,
    FsIsolation, Health, StartedTask, TaskConfig, TaskHandle, TaskState, TaskStats, TaskStatus,
    Waitable,
};
use serde::{Deserialize, Serialize};

/// Nomad's default capabilities of an exec task, also the default `allow_caps`.
const DEFAULT_CAPS: [&str; 13] = [
    "audit_write",
    "chown",
    "dac_override",
    "fowner",
    "fsetid",
    "kill",
    "mknod",
    "net_bind_service",
    "setfcap",
    "setgid",
    "setpcap",
    "setuid",
    "sys_chroot",
];

/// How long to wait for the process to go after the cgroup was killed.
const KILL_GRACE_MS: u64 = 5_000;

/// The task's `config { ... }` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskConfigBlock {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    pid_mode: String,
    #[serde(default)]
    ipc_mode: String,
    #[serde(default)]
    cap_add: Vec<String>,
    #[serde(default)]
    cap_drop: Vec<String>,
}

/// The parts of the plugin config the driver checks (the host checks them again).
#[derive(Debug, Deserialize)]
struct PluginConfig {
    #[serde(default)]
    allow_caps: Option<Vec<String>>,
    #[serde(default)]
    default_pid_mode: Option<String>,
    #[serde(default)]
    default_ipc_mode: Option<String>,
}

impl PluginConfig {
    fn parse(json: &str) -> Result<PluginConfig, String> {
        let config: PluginConfig =
            serde_json::from_str(json).map_err(|err| format!("plugin config: {err}"))?;
        for (key, value) in [
            ("default_pid_mode", &config.default_pid_mode),
            ("default_ipc_mode", &config.default_ipc_mode),
        ] {
            if let Some(mode) = value
                && mode != "private"
                && mode != "host"
            {
                return Err(format!(
                    "plugin config {key}: expected \"private\" or \"host\", got {mode:?}"
                ));
            }
        }
        Ok(config)
    }

    fn allow_caps(&self) -> Vec<String> {
        match &self.allow_caps {
            Some(caps) => caps.iter().map(|cap| normalize_cap(cap)).collect(),
            None => DEFAULT_CAPS.iter().map(|cap| (*cap).to_owned()).collect(),
        }
    }
}

/// What the handle keeps.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    pid: u32,
    command: String,
}

struct Exec;

fn failed(context: &str) -> impl FnOnce(String) -> DriverError + '_ {
    move |err| DriverError::Failed(format!("{context}: {err}"))
}

/// `CAP_NET_RAW`, `cap_net_raw` and `net_raw` all name `net_raw`.
fn normalize_cap(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    lower.strip_prefix("cap_").unwrap_or(&lower).to_owned()
}

/// The task's capabilities (Nomad: drivers/shared/capabilities `Calculate`): Nomad's defaults
/// within `allow_caps`, plus `cap_add` (each must be allowed), minus `cap_drop` (`all` drops all).
fn task_caps(allow: &[String], add: &[String], drop: &[String]) -> Result<Vec<String>, String> {
    let all_allowed = allow.iter().any(|cap| cap == "all");
    let mut caps: Vec<String> = DEFAULT_CAPS
        .iter()
        .map(|cap| (*cap).to_owned())
        .filter(|cap| all_allowed || allow.contains(cap))
        .collect();
    let refused: Vec<String> = add
        .iter()
        .map(|cap| normalize_cap(cap))
        .filter(|cap| !all_allowed && !allow.contains(cap))
        .collect();
    if !refused.is_empty() {
        return Err(format!(
            "cap_add: the plugin's allow_caps does not allow {}",
            refused.join(", ")
        ));
    }
    for cap in add.iter().map(|cap| normalize_cap(cap)) {
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    let drop: Vec<String> = drop.iter().map(|cap| normalize_cap(cap)).collect();
    if drop.iter().any(|cap| cap == "all") {
        caps.clear();
    }
    caps.retain(|cap| !drop.contains(cap));
    caps.sort();
    Ok(caps)
}

/// The namespace mode of a task: its own, else the plugin's default; `host` only where the
/// plugin's default is `host` (the host enforces the same).
fn namespace_mode(key: &str, task: &str, default: Option<&str>) -> Result<String, String> {
    let default = default.unwrap_or("private");
    let mode = if task.is_empty() { default } else { task };
    match mode {
        "private" => Ok(String::from("private")),
        "host" if default == "host" => Ok(String::from("host")),
        "host" => Err(format!(
            "{key} = \"host\" needs the plugin config's default_{key} = \"host\""
        )),
        other => Err(format!(
            "{key}: expected \"private\" or \"host\", got {other:?}"
        )),
    }
}

fn request(config: &TaskConfig, plugin: &PluginConfig) -> Result<IsolatedRequest, DriverError> {
    let block: TaskConfigBlock = caravan_driver_sdk::parse_task_config(config)?;
    let invalid =
        |message: String| DriverError::InvalidConfig(format!("task {}: {message}", config.name));
    if block.command.trim().is_empty() {
        return Err(invalid(String::from("config.command must not be empty")));
    }
    let pid_mode = namespace_mode(
        "pid_mode",
        &block.pid_mode,
        plugin.default_pid_mode.as_deref(),
    )
    .map_err(invalid)?;
    let ipc_mode = namespace_mode(
        "ipc_mode",
        &block.ipc_mode,
        plugin.default_ipc_mode.as_deref(),
    )
    .map_err(invalid)?;
    let caps = task_caps(&plugin.allow_caps(), &block.cap_add, &block.cap_drop).map_err(invalid)?;
    Ok(IsolatedRequest {
        command: block.command,
        args: block.args,
        env: config.env.clone(),
        pid_mode,
        ipc_mode,
        caps,
    })
}

fn exit_result(exit: IsolatedExit) -> ExitResult {
    ExitResult {
        exit_code: exit.exit_code,
        signal: exit.signal,
        oom_killed: exit.oom_killed,
        err: exit.detail,
    }
}

fn plugin_config() -> Result<PluginConfig, DriverError> {
    PluginConfig::parse(&caravan_driver_sdk::host::config::plugin_config())
        .map_err(DriverError::InvalidConfig)
}

impl Driver for Exec {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info(
            "exec",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                send_signals: true,
                exec: false,
                fs_isolation: FsIsolation::Chroot,
            },
        )
    }

    fn config_schema() -> String {
        String::from(
            r#"{"type":"object","additionalProperties":false,"required":["command"],"properties":{"command":{"type":"string","minLength":1},"args":{"type":"array","items":{"type":"string"}},"pid_mode":{"enum":["private","host"]},"ipc_mode":{"enum":["private","host"]},"cap_add":{"type":"array","items":{"type":"string"}},"cap_drop":{"type":"array","items":{"type":"string"}}}}"#,
        )
    }

    fn fingerprint(plugin_config: String) -> Fingerprint {
        let undetected = |description: String| Fingerprint {
            health: Health::Undetected,
            description,
            attributes: Vec::new(),
        };
        if let Err(err) = PluginConfig::parse(&plugin_config) {
            return Fingerprint {
                health: Health::Unhealthy,
                description: err,
                attributes: Vec::new(),
            };
        }
        let support = isolated::isolated_support();
        if !support.root {
            return undetected(String::from("exec needs an agent running as root"));
        }
        if !support.namespaces {
            return undetected(String::from(
                "mount, PID and IPC namespaces are not available",
            ));
        }
        if support.cgroups == "none" {
            return undetected(String::from(
                "no cgroup hierarchy with the memory controller",
            ));
        }
        Fingerprint {
            health: Health::Healthy,
            description: String::from("healthy"),
            attributes: vec![
                (String::from("driver.exec"), String::from("1")),
                (String::from("driver.exec.cgroups"), support.cgroups),
            ],
        }
    }

    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        let request = request(&config, &plugin_config()?)?;
        let pid = isolated::spawn_isolated(&request).map_err(failed("cannot start the command"))?;
        caravan_driver_sdk::log::debug(&format!(
            "task {} started isolated as pid {pid}",
            config.id
        ));
        let state = State {
            pid,
            command: request.command,
        };
        Ok(caravan_driver_sdk::started(
            &config,
            caravan_driver_sdk::encode_state(&state)?,
            Waitable::Process(pid),
        ))
    }

    fn stop_task(handle: TaskHandle, timeout_ms: u64, signal: String) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        if !isolated::is_alive_isolated(state.pid) {
            // Whatever the task left behind goes with it.
            return isolated::kill_isolated(state.pid).map_err(failed("cannot kill the task"));
        }
        let signal = if signal.is_empty() {
            String::from("SIGTERM")
        } else {
            signal
        };
        isolated::signal_isolated(state.pid, &signal).map_err(failed("cannot signal the task"))?;
        if isolated::wait_isolated(state.pid, timeout_ms)
            .map_err(failed("wait"))?
            .is_some()
        {
            return isolated::kill_isolated(state.pid).map_err(failed("cannot kill the task"));
        }
        caravan_driver_sdk::log::info(&format!(
            "task {} still runs {timeout_ms} ms after {signal}: killing its cgroup",
            handle.id
        ));
        isolated::kill_isolated(state.pid).map_err(failed("cannot kill the task"))?;
        match isolated::wait_isolated(state.pid, KILL_GRACE_MS).map_err(failed("wait"))? {
            Some(_) => Ok(()),
            None => Err(DriverError::Failed(format!(
                "pid {} survived SIGKILL",
                state.pid
            ))),
        }
    }

    fn destroy_task(handle: TaskHandle, force: bool) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let alive = isolated::is_alive_isolated(state.pid);
        if alive && !force {
            return Err(DriverError::Failed(format!(
                "task {} still runs; destroy it with force",
                handle.id
            )));
        }
        isolated::kill_isolated(state.pid).map_err(failed("cannot kill the task"))?;
        if alive {
            isolated::wait_isolated(state.pid, KILL_GRACE_MS).map_err(failed("wait"))?;
        }
        Ok(())
    }

    fn inspect_task(handle: TaskHandle) -> Result<TaskStatus, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let task_state = match isolated::wait_isolated(state.pid, 0).map_err(failed("wait"))? {
            Some(exit) => TaskState::Exited(exit_result(exit)),
            None => TaskState::Running,
        };
        Ok(TaskStatus {
            id: handle.id,
            state: task_state,
            attributes: vec![
                (String::from("pid"), state.pid.to_string()),
                (String::from("command"), state.command),
            ],
        })
    }

    fn recover_task(handle: TaskHandle) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        if isolated::is_alive_isolated(state.pid) {
            Ok(())
        } else {
            Err(DriverError::TaskNotFound(format!(
                "task {}: pid {} is gone",
                handle.id, state.pid
            )))
        }
    }

    fn signal_task(handle: TaskHandle, signal: String) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        isolated::signal_isolated(state.pid, &signal).map_err(failed("cannot signal the task"))
    }

    fn exec_task(
        _handle: TaskHandle,
        _cmd: Vec<String>,
        _timeout_ms: u64,
    ) -> Result<ExecResult, DriverError> {
        Err(DriverError::Unsupported(String::from(
            "exec: running a command inside an exec task is not supported yet",
        )))
    }

    fn task_stats(handle: TaskHandle) -> Result<TaskStats, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let stats = isolated::stats_isolated(state.pid).map_err(failed("stats"))?;
        Ok(TaskStats {
            timestamp_ms: stats.timestamp_ms,
            cpu_user_ms: stats.cpu_user_ms,
            cpu_system_ms: stats.cpu_system_ms,
            memory_rss_bytes: stats.memory_rss_bytes,
            pids: stats.pids,
        })
    }
}

caravan_driver_sdk::export_driver!(Exec);

#[cfg(test)]
mod tests;
