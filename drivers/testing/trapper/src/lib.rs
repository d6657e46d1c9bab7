//! A misbehaving driver: every task call panics, which traps the instance. The host must fail
//! only that call.

use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExitResult, Fingerprint, RawExit, StartedTask,
    TaskConfig, TaskHandle,
};

struct Trapper;

impl Driver for Trapper {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("trapper", "0.1.0", Capabilities::default())
    }
    fn fingerprint(plugin_config: String) -> Fingerprint {
        panic!("trapper fingerprint with {plugin_config}")
    }
    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        panic!("trapper start-task {}", config.id)
    }
    fn interpret_exit(handle: TaskHandle, _exit: RawExit) -> ExitResult {
        panic!("trapper interpret-exit {}", handle.id)
    }
}

caravan_driver_sdk::export_driver!(Trapper);
