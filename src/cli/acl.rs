//! `caravan acl bootstrap|policy ...|token ...`: the ACL system, as Nomad's `nomad acl`.
//!
//! The token a command acts with comes from `-token`, `CARAVAN_TOKEN` or `NOMAD_TOKEN`
//! ([`ApiArgs`]). Nomad: `command/acl_bootstrap.go`, `acl_policy_*.go`, `acl_token_*.go`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::block_on;
use super::format::{kv, table};
use super::output::outln;
use super::{ApiArgs, OutputArgs};
use crate::api::client::encode;
use crate::structs::{AclPolicy, AclPolicyListStub, AclToken, AclTokenListStub};

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Makes the first management token (once per cluster)
    Bootstrap(ApiOnly),
    /// Interacts with ACL policies
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Interacts with ACL tokens
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Args)]
pub struct ApiOnly {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Creates or updates a policy from a rules file (`-` for standard input)
    Apply(PolicyApplyArgs),
    /// Lists the policies
    List(ApiOnly),
    /// Shows a policy and its rules
    Info(PolicyInfoArgs),
    /// Deletes a policy
    Delete(PolicyNameArgs),
}

#[derive(Debug, Args)]
pub struct PolicyApplyArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The policy's description
    #[arg(long)]
    pub description: Option<String>,
    /// The policy's name
    pub name: String,
    /// The rules file, HCL
    pub path: String,
}

#[derive(Debug, Args)]
pub struct PolicyNameArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PolicyInfoArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Creates a token
    Create(TokenCreateArgs),
    /// Lists the tokens
    List(ApiOnly),
    /// Shows a token by its accessor ID
    Info(TokenInfoArgs),
    /// Updates a token's name or policies
    Update(TokenUpdateArgs),
    /// Deletes a token by its accessor ID
    Delete(TokenIdArgs),
    /// Shows the token this command acts with
    #[command(name = "self")]
    Self_(ApiOnly),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The token's name
    #[arg(long, default_value = "")]
    pub name: String,
    /// client or management
    #[arg(long = "type", default_value = "client")]
    pub token_type: String,
    /// A policy the token holds (repeatable)
    #[arg(long = "policy")]
    pub policies: Vec<String>,
    /// Replicated to every region
    #[arg(long)]
    pub global: bool,
    /// How long the token lives (`1h`, `30m`)
    #[arg(long)]
    pub ttl: Option<String>,
}

#[derive(Debug, Args)]
pub struct TokenUpdateArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// A new name
    #[arg(long)]
    pub name: Option<String>,
    /// The policies the token holds from now on (repeatable)
    #[arg(long = "policy")]
    pub policies: Vec<String>,
    pub accessor_id: String,
}

#[derive(Debug, Args)]
pub struct TokenIdArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    pub accessor_id: String,
}

#[derive(Debug, Args)]
pub struct TokenInfoArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    pub accessor_id: String,
}

pub fn run(command: &AclCommand) -> anyhow::Result<ExitCode> {
    match command {
        AclCommand::Bootstrap(args) => {
            let client = args.api.client()?;
            let token: AclToken =
                block_on(async { Ok(client.post("/v1/acl/bootstrap", &()).await?) })
                    .map_err(|err| anyhow::anyhow!("Error bootstrapping: {err:#}"))?;
            print_token(&token, &args.output)
        }
        AclCommand::Policy(command) => policy(command),
        AclCommand::Token(command) => token(command),
    }
}

fn policy(command: &PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Apply(args) => {
            let rules = if args.path == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading the rules")?
            } else {
                std::fs::read_to_string(&args.path)
                    .with_context(|| format!("Error reading policy file {:?}", args.path))?
            };
            let policy = AclPolicy {
                name: args.name.clone(),
                description: args.description.clone().unwrap_or_default(),
                rules,
                ..AclPolicy::default()
            };
            let client = args.api.client()?;
            let path = format!("/v1/acl/policy/{}", encode(&args.name));
            block_on(async {
                client.put::<_, ()>(&path, &policy).await?;
                Ok(())
            })
            .map_err(|err| anyhow::anyhow!("Error writing ACL policy: {err:#}"))?;
            outln!("Successfully wrote {:?} ACL policy!", args.name)?;
        }
        PolicyCommand::List(args) => {
            let client = args.api.client()?;
            let policies: Vec<AclPolicyListStub> =
                block_on(async { Ok(client.get("/v1/acl/policies").await?) })
                    .map_err(|err| anyhow::anyhow!("Error listing ACL policies: {err:#}"))?;
            if args.output.printed(&policies)? {
                return Ok(ExitCode::SUCCESS);
            }
            if policies.is_empty() {
                outln!("No policies found")?;
            } else {
                let rows: Vec<Vec<String>> = policies
                    .iter()
                    .map(|policy| vec![policy.name.clone(), policy.description.clone()])
                    .collect();
                outln!("{}", table(&["Name", "Description"], &rows))?;
            }
        }
        PolicyCommand::Info(args) => {
            let client = args.api.client()?;
            let path = format!("/v1/acl/policy/{}", encode(&args.name));
            let policy: AclPolicy = block_on(async { Ok(client.get(&path).await?) })
                .map_err(|err| anyhow::anyhow!("Error reading ACL policy: {err:#}"))?;
            if args.output.printed(&policy)? {
                return Ok(ExitCode::SUCCESS);
            }
            outln!(
                "{}",
                kv(&[
                    ("Name", policy.name.clone()),
                    ("Description", policy.description.clone()),
                    ("CreateIndex", policy.create_index.to_string()),
                    ("ModifyIndex", policy.modify_index.to_string()),
                ])
            )?;
            outln!("\nRules\n\n{}", policy.rules.trim_end())?;
        }
        PolicyCommand::Delete(args) => {
            let client = args.api.client()?;
            let path = format!("/v1/acl/policy/{}", encode(&args.name));
            block_on(async {
                client.delete::<()>(&path).await?;
                Ok(())
            })
            .map_err(|err| anyhow::anyhow!("Error deleting ACL policy: {err:#}"))?;
            outln!("Successfully deleted {:?} ACL policy!", args.name)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn token(command: &TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create(args) => {
            let expiration_ttl = match &args.ttl {
                Some(ttl) => crate::structs::duration::parse_go_duration(ttl)
                    .map_err(|err| anyhow::anyhow!("Error parsing TTL {ttl:?}: {err}"))?,
                None => Duration::ZERO,
            };
            let request = AclToken {
                name: args.name.clone(),
                token_type: args.token_type.clone(),
                policies: args.policies.clone(),
                global: args.global,
                expiration_ttl,
                ..AclToken::default()
            };
            let client = args.api.client()?;
            let token: AclToken =
                block_on(async { Ok(client.put("/v1/acl/token", &request).await?) })
                    .map_err(|err| anyhow::anyhow!("Error creating token: {err:#}"))?;
            print_token(&token, &args.output)
        }
        TokenCommand::List(args) => {
            let client = args.api.client()?;
            let tokens: Vec<AclTokenListStub> =
                block_on(async { Ok(client.get("/v1/acl/tokens").await?) })
                    .map_err(|err| anyhow::anyhow!("Error listing tokens: {err:#}"))?;
            if args.output.printed(&tokens)? {
                return Ok(ExitCode::SUCCESS);
            }
            if tokens.is_empty() {
                outln!("No tokens found")?;
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|token| {
                        vec![
                            token.name.clone(),
                            token.token_type.clone(),
                            token.global.to_string(),
                            token.accessor_id.clone(),
                            token
                                .expiration_time
                                .clone()
                                .unwrap_or_else(|| "<none>".to_owned()),
                        ]
                    })
                    .collect();
                outln!(
                    "{}",
                    table(
                        &["Name", "Type", "Global", "Accessor ID", "Expiry Time"],
                        &rows
                    )
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Info(args) => {
            let client = args.api.client()?;
            let path = format!("/v1/acl/token/{}", encode(&args.accessor_id));
            let token: AclToken = block_on(async { Ok(client.get(&path).await?) })
                .map_err(|err| anyhow::anyhow!("Error fetching token: {err:#}"))?;
            print_token(&token, &args.output)
        }
        TokenCommand::Update(args) => {
            let client = args.api.client()?;
            let path = format!("/v1/acl/token/{}", encode(&args.accessor_id));
            let token = block_on(async {
                let mut token: AclToken = client.get(&path).await?;
                if let Some(name) = &args.name {
                    token.name = name.clone();
                }
                if !args.policies.is_empty() {
                    token.policies = args.policies.clone();
                }
                Ok(client.put::<_, AclToken>(&path, &token).await?)
            })
            .map_err(|err| anyhow::anyhow!("Error updating token: {err:#}"))?;
            print_token(&token, &args.output)
        }
        TokenCommand::Delete(args) => {
            let client = args.api.client()?;
            let path = format!("/v1/acl/token/{}", encode(&args.accessor_id));
            block_on(async {
                client.delete::<()>(&path).await?;
                Ok(())
            })
            .map_err(|err| anyhow::anyhow!("Error deleting token: {err:#}"))?;
            outln!("Token {} successfully deleted", args.accessor_id)?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Self_(args) => {
            let client = args.api.client()?;
            let token: AclToken =
                block_on(async { Ok(client.get("/v1/acl/token/self").await?) })
                    .map_err(|err| anyhow::anyhow!("Error fetching self token: {err:#}"))?;
            print_token(&token, &args.output)
        }
    }
}

/// Nomad's `formatKVACLToken`.
fn print_token(token: &AclToken, output: &OutputArgs) -> anyhow::Result<ExitCode> {
    if output.printed(token)? {
        return Ok(ExitCode::SUCCESS);
    }
    let policies = if token.is_management() {
        "n/a".to_owned()
    } else {
        token.policies.join(", ")
    };
    outln!(
        "{}",
        kv(&[
            ("Accessor ID", token.accessor_id.clone()),
            ("Secret ID", token.secret_id.clone()),
            ("Name", token.name.clone()),
            ("Type", token.token_type.clone()),
            ("Global", token.global.to_string()),
            ("Create Time", token.create_time.clone()),
            (
                "Expiry Time",
                token
                    .expiration_time
                    .clone()
                    .unwrap_or_else(|| "<none>".to_owned()),
            ),
            ("Create Index", token.create_index.to_string()),
            ("Modify Index", token.modify_index.to_string()),
            ("Policies", policies),
        ])
    )?;
    Ok(ExitCode::SUCCESS)
}
