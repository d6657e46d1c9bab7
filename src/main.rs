//! The `caravan` binary: parses the command line and runs it. Everything else lives in the library.

use std::process::ExitCode;

/// The agent allocates and frees many small objects (allocations, IDs, plan entries) from several
/// threads; mimalloc does that without glibc malloc's arena contention and fragmentation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match caravan::cli::run(std::env::args_os()) {
        Ok(code) => code,
        // A reader that closed the pipe has all it wants.
        Err(err) if caravan::cli::output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(1)
        }
    }
}
