//! The `upgrader` driver, shared by its two builds (`upgrade_v1`, `upgrade_v2`), which differ only
//! in `info().version`: a task started under one version is re-attached and stopped by the other.
//! Every call that concerns a task writes a marker through `host-fs` naming the version that
//! served it (`recovered-by-<version>`, `stopped-by-<version>`), and logs it.

use caravan_driver_sdk::host::{fs, process};
use caravan_driver_sdk::{
    Capabilities, DriverError, DriverInfo, StartedTask, TaskConfig, TaskHandle, TaskState,
    TaskStatus, Waitable,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct State {
    pid: u32,
}

pub fn info(version: &str) -> DriverInfo {
    caravan_driver_sdk::driver_info("upgrader", version, Capabilities::default())
}

pub fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
    let pid = process::spawn(&process::SpawnRequest {
        command: String::from("/bin/sh"),
        args: vec![String::from("-c"), String::from("exec sleep 300")],
        env: Vec::new(),
        cwd: String::new(),
    })
    .map_err(DriverError::Failed)?;
    let state = caravan_driver_sdk::encode_state(&State { pid })?;
    Ok(caravan_driver_sdk::started(
        &config,
        state,
        Waitable::Process(pid),
    ))
}

pub fn recover_task(version: &str, handle: TaskHandle) -> Result<(), DriverError> {
    let state: State = caravan_driver_sdk::decode_state(&handle)?;
    if !process::is_alive(state.pid) {
        return Err(DriverError::TaskNotFound(format!(
            "pid {} is gone",
            state.pid
        )));
    }
    caravan_driver_sdk::log::info(&format!("upgrader {version} recovered pid {}", state.pid));
    fs::write_file(
        &format!("recovered-by-{version}"),
        state.pid.to_string().as_bytes(),
    )
    .map_err(DriverError::Failed)
}

pub fn stop_task(version: &str, handle: TaskHandle, timeout_ms: u64) -> Result<(), DriverError> {
    let state: State = caravan_driver_sdk::decode_state(&handle)?;
    caravan_driver_sdk::log::info(&format!("upgrader {version} stopping pid {}", state.pid));
    fs::write_file(
        &format!("stopped-by-{version}"),
        state.pid.to_string().as_bytes(),
    )
    .map_err(DriverError::Failed)?;
    process::signal_group(state.pid, "SIGTERM").map_err(DriverError::Failed)?;
    if process::wait(state.pid, timeout_ms)
        .map_err(DriverError::Failed)?
        .is_none()
    {
        process::signal_group(state.pid, "SIGKILL").map_err(DriverError::Failed)?;
    }
    Ok(())
}

pub fn inspect_task(version: &str, handle: TaskHandle) -> Result<TaskStatus, DriverError> {
    let state: State = caravan_driver_sdk::decode_state(&handle)?;
    let task_state = match process::wait(state.pid, 0).map_err(DriverError::Failed)? {
        Some(_) => TaskState::Unknown,
        None => TaskState::Running,
    };
    Ok(TaskStatus {
        id: handle.id,
        state: task_state,
        attributes: vec![
            (String::from("pid"), state.pid.to_string()),
            (String::from("version"), version.to_owned()),
        ],
    })
}
