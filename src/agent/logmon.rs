//! `caravan logmon`: the client's log collector as a process of its own (Nomad's logmon), which
//! the agent starts per task stream so tasks keep writing while the agent restarts.
//!
//! The agent is the composition root the CLI may reach; the collector itself is the client's
//! (`client::task_runner::log_collector`).

use std::path::PathBuf;

/// What `caravan logmon` collects: one stream of one task.
#[derive(Debug, Clone)]
pub struct LogmonArgs {
    pub alloc_dir: PathBuf,
    pub task: String,
    pub stream: String,
    pub max_files: usize,
    pub max_file_size: u64,
}

/// Runs one collector until its FIFO is removed.
pub fn run(args: LogmonArgs) -> std::io::Result<()> {
    crate::client::run_log_collector(
        args.alloc_dir,
        args.task,
        args.stream,
        args.max_files,
        args.max_file_size,
    )
}

/// Agents of this process run their collectors as `exe logmon ...` processes that outlive them.
pub fn collect_logs_in_processes(exe: PathBuf) {
    crate::client::CollectorMode::use_process_by_default(exe);
}
