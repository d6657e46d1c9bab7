//! Capability `host-config`: the calling driver's own plugin config block, as JSON.
//!
//! Always granted (as `host-log`): it is the operator's `plugin "NAME" { config {...} }` for this
//! very driver, which its `fingerprint` receives anyway; other drivers' blocks are never visible.
//! Drivers use it to enforce the operator's policy in task calls (qemu's `args_allowlist`).

use crate::driver_host::bindings::caravan::driver::host_config::Host;
use crate::driver_host::instance::CallState;

impl Host for CallState {
    async fn plugin_config(&mut self) -> String {
        self.runtime
            .plugins
            .get(&*self.driver)
            .map_or_else(|| String::from("{}"), serde_json::Value::to_string)
    }
}
