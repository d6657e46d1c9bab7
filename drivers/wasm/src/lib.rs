//! The `wasm` driver: caravan's native WebAssembly tasks. A task runs a WASI program (a p1 module or
//! a p2 command component) inside the agent, in its own store, through capability `host-wasm`.
//!
//! Task config: `module` (path relative to the task directory; the host refuses absolute paths,
//! `..` and symlinks), `args`, `env` (merged over the task's environment), `memory_limit_mb`
//! (default: the task's memory_max or memory, else 64; the host caps it at the task's memory),
//! `fuel` (unlimited when absent). The task directory is preopened as `.` and nothing else of the
//! host is visible; stdout/stderr go to the task's log files; stop interrupts the workload. The
//! host waits on the workload (`waitable::workload`).

use caravan_driver_sdk::host::fs;
use caravan_driver_sdk::host::wasm::{self, Workload, WorkloadExit};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExitResult, FsIsolation, StartedTask,
    TaskConfig, TaskHandle, TaskState, TaskStats, TaskStatus, Waitable,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskConfigBlock {
    module: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    memory_limit_mb: Option<u64>,
    fuel: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    workload_id: u64,
    module_path: String,
}

const DEFAULT_MEMORY_MB: u64 = 64;

struct WasmDriver;

fn failed(context: &str) -> impl FnOnce(String) -> DriverError + '_ {
    move |err| DriverError::Failed(format!("{context}: {err}"))
}

fn exit_result(exit: WorkloadExit) -> ExitResult {
    ExitResult {
        exit_code: exit.exit_code,
        signal: 0,
        oom_killed: false,
        err: exit.trap,
    }
}

/// Validates the config block and builds the workload.
fn workload(config: &TaskConfig) -> Result<Workload, DriverError> {
    let block: TaskConfigBlock = caravan_driver_sdk::parse_task_config(config)?;
    if block.module.trim().is_empty() {
        return Err(DriverError::InvalidConfig(format!(
            "task {}: config.module must not be empty",
            config.name
        )));
    }
    if block.module.starts_with('/') {
        return Err(DriverError::InvalidConfig(format!(
            "task {}: config.module {:?} must be relative to the task directory",
            config.name, block.module
        )));
    }
    let module_path = block.module.trim_start_matches("./").to_owned();
    let resources_mb = match config.resources.memory_max_mb {
        0 => config.resources.memory_mb,
        max => max,
    };
    let memory_mb = block.memory_limit_mb.unwrap_or(match resources_mb {
        0 => DEFAULT_MEMORY_MB,
        mb => u64::from(mb),
    });
    if memory_mb == 0 {
        return Err(DriverError::InvalidConfig(format!(
            "task {}: config.memory_limit_mb must be > 0",
            config.name
        )));
    }
    let mut env: BTreeMap<String, String> = config.env.iter().cloned().collect();
    env.extend(block.env);
    Ok(Workload {
        module_path,
        args: block.args,
        env: env.into_iter().collect(),
        dir: String::new(),
        max_memory_bytes: memory_mb.saturating_mul(1 << 20),
        fuel: block.fuel,
    })
}

impl Driver for WasmDriver {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info(
            "wasm",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                send_signals: false,
                exec: false,
                fs_isolation: FsIsolation::Chroot,
            },
        )
    }

    fn config_schema() -> String {
        String::from(
            r#"{"type":"object","additionalProperties":false,"required":["module"],"properties":{"module":{"type":"string","minLength":1},"args":{"type":"array","items":{"type":"string"}},"env":{"type":"object","additionalProperties":{"type":"string"}},"memory_limit_mb":{"type":"integer","minimum":1},"fuel":{"type":"integer","minimum":0}}}"#,
        )
    }

    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        let workload = workload(&config)?;
        if !fs::exists(&workload.module_path) {
            return Err(DriverError::InvalidConfig(format!(
                "task {}: config.module {:?} not found in the task directory",
                config.name, workload.module_path
            )));
        }
        let module_path = workload.module_path.clone();
        let workload_id = wasm::start(&workload).map_err(failed("cannot start the workload"))?;
        let state = State {
            workload_id,
            module_path,
        };
        Ok(caravan_driver_sdk::started(
            &config,
            caravan_driver_sdk::encode_state(&state)?,
            Waitable::Workload(workload_id),
        ))
    }

    fn stop_task(handle: TaskHandle, timeout_ms: u64, _signal: String) -> Result<(), DriverError> {
        // A workload has no signal handlers: any stop interrupts it at once.
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        if !wasm::is_running(state.workload_id) {
            return Ok(());
        }
        wasm::stop(state.workload_id).map_err(failed("stop"))?;
        match wasm::wait(state.workload_id, timeout_ms.max(1_000)).map_err(failed("wait"))? {
            Some(_) => Ok(()),
            None => Err(DriverError::Failed(format!(
                "workload {} did not stop",
                state.workload_id
            ))),
        }
    }

    fn destroy_task(handle: TaskHandle, force: bool) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        if wasm::is_running(state.workload_id) {
            if !force {
                return Err(DriverError::Failed(format!(
                    "task {} still runs; destroy it with force",
                    handle.id
                )));
            }
            wasm::stop(state.workload_id).map_err(failed("stop"))?;
        }
        Ok(())
    }

    fn inspect_task(handle: TaskHandle) -> Result<TaskStatus, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let task_state = match wasm::wait(state.workload_id, 0) {
            Ok(Some(exit)) => TaskState::Exited(exit_result(exit)),
            Ok(None) => TaskState::Running,
            Err(_) => TaskState::Unknown,
        };
        Ok(TaskStatus {
            id: handle.id,
            state: task_state,
            attributes: vec![
                (String::from("workload_id"), state.workload_id.to_string()),
                (String::from("module"), state.module_path),
            ],
        })
    }

    fn recover_task(handle: TaskHandle) -> Result<(), DriverError> {
        // Workloads live inside the agent: after an agent restart they are gone and the client
        // restarts the task.
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        if wasm::is_running(state.workload_id) {
            Ok(())
        } else {
            Err(DriverError::TaskNotFound(format!(
                "task {}: workload {} is gone",
                handle.id, state.workload_id
            )))
        }
    }

    fn task_stats(handle: TaskHandle) -> Result<TaskStats, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let stats = wasm::stats(state.workload_id).map_err(failed("stats"))?;
        Ok(TaskStats {
            timestamp_ms: 0,
            cpu_user_ms: 0,
            cpu_system_ms: 0,
            memory_rss_bytes: stats.memory_bytes,
            pids: Vec::new(),
        })
    }
}

caravan_driver_sdk::export_driver!(WasmDriver);

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_driver_sdk::Resources;

    // `workload` builds the spec only; `start_task` asks the host (`host-fs`) whether the module
    // exists, which native tests lack.
    fn config(json: &str, memory_mb: u32, memory_max_mb: u32) -> TaskConfig {
        TaskConfig {
            id: String::from("alloc/app"),
            name: String::from("app"),
            alloc_id: String::from("alloc"),
            job_name: String::from("job"),
            group_name: String::from("group"),
            config_json: json.to_owned(),
            env: vec![
                (String::from("A"), String::from("task")),
                (String::from("B"), String::from("task")),
            ],
            task_dir: String::from("/alloc/app"),
            stdout_path: String::from("/alloc/logs/app.stdout.0"),
            stderr_path: String::from("/alloc/logs/app.stderr.0"),
            resources: Resources {
                cpu_mhz: 100,
                memory_mb,
                memory_max_mb,
            },
            ports: Vec::new(),
            user: None,
        }
    }

    #[test]
    fn memory_comes_from_config_then_memory_max_then_memory() {
        let limit = |json: &str, memory, max| {
            workload(&config(json, memory, max))
                .expect("valid")
                .max_memory_bytes
        };
        assert_eq!(
            limit(r#"{"module":"m.wasm","memory_limit_mb":8}"#, 64, 128),
            8 << 20
        );
        assert_eq!(limit(r#"{"module":"m.wasm"}"#, 64, 128), 128 << 20);
        assert_eq!(limit(r#"{"module":"m.wasm"}"#, 64, 0), 64 << 20);
        assert_eq!(
            limit(r#"{"module":"m.wasm"}"#, 0, 0),
            DEFAULT_MEMORY_MB << 20
        );
    }

    #[test]
    fn config_env_overrides_the_task_env() {
        let workload = workload(&config(
            r#"{"module":"m.wasm","env":{"B":"config"},"fuel":5}"#,
            0,
            0,
        ))
        .expect("valid");
        assert_eq!(
            workload.env,
            [
                (String::from("A"), String::from("task")),
                (String::from("B"), String::from("config"))
            ]
        );
        assert_eq!(workload.fuel, Some(5));
        assert_eq!(workload.dir, "");
        assert_eq!(workload.module_path, "m.wasm");
    }

    #[test]
    fn invalid_configs_name_the_problem() {
        for json in [
            r#"{}"#,
            r#"{"module":""}"#,
            r#"{"module":"/abs/m.wasm"}"#,
            r#"{"module":"m.wasm","memory_limit_mb":0}"#,
            r#"{"module":"m.wasm","fule":1}"#,
        ] {
            let err = workload(&config(json, 0, 0)).expect_err(json);
            assert!(
                matches!(err, DriverError::InvalidConfig(_)),
                "{json}: {err:?}"
            );
        }
    }
}
