//! Helpers shared by the integration tests: running the real binary in a temp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `caravan` binary cargo built for these tests.
pub fn caravan_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_caravan"))
}

/// The repository's test data directory.
pub fn test_data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `caravan ARGS` in `dir` with no agent address in the environment.
pub fn caravan(dir: &Path, args: &[&str]) -> anyhow::Result<Run> {
    let output = Command::new(caravan_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("CARAVAN_ADDR")
        .env_remove("NOMAD_ADDR")
        .output()?;
    Ok(Run::from(output))
}
pub mod server;
