//! The `caravan` binary: parses the command line and runs it. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    match caravan::cli::run(std::env::args_os()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(1)
        }
    }
}
