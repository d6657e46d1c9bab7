//! `caravan config validate PATH...`: loads, merges and checks agent configuration.

use std::process::ExitCode;

use anyhow::Context;

use super::ConfigValidateArgs;
use super::output::outln;
use crate::agent::config::AgentConfig;

pub fn run(args: &ConfigValidateArgs) -> anyhow::Result<ExitCode> {
    let config = AgentConfig::load_paths(&args.paths).context("error loading configuration")?;
    config.validate()?;
    outln!("Configuration is valid!")?;
    Ok(ExitCode::SUCCESS)
}
