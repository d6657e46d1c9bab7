//! Version 2.0.0 of the `upgrader` fixture driver (see `upgrade_v1/src/common.rs`).

#[path = "../../upgrade_v1/src/common.rs"]
mod common;

use caravan_driver_sdk::{
    Driver, DriverError, DriverInfo, StartedTask, TaskConfig, TaskHandle, TaskStatus,
};

const VERSION: &str = "2.0.0";

struct Upgrader;

impl Driver for Upgrader {
    fn info() -> DriverInfo {
        common::info(VERSION)
    }
    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        common::start_task(config)
    }
    fn recover_task(handle: TaskHandle) -> Result<(), DriverError> {
        common::recover_task(VERSION, handle)
    }
    fn stop_task(handle: TaskHandle, timeout_ms: u64, _signal: String) -> Result<(), DriverError> {
        common::stop_task(VERSION, handle, timeout_ms)
    }
    fn inspect_task(handle: TaskHandle) -> Result<TaskStatus, DriverError> {
        common::inspect_task(VERSION, handle)
    }
}

caravan_driver_sdk::export_driver!(Upgrader);
