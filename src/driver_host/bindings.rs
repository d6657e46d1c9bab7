//! The `bindgen!`s: the driver contract `caravan:driver@0.2.1` (drivers/wit/driver.wit) and, in
//! [`device`], the device-plugin contract.
//!
//! Imports (the host capabilities) and exports are async: a guest calling `host-process.wait`
//! suspends its call on the host future and never blocks an agent thread.

wasmtime::component::bindgen!({
    path: "drivers/wit",
    world: "driver",
    imports: { default: async },
    exports: { default: async },
});

pub(crate) use self::caravan::driver::types as wit;

/// The one `bindgen!` of the device-plugin contract `caravan:device@0.1.0`
/// (drivers/devices/wit/device.wit).
pub(crate) mod device {
    wasmtime::component::bindgen!({
        path: "drivers/devices/wit",
        world: "device-plugin",
        imports: { default: async },
        exports: { default: async },
    });
}
