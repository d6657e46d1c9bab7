//! `caravan job init [-short] [FILE]`: writes the example job, a Redis cache on Docker.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::JobInitArgs;
use super::output::outln;

/// The commented example job, as `job init` writes it.
pub const EXAMPLE_JOB: &str = include_str!("assets/example.nomad.hcl");
/// The same job without comments, as `job init -short` writes it.
pub const EXAMPLE_JOB_SHORT: &str = include_str!("assets/example-short.nomad.hcl");

pub fn run(args: &JobInitArgs) -> anyhow::Result<ExitCode> {
    let contents = if args.short {
        EXAMPLE_JOB_SHORT
    } else {
        EXAMPLE_JOB
    };
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.filename)
    {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            anyhow::bail!(
                "job file {:?} already exists",
                args.filename.display().to_string()
            )
        }
        Err(err) => {
            return Err(err)
                .with_context(|| format!("failed to create {}", args.filename.display()));
        }
    };
    file.write_all(contents.as_bytes())
        .with_context(|| format!("failed to write {}", args.filename.display()))?;
    outln!("Example job file written to {}", args.filename.display())?;
    Ok(ExitCode::SUCCESS)
}
