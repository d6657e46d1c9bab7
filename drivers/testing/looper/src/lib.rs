//! A misbehaving driver: every task call spins forever. The host must cut it off at the call's
//! deadline (epoch interruption) and stay up.

use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExitResult, Fingerprint, RawExit, StartedTask,
    TaskConfig, TaskHandle,
};

struct Looper;

fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

impl Driver for Looper {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("looper", "0.1.0", Capabilities::default())
    }
    fn fingerprint(_plugin_config: String) -> Fingerprint {
        spin()
    }
    fn start_task(_config: TaskConfig) -> Result<StartedTask, DriverError> {
        spin()
    }
    fn interpret_exit(_handle: TaskHandle, _exit: RawExit) -> ExitResult {
        spin()
    }
}

caravan_driver_sdk::export_driver!(Looper);
