//! Capability `host-log`: a driver's log lines go to the agent's tracing, tagged with the driver.
//!
//! Bounded per driver, across its calls: a line keeps at most [`MAX_MESSAGE_BYTES`], and a driver
//! gets at most [`MAX_LINES_PER_INTERVAL`] lines per [`LOG_INTERVAL`]; the lines over it are
//! dropped and counted: the first drop of an interval says so once, and the count is logged with
//! the driver's next admitted line. A flooding driver therefore costs the agent's log at most about
//! 100 × 2 KiB a second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::driver_host::bindings::caravan::driver::host_log::{Host, Level};
use crate::driver_host::instance::CallState;

/// Longest message kept; longer ones are cut at a character boundary.
pub(crate) const MAX_MESSAGE_BYTES: usize = 2 << 10;

/// Lines one driver may log per interval.
pub(crate) const MAX_LINES_PER_INTERVAL: u32 = 100;

/// The rate limit's window.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// One driver's window.
struct Window {
    started: Instant,
    lines: u32,
    dropped_lines: u64,
    dropped_bytes: u64,
    /// Whether this interval's first drop was announced.
    announced: bool,
}

/// What to do with a line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log it; first report that many lines (and bytes) were dropped in the last interval(s).
    Log {
        dropped_lines: u64,
        dropped_bytes: u64,
    },
    /// Drop it; `announce` for the first line dropped in this interval.
    Drop { announce: bool },
}

/// The per-driver line budget, agent-wide (a driver's calls each have their own store).
#[derive(Default)]
pub(crate) struct LogLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

impl LogLimiter {
    pub(crate) fn admit(&self, driver: &str, bytes: usize, now: Instant) -> Verdict {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = windows.entry(driver.to_owned()).or_insert(Window {
            started: now,
            lines: 0,
            dropped_lines: 0,
            dropped_bytes: 0,
            announced: false,
        });
        if now.saturating_duration_since(window.started) >= LOG_INTERVAL {
            window.started = now;
            window.lines = 0;
            window.announced = false;
        }
        if window.lines >= MAX_LINES_PER_INTERVAL {
            window.dropped_lines += 1;
            window.dropped_bytes = window.dropped_bytes.saturating_add(bytes as u64);
            let announce = !window.announced;
            window.announced = true;
            return Verdict::Drop { announce };
        }
        window.lines += 1;
        let verdict = Verdict::Log {
            dropped_lines: window.dropped_lines,
            dropped_bytes: window.dropped_bytes,
        };
        window.dropped_lines = 0;
        window.dropped_bytes = 0;
        verdict
    }
}

/// `message` cut to at most `max` bytes at a character boundary.
fn truncate(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut end = max;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) {
        let driver = &*self.driver;
        let (dropped_lines, dropped_bytes) =
            match self
                .runtime
                .log
                .admit(driver, message.len(), Instant::now())
            {
                Verdict::Log {
                    dropped_lines,
                    dropped_bytes,
                } => (dropped_lines, dropped_bytes),
                Verdict::Drop { announce } => {
                    if announce {
                        tracing::warn!(
                            driver,
                            max_lines_per_second = MAX_LINES_PER_INTERVAL,
                            "driver log over its rate limit: dropping its lines for the rest of \
                             the interval"
                        );
                    }
                    return;
                }
            };
        if dropped_lines > 0 {
            tracing::warn!(
                driver,
                dropped_lines,
                dropped_bytes,
                max_lines_per_second = MAX_LINES_PER_INTERVAL,
                "driver log lines dropped: over the driver's rate limit"
            );
        }
        let message = truncate(message, MAX_MESSAGE_BYTES);
        match level {
            Level::Trace => tracing::trace!(driver, message, "driver log"),
            Level::Debug => tracing::debug!(driver, message, "driver log"),
            Level::Info => tracing::info!(driver, message, "driver log"),
            Level::Warn => tracing::warn!(driver, message, "driver log"),
            Level::Error => tracing::error!(driver, message, "driver log"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_gets_its_lines_per_interval_and_hears_what_it_lost() {
        let limiter = LogLimiter::default();
        let start = Instant::now();
        for _ in 0..MAX_LINES_PER_INTERVAL {
            assert_eq!(
                limiter.admit("noisy", 10, start),
                Verdict::Log {
                    dropped_lines: 0,
                    dropped_bytes: 0
                }
            );
        }
        assert_eq!(
            limiter.admit("noisy", 10, start),
            Verdict::Drop { announce: true }
        );
        for _ in 1..500 {
            assert_eq!(
                limiter.admit("noisy", 10, start),
                Verdict::Drop { announce: false }
            );
        }
        // Another driver has its own budget.
        assert!(matches!(
            limiter.admit("quiet", 10, start),
            Verdict::Log { .. }
        ));
        // The next interval reports the loss once.
        let later = start + LOG_INTERVAL;
        assert_eq!(
            limiter.admit("noisy", 10, later),
            Verdict::Log {
                dropped_lines: 500,
                dropped_bytes: 5000
            }
        );
        assert_eq!(
            limiter.admit("noisy", 10, later),
            Verdict::Log {
                dropped_lines: 0,
                dropped_bytes: 0
            }
        );
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("é".repeat(2000), 5), "éé");
        assert_eq!(truncate(String::from("short"), 100), "short");
        assert_eq!(
            truncate("x".repeat(10_000), MAX_MESSAGE_BYTES).len(),
            MAX_MESSAGE_BYTES
        );
    }
}
