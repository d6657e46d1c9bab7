//! The `raw_exec` driver: runs a command as a native process of the node, unisolated, as Nomad's
//! raw_exec does (Nomad: drivers/rawexec/driver.go). Disabled unless the operator enables it.
//!
//! Task config: `command` (required), `args`. The task directory is the working directory, the
//! task's environment is the whole environment, stdout/stderr go to the task's log files (the
//! host's choice), the user is the task's under the operator's policy.
//!
//! The driver holds the logic (validate, build the command line, escalate a stop); capability
//! `host-process` does the system calls, and the host waits on the process (`waitable::process`).
//! The handle's driver state is the pid plus what `exec-task` needs, so `recover-task` re-attaches
//! by pid after an agent restart or an upgrade (the host has re-registered the task's pids first).

use caravan_driver_sdk::host::process::{self, ExecRequest, ProcessExit, SpawnRequest};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExecResult, ExitResult, Fingerprint,
    FsIsolation, Health, StartedTask, TaskConfig, TaskHandle, TaskState, TaskStats, TaskStatus,
    Waitable,
};
use serde::{Deserialize, Serialize};

/// The task's `config { ... }` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskConfigBlock {
    command: String,
    #[serde(default)]
    args: Vec<String>,
}

/// What the handle keeps.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    pid: u32,
    command: String,
    env: Vec<(String, String)>,
}

/// How long to wait for the process to go after SIGKILL.
const KILL_GRACE_MS: u64 = 5_000;

struct RawExec;

fn failed(context: &str) -> impl FnOnce(String) -> DriverError + '_ {
    move |err| DriverError::Failed(format!("{context}: {err}"))
}

fn exit_result(exit: ProcessExit) -> ExitResult {
    ExitResult {
        exit_code: exit.exit_code,
        signal: exit.signal,
        oom_killed: false,
        err: exit.detail,
    }
}

fn validate(config: &TaskConfig) -> Result<TaskConfigBlock, DriverError> {
    let block: TaskConfigBlock = caravan_driver_sdk::parse_task_config(config)?;
    if block.command.trim().is_empty() {
        return Err(DriverError::InvalidConfig(format!(
            "task {}: config.command must not be empty",
            config.name
        )));
    }
    Ok(block)
}

impl Driver for RawExec {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info(
            "raw_exec",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                send_signals: true,
                exec: true,
                fs_isolation: FsIsolation::None,
            },
        )
    }

    fn config_schema() -> String {
        String::from(
            r#"{"type":"object","additionalProperties":false,"required":["command"],"properties":{"command":{"type":"string","minLength":1},"args":{"type":"array","items":{"type":"string"}}}}"#,
        )
    }

    fn fingerprint(_plugin_config: String) -> Fingerprint {
        // Being loaded at all means the operator enabled raw_exec (the host refuses it otherwise).
        Fingerprint {
            health: Health::Healthy,
            description: String::from("healthy"),
            attributes: vec![(String::from("driver.raw_exec"), String::from("1"))],
        }
    }

    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        let block = validate(&config)?;
        let pid = process::spawn(&SpawnRequest {
            command: block.command.clone(),
            args: block.args,
            env: config.env.clone(),
            cwd: String::new(),
        })
        .map_err(failed("cannot start the command"))?;
        caravan_driver_sdk::log::debug(&format!("task {} started as pid {pid}", config.id));
        let state = State {
            pid,
            command: block.command,
            env: config.env.clone(),
        };
        Ok(caravan_driver_sdk::started(
            &config,
            caravan_driver_sdk::encode_state(&state)?,
            Waitable::Process(pid),
        ))
    }

    fn stop_task(handle: TaskHandle, timeout_ms: u64, signal: String) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        if !process::is_alive(state.pid) {
            return Ok(());
        }
        let signal = if signal.is_empty() {
            String::from("SIGTERM")
        } else {
            signal
        };
        process::signal_group(state.pid, &signal).map_err(failed("cannot signal the task"))?;
        if process::wait(state.pid, timeout_ms)
            .map_err(failed("wait"))?
            .is_some()
        {
            return Ok(());
        }
        caravan_driver_sdk::log::info(&format!(
            "task {} still runs {timeout_ms} ms after {signal}: sending SIGKILL",
            handle.id
        ));
        process::signal_group(state.pid, "SIGKILL").map_err(failed("cannot kill the task"))?;
        match process::wait(state.pid, KILL_GRACE_MS).map_err(failed("wait"))? {
            Some(_) => Ok(()),
            None => Err(DriverError::Failed(format!(
                "pid {} survived SIGKILL",
                state.pid
            ))),
        }
    }

    fn destroy_task(handle: TaskHandle, force: bool) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let alive = process::is_alive(state.pid);
        if alive && !force {
            return Err(DriverError::Failed(format!(
                "task {} still runs; destroy it with force",
                handle.id
            )));
        }
        // Also when the leader is gone: children it left behind in its process group go too.
        // An empty group is no error.
        let _ = process::signal_group(state.pid, "SIGKILL");
        if alive {
            process::wait(state.pid, KILL_GRACE_MS).map_err(failed("wait"))?;
        }
        Ok(())
    }

    fn inspect_task(handle: TaskHandle) -> Result<TaskStatus, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let task_state = match process::wait(state.pid, 0).map_err(failed("wait"))? {
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
        if process::is_alive(state.pid) {
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
        process::signal(state.pid, &signal).map_err(failed("cannot signal the task"))
    }

    fn exec_task(
        handle: TaskHandle,
        cmd: Vec<String>,
        timeout_ms: u64,
    ) -> Result<ExecResult, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let mut words = cmd.into_iter();
        let Some(command) = words.next() else {
            return Err(DriverError::InvalidConfig(String::from(
                "exec needs a command",
            )));
        };
        let output = process::exec(&ExecRequest {
            command,
            args: words.collect(),
            env: state.env,
            cwd: String::new(),
            timeout_ms,
        })
        .map_err(failed("exec"))?;
        Ok(ExecResult {
            exit_code: output.exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn task_stats(handle: TaskHandle) -> Result<TaskStats, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let stats = process::stats(state.pid).map_err(failed("stats"))?;
        Ok(TaskStats {
            timestamp_ms: stats.timestamp_ms,
            cpu_user_ms: stats.cpu_user_ms,
            cpu_system_ms: stats.cpu_system_ms,
            memory_rss_bytes: stats.memory_rss_bytes,
            pids: stats.pids,
        })
    }
}

caravan_driver_sdk::export_driver!(RawExec);

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_driver_sdk::Resources;

    fn config(json: &str) -> TaskConfig {
        TaskConfig {
            id: String::from("alloc/web"),
            name: String::from("web"),
            alloc_id: String::from("alloc"),
            job_name: String::from("job"),
            group_name: String::from("group"),
            config_json: json.to_owned(),
            env: Vec::new(),
            task_dir: String::from("/alloc/web"),
            stdout_path: String::from("/alloc/logs/web.stdout.0"),
            stderr_path: String::from("/alloc/logs/web.stderr.0"),
            resources: Resources {
                cpu_mhz: 100,
                memory_mb: 64,
                memory_max_mb: 0,
            },
            ports: Vec::new(),
            user: None,
        }
    }

    #[test]
    fn command_and_args_are_read() {
        let block =
            validate(&config(r#"{"command":"/bin/sh","args":["-c","true"]}"#)).expect("valid");
        assert_eq!(block.command, "/bin/sh");
        assert_eq!(block.args, ["-c", "true"]);
    }

    #[test]
    fn a_missing_empty_or_misspelt_key_is_invalid() {
        for json in [
            r#"{}"#,
            r#"{"command":"  "}"#,
            r#"{"command":"x","arg":[]}"#,
        ] {
            let err = validate(&config(json)).expect_err(json);
            assert!(
                matches!(err, DriverError::InvalidConfig(_)),
                "{json}: {err:?}"
            );
        }
    }
}
