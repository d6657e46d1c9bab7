//! `caravan operator root keyring list|rotate`: the root keys that seal variables.
//!
//! Nomad: `command/operator_root_keyring_list.go`, `operator_root_keyring_rotate.go`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::Deserialize;

use super::block_on;
use super::format::{format_nanos, short_id, table};
use super::output::outln;
use super::{ApiArgs, OutputArgs};
use crate::structs::RootKeyMeta;

#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Lists and rotates the root keys that seal variables
    #[command(subcommand)]
    Keyring(KeyringCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyringCommand {
    /// Lists the root keys, active and inactive
    List(KeyringArgs),
    /// Makes a new active root key; variables sealed with older keys stay readable
    Rotate(KeyringArgs),
}

#[derive(Debug, Args)]
pub struct KeyringArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Shows full key IDs
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Nomad's `KeyringRotateRootKeyResponse`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotateResponse {
    key: Arc<RootKeyMeta>,
}

pub fn run(command: &RootCommand) -> anyhow::Result<ExitCode> {
    let RootCommand::Keyring(command) = command;
    let (args, keys) = match command {
        KeyringCommand::List(args) => {
            let client = args.api.client()?;
            let keys: Vec<Arc<RootKeyMeta>> =
                block_on(async { Ok(client.get("/v1/operator/keyring/keys").await?) })
                    .map_err(|err| anyhow::anyhow!("error: {err:#}"))?;
            (args, keys)
        }
        KeyringCommand::Rotate(args) => {
            let client = args.api.client()?;
            let rotated: RotateResponse = block_on(async {
                Ok(client
                    .put("/v1/operator/keyring/rotate", &serde_json::Map::new())
                    .await?)
            })
            .map_err(|err| anyhow::anyhow!("error: {err:#}"))?;
            (args, vec![rotated.key])
        }
    };
    if args.output.printed(&keys)? {
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|key| {
            vec![
                short_id(&key.key_id, args.verbose),
                key.state.clone(),
                format_nanos(key.create_time),
            ]
        })
        .collect();
    outln!("{}", table(&["Key", "State", "Create Time"], &rows))?;
    Ok(ExitCode::SUCCESS)
}
