//! A misbehaving driver: every task call panics, which traps the instance. The host must fail
//! only that call.

use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExitResult, Fingerprint, TaskConfig, TaskHandle,
};

struct Trapper;

impl Driver for Trapper {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("trapper", "0.1.0", Capabilities::default())
    }
    fn fingerprint(plugin_config: String) -> Fingerprint {
        panic!("trapper fingerprint with {plugin_config}")
    }
    fn start_task(config: TaskConfig) -> Result<TaskHandle, DriverError> {
        panic!("trapper start-task {}", config.id)
    }
    fn wait_task(handle: TaskHandle) -> Result<ExitResult, DriverError> {
        panic!("trapper wait-task {}", handle.id)
    }
}

caravan_driver_sdk::export_driver!(Trapper);
