//! A misbehaving driver (granted `process`): its fingerprint never answers (it spins: with no
//! task, no host capability can make it wait, so the guest burns CPU until the host cuts it at its
//! deadline), and its `start-task` blocks in a host call that never returns on its own (`sleep
//! 3600` through `host-process.exec`). The host must cut each call at its deadline, report the
//! driver unhealthy, keep the node's heartbeats and API going, and let its `stop-task` through
//! even while its `start-task` calls hold every slot of its lane.

use caravan_driver_sdk::host::process::{self, ExecRequest};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, Fingerprint, StartedTask, TaskConfig,
    TaskHandle,
};

struct Blocker;

/// Blocks for an hour in the host, in the task directory of the call.
fn block() {
    let _ = process::exec(&ExecRequest {
        command: String::from("/bin/sleep"),
        args: vec![String::from("3600")],
        env: Vec::new(),
        cwd: String::new(),
        timeout_ms: 3_600_000,
    });
}

impl Driver for Blocker {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("blocker", "0.1.0", Capabilities::default())
    }
    fn fingerprint(_plugin_config: String) -> Fingerprint {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }
    fn start_task(_config: TaskConfig) -> Result<StartedTask, DriverError> {
        block();
        Err(DriverError::Failed(String::from("woke up")))
    }
    fn stop_task(_handle: TaskHandle, _timeout_ms: u64, _signal: String) -> Result<(), DriverError> {
        Ok(())
    }
}

caravan_driver_sdk::export_driver!(Blocker);
