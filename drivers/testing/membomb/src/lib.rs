//! A misbehaving driver: every task call allocates memory without bound. The host's memory cap
//! (StoreLimits) must stop it and the host must stay up.

use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExitResult, Fingerprint, RawExit, StartedTask,
    TaskConfig, TaskHandle,
};

struct MemBomb;

fn allocate_forever() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // 1 MiB at a time, touched so that it is really committed.
        hoard.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

impl Driver for MemBomb {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("membomb", "0.1.0", Capabilities::default())
    }
    fn fingerprint(_plugin_config: String) -> Fingerprint {
        allocate_forever()
    }
    fn start_task(_config: TaskConfig) -> Result<StartedTask, DriverError> {
        allocate_forever()
    }
    fn interpret_exit(_handle: TaskHandle, _exit: RawExit) -> ExitResult {
        allocate_forever()
    }
}

caravan_driver_sdk::export_driver!(MemBomb);
