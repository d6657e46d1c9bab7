//! Hook `devices`: before the task starts, asks the device plugin that reported each device group
//! the task was given for what the task gets, and hands it on: the env (such as
//! `NVIDIA_VISIBLE_DEVICES`) to the task's, the mounts and device nodes, and the NVIDIA GPUs
//! among the instances, to the start call's scope, where the host applies them to the container
//! it creates (`host-docker`: binds, `Devices`, `DeviceRequests`). Drivers without a container
//! (raw_exec, exec) get the env only, as Nomad's. The answer is kept as the hook's state, so a
//! task recovered after an agent restart keeps its env without asking again.
//!
//! Nomad: `client/allocrunner/taskrunner/device_hook.go`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hooks::{HookError, HookFuture, Prestart, PrestartRequest, PrestartResponse, TaskHook};
use crate::driver_host::{DriverHost, TaskDevices};
use crate::structs::AllocatedDeviceResource;

pub const NAME: &str = "devices";

/// The `devices` hook; in the list only for tasks given device instances.
pub struct DevicesHook {
    pub driver_host: DriverHost,
}

/// What the task was given: the hook's state.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Granted {
    env: BTreeMap<String, String>,
    #[serde(default)]
    devices: TaskDevices,
}

/// The NVIDIA GPUs among the instances given (vendor `nvidia`, type `gpu`): what Docker's
/// `nvidia` device requests name.
fn nvidia_gpus(devices: &[AllocatedDeviceResource]) -> Vec<String> {
    devices
        .iter()
        .filter(|device| device.vendor == "nvidia" && device.device_type == "gpu")
        .flat_map(|device| device.device_ids.iter().cloned())
        .collect()
}

impl TaskHook for DevicesHook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn as_prestart(&self) -> Option<&dyn Prestart> {
        Some(self)
    }
}

impl Prestart for DevicesHook {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            if req.recovering
                && let Some(granted) = req.previous::<Granted>()
            {
                resp.env = granted.env.clone();
                resp.devices = granted.devices.clone();
                resp.set_state(&granted)?;
                return Ok(());
            }
            let devices = req
                .alloc
                .allocated_resources
                .tasks
                .get(&req.task.name)
                .map(|resources| resources.devices.clone())
                .unwrap_or_default();
            let mut granted = Granted {
                devices: TaskDevices {
                    nvidia_gpus: nvidia_gpus(&devices),
                    ..TaskDevices::default()
                },
                ..Granted::default()
            };
            for device in &devices {
                let reservation = self
                    .driver_host
                    .reserve_device_group(&device.id(), &device.device_ids)
                    .await
                    .map_err(|err| HookError::new(err.to_string()))?;
                granted.devices.add(&reservation);
                granted.env.extend(reservation.env);
            }
            resp.env = granted.env.clone();
            resp.devices = granted.devices.clone();
            resp.set_state(&granted)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nvidia_gpus_become_gpu_requests() {
        let given = |vendor: &str, device_type: &str, ids: &[&str]| AllocatedDeviceResource {
            vendor: vendor.to_owned(),
            device_type: device_type.to_owned(),
            name: String::from("model"),
            device_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        };
        let devices = [
            given("nvidia", "gpu", &["GPU-1", "GPU-2"]),
            given("caravan-test", "gpu", &["sim-0"]),
            given("nvidia", "fpga", &["F-1"]),
        ];
        assert_eq!(nvidia_gpus(&devices), ["GPU-1", "GPU-2"]);
    }

    #[test]
    fn a_state_without_devices_reads() -> Result<(), serde_json::Error> {
        let granted: Granted = serde_json::from_value(serde_json::json!({ "env": { "A": "1" } }))?;
        assert_eq!(granted.env["A"], "1");
        assert!(granted.devices.is_empty());
        Ok(())
    }
}
