//! `counter`: a long-running WASI program that prints a line a second, forever.
//!
//! The first argument, when given, is the interval in milliseconds (tests use a short one).

use std::io::Write;
use std::time::Duration;

fn main() {
    let interval_ms = std::env::args()
        .nth(1)
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(1_000);
    let mut stdout = std::io::stdout();
    let mut count: u64 = 0;
    loop {
        // Each line is flushed at once so that `caravan alloc logs -f` sees it live.
        if writeln!(stdout, "count {count}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            std::process::exit(1);
        }
        count += 1;
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
}
