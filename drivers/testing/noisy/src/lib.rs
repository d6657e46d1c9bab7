//! A misbehaving driver (log only): its fingerprint floods the host log (5,000 lines of 16 KiB)
//! and reports 200,000 attributes. The host must bound both: the agent's log and the node's
//! registration stay small, and the node registers.

use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, Fingerprint, Health, StartedTask, TaskConfig,
};

struct Noisy;

impl Driver for Noisy {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("noisy", "0.1.0", Capabilities::default())
    }
    fn fingerprint(_plugin_config: String) -> Fingerprint {
        let line = "flood ".repeat((16 << 10) / 6);
        for _ in 0..5_000 {
            caravan_driver_sdk::log::info(&line);
        }
        let attributes = (0..200_000)
            .map(|index| (format!("driver.noisy.attr{index:06}"), String::from("1")))
            .collect();
        Fingerprint {
            health: Health::Healthy,
            description: String::from("noisy but healthy"),
            attributes,
        }
    }
    fn start_task(_config: TaskConfig) -> Result<StartedTask, DriverError> {
        Err(caravan_driver_sdk::unsupported("start-task"))
    }
}

caravan_driver_sdk::export_driver!(Noisy);
