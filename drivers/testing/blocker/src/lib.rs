//! A misbehaving driver (granted `process`): its fingerprint and its `start-task` block in a host
//! call that never returns on its own (`sleep 3600` through `host-process.exec`). The host must
//! cut each call at its deadline, report the driver unhealthy, keep the node's heartbeats and API
//! going, and let its `stop-task` through even while its `start-task` calls hold every slot of its
//! lane.

use caravan_driver_sdk::host::process::{self, ExecRequest};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExitResult, Fingerprint, Health, TaskConfig,
    TaskHandle,
};

struct Blocker;

/// Blocks for an hour in the host.
fn block() {
    let _ = process::exec(&ExecRequest {
        command: String::from("/bin/sleep"),
        args: vec![String::from("3600")],
        env: Vec::new(),
        cwd: String::from("/"),
        timeout_ms: 3_600_000,
    });
}

impl Driver for Blocker {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("blocker", "0.1.0", Capabilities::default())
    }
    fn fingerprint(_plugin_config: String) -> Fingerprint {
        block();
        Fingerprint {
            health: Health::Healthy,
            description: String::from("woke up"),
            attributes: Vec::new(),
        }
    }
    fn start_task(_config: TaskConfig) -> Result<TaskHandle, DriverError> {
        block();
        Err(DriverError::Failed(String::from("woke up")))
    }
    fn wait_task(_handle: TaskHandle) -> Result<ExitResult, DriverError> {
        Err(caravan_driver_sdk::unsupported("wait-task"))
    }
    fn stop_task(_handle: TaskHandle, _timeout_ms: u64, _signal: String) -> Result<(), DriverError> {
        Ok(())
    }
}

caravan_driver_sdk::export_driver!(Blocker);
