//! Hook `devices`: before the task starts, asks the device plugin that reported each device group
//! the task was given for what the task gets (env such as `NVIDIA_VISIBLE_DEVICES`), and adds
//! that env to the task's. The answer is kept as the hook's state, so a task recovered after an
//! agent restart keeps its env without asking again. Mounts and device nodes are for container
//! drivers; none acts on them yet.
//!
//! Nomad: `client/allocrunner/taskrunner/device_hook.go`.

use std::collections::BTreeMap;

use super::hooks::{HookError, HookFuture, Prestart, PrestartRequest, PrestartResponse, TaskHook};
use crate::driver_host::DriverHost;

pub const NAME: &str = "devices";

/// The `devices` hook; in the list only for tasks given device instances.
pub struct DevicesHook {
    pub driver_host: DriverHost,
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
                && let Some(env) = req.previous::<BTreeMap<String, String>>()
            {
                resp.env = env.clone();
                resp.set_state(&env)?;
                return Ok(());
            }
            let devices = req
                .alloc
                .allocated_resources
                .tasks
                .get(&req.task.name)
                .map(|resources| resources.devices.clone())
                .unwrap_or_default();
            let mut env = BTreeMap::new();
            for device in &devices {
                let reservation = self
                    .driver_host
                    .reserve_device_group(&device.id(), &device.device_ids)
                    .await
                    .map_err(|err| HookError::new(err.to_string()))?;
                env.extend(reservation.env);
            }
            resp.env = env.clone();
            resp.set_state(&env)?;
            Ok(())
        })
    }
}
