//! Capability `host-log`: a driver's log lines go to the agent's tracing, tagged with the driver.

use crate::driver_host::bindings::caravan::driver::host_log::{Host, Level};
use crate::driver_host::instance::CallState;

/// Longest message kept; a driver cannot flood the agent's log with one line.
const MAX_MESSAGE_BYTES: usize = 8 << 10;

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let driver = &*self.driver;
        match level {
            Level::Trace => tracing::trace!(driver, message, "driver log"),
            Level::Debug => tracing::debug!(driver, message, "driver log"),
            Level::Info => tracing::info!(driver, message, "driver log"),
            Level::Warn => tracing::warn!(driver, message, "driver log"),
            Level::Error => tracing::error!(driver, message, "driver log"),
        }
    }
}
