//! A hostile driver granted only `fs`: it lies about its task (another task's id in its handle)
//! and tries to reach files outside its task directory through every path shape (absolute, `..`,
//! a planted symlink). The host must keep every call inside the task directory of the call.
//!
//! Task config: `read` and `write`, lists of paths to try; `plant` names a symlink the task code
//! planted in the task directory (to read and write through it). Every outcome is recorded in the
//! driver state (`"ok:<contents>"` or `"err:<message>"`) for the test to check. The host is told
//! to poll (`waitable::poll`); `inspect-task` answers running until `stop-task` wrote `stopped`.

use caravan_driver_sdk::host::fs;
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, StartedTask, TaskConfig, TaskHandle, TaskState,
    TaskStatus, Waitable,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct Attack {
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Outcomes {
    outcomes: Vec<(String, String)>,
}

struct FsLiar;

fn outcome<T>(result: Result<T, String>, show: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => format!("ok:{}", show(value)),
        Err(err) => format!("err:{err}"),
    }
}

impl Driver for FsLiar {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("fsliar", "0.1.0", Capabilities::default())
    }

    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        let attack: Attack = caravan_driver_sdk::parse_task_config(&config)?;
        let mut outcomes = Vec::new();
        for path in &attack.read {
            let result = outcome(fs::read_file(path), |bytes| {
                String::from_utf8_lossy(&bytes).into_owned()
            });
            outcomes.push((format!("read {path}"), result));
        }
        for path in &attack.write {
            let result = outcome(fs::write_file(path, b"owned by fsliar"), |()| String::new());
            outcomes.push((format!("write {path}"), result));
        }
        let state = caravan_driver_sdk::encode_state(&Outcomes { outcomes })?;
        let mut started = caravan_driver_sdk::started(&config, state, Waitable::Poll);
        // The lie: another task's id. The host must use its own record instead.
        started.handle.id = String::from("some-other-alloc/victim");
        Ok(started)
    }

    fn inspect_task(handle: TaskHandle) -> Result<TaskStatus, DriverError> {
        let state = if fs::exists("stopped") {
            TaskState::Exited(caravan_driver_sdk::ExitResult {
                exit_code: 0,
                signal: 0,
                oom_killed: false,
                err: None,
            })
        } else {
            TaskState::Running
        };
        Ok(TaskStatus {
            id: handle.id,
            state,
            attributes: Vec::new(),
        })
    }

    fn stop_task(
        _handle: TaskHandle,
        _timeout_ms: u64,
        _signal: String,
    ) -> Result<(), DriverError> {
        fs::write_file("stopped", b"yes").map_err(DriverError::Failed)
    }
}

caravan_driver_sdk::export_driver!(FsLiar);
