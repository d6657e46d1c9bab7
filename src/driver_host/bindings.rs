//! The one `bindgen!` of the driver contract `caravan:driver@0.2.1` (drivers/wit/driver.wit).
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
