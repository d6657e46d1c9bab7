//! A misbehaving driver: it imports the `host-docker` capability, which no operator granted it.
//! The host must refuse to instantiate it and name the missing grant.

use caravan_driver_sdk::host::docker;
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, Fingerprint, Health, StartedTask, TaskConfig,
};

struct Ungranted;

impl Driver for Ungranted {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("ungranted", "0.1.0", Capabilities::default())
    }
    fn fingerprint(_plugin_config: String) -> Fingerprint {
        let description = match docker::inspect_container("caravan-probe") {
            Ok(json) => json,
            Err(err) => err,
        };
        Fingerprint {
            health: Health::Healthy,
            description,
            attributes: Vec::new(),
        }
    }
    fn start_task(_config: TaskConfig) -> Result<StartedTask, DriverError> {
        docker::pull_image("busybox", None).map_err(DriverError::Failed)?;
        Err(DriverError::Unsupported(String::from(
            "ungranted runs nothing",
        )))
    }
}

caravan_driver_sdk::export_driver!(Ungranted);
