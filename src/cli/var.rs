//! `caravan var put|get|list|purge`, as Nomad's `nomad var` (`command/var_*.go`).
//!
//! `put <path> key=value ...` writes a variable's items; the items may also come from a
//! specification (`-in json` or `-in hcl`, the first argument `@file` or `-` for standard input:
//! Nomad's `{"Path": ..., "Items": {...}}` or `path = ...` / `items { ... }`), the `key=value`
//! arguments added over it. `-check-index` writes only if the stored variable's modify index is
//! that one (0: only if there is none). `get -item key` prints one item's value. Output is
//! `-out json|table|none` (`put` and `get` default to `json` when standard output is not a
//! terminal, as Nomad's do).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::format::{format_nanos, kv, table};
use super::output::outln;
use super::{ApiArgs, OutputArgs, block_on};
use crate::api::client::{ClientError, encode};
use crate::structs::{Variable, VariableMetadata, check_variable_path};

#[derive(Debug, Subcommand)]
pub enum VarCommand {
    /// Writes a variable: `var put <path> key=value ...`
    Put(VarPutArgs),
    /// Reads a variable
    Get(VarGetArgs),
    /// Lists variables, optionally those under a path prefix
    List(VarListArgs),
    /// Deletes a variable
    Purge(VarPurgeArgs),
}

#[derive(Debug, Args)]
pub struct VarPutArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The format of a specification given as `@file` or `-`: json or hcl
    #[arg(long = "in", default_value = "json")]
    pub input: String,
    /// How to print the written variable: json, table or none
    #[arg(long = "out")]
    pub out: Option<String>,
    /// Writes only if the stored variable's modify index is this one (0: only a new one)
    #[arg(long = "check-index", value_name = "INDEX")]
    pub check_index: Option<u64>,
    /// Writes whatever the stored variable's index
    #[arg(long)]
    pub force: bool,
    /// The path (or `@file`, `-` for a specification), then `key=value` items
    #[arg(required = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VarGetArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Prints only this item's value
    #[arg(long)]
    pub item: Option<String>,
    /// How to print the variable: json, table
    #[arg(long = "out")]
    pub out: Option<String>,
    pub path: String,
}

#[derive(Debug, Args)]
pub struct VarListArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Only paths starting with this
    #[arg(default_value = "")]
    pub prefix: String,
}

#[derive(Debug, Args)]
pub struct VarPurgeArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Deletes only if the stored variable's modify index is this one
    #[arg(long = "check-index", value_name = "INDEX")]
    pub check_index: Option<u64>,
    pub path: String,
}

pub fn run(command: &VarCommand) -> anyhow::Result<ExitCode> {
    match command {
        VarCommand::Put(args) => put(args),
        VarCommand::Get(args) => get(args),
        VarCommand::List(args) => list(args),
        VarCommand::Purge(args) => purge(args),
    }
}

/// The API path of variable `path`, refused before any request if it is not a valid path.
fn var_path(path: &str) -> anyhow::Result<String> {
    check_variable_path(path).map_err(|err| anyhow::anyhow!("Invalid path: {err}"))?;
    Ok(format!("/v1/var/{path}"))
}

/// The output format: the flag, else `json` off a terminal and `default` on one.
fn output_format(flag: Option<&str>, default: &str) -> anyhow::Result<String> {
    let format = match flag {
        Some(format) => format.to_owned(),
        None if std::io::stdout().is_terminal() => default.to_owned(),
        None => "json".to_owned(),
    };
    match format.as_str() {
        "json" | "table" | "none" => Ok(format),
        other => anyhow::bail!("Invalid output format {other:?}: use json, table or none"),
    }
}

fn print_variable(variable: &Variable, format: &str) -> anyhow::Result<()> {
    match format {
        "json" => {
            OutputArgs {
                json: true,
                template: None,
            }
            .printed(variable)?;
        }
        "table" => {
            outln!(
                "{}",
                kv(&[
                    ("Namespace", variable.namespace.clone()),
                    ("Path", variable.path.clone()),
                    ("Create Time", format_nanos(variable.create_time)),
                    ("Check Index", variable.modify_index.to_string()),
                ])
            )?;
            let items: Vec<(&str, String)> = variable
                .items
                .iter()
                .map(|(key, value)| (key.as_str(), value.clone()))
                .collect();
            outln!("\nItems\n{}", kv(&items))?;
        }
        _ => {}
    }
    Ok(())
}

/// A specification's path and items (Nomad's JSON or HCL variable specification).
fn parse_spec(
    text: &str,
    format: &str,
) -> anyhow::Result<(Option<String>, BTreeMap<String, String>)> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Spec {
        #[serde(alias = "Path")]
        path: Option<String>,
        #[serde(alias = "Items")]
        items: BTreeMap<String, String>,
    }
    let spec: Spec = match format {
        "json" => serde_json::from_str(text).context("Error parsing variable specification")?,
        "hcl" => hcl::from_str(text).context("Error parsing variable specification")?,
        other => anyhow::bail!("Invalid -in format {other:?}: use json or hcl"),
    };
    Ok((spec.path, spec.items))
}

/// A check-and-set refusal in Nomad's words, from the 409's body (the stored variable).
fn cas_conflict(error: &ClientError, asked: u64) -> Option<anyhow::Error> {
    let ClientError::UnexpectedResponse {
        status: 409,
        reason,
    } = error
    else {
        return None;
    };
    let stored: VariableMetadata = serde_json::from_str(reason).unwrap_or_default();
    Some(anyhow::anyhow!(
        "Check-and-Set conflict\n\n    Your provided check-index ({asked}) does not match the \
         server-side index ({}).\n\n    If you are sure you want to perform this operation, add \
         the -force or -check-index={} flag before the positional arguments.",
        stored.modify_index,
        stored.modify_index
    ))
}

fn put(args: &VarPutArgs) -> anyhow::Result<ExitCode> {
    let format = output_format(args.out.as_deref(), "none")?;
    let (first, rest) = args
        .args
        .split_first()
        .context("Not enough arguments: var put <path> [<key>=<value>]...")?;
    let (mut path, mut items);
    if first == "-" || first.starts_with('@') {
        let text = if first == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        } else {
            let file = &first[1..];
            std::fs::read_to_string(file).with_context(|| format!("Error reading {file:?}"))?
        };
        (path, items) = parse_spec(&text, &args.input)?;
    } else {
        (path, items) = (Some(first.clone()), BTreeMap::new());
    }
    let mut pairs = rest.iter();
    if path.is_none() {
        path = pairs.next().filter(|arg| !arg.contains('=')).cloned();
    }
    let path = path.context("the variable needs a path")?;
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("Invalid item {pair:?}: want key=value"))?;
        items.insert(key.to_owned(), value.to_owned());
    }
    let variable = Variable {
        path: path.clone(),
        items,
        ..Variable::default()
    };
    let mut api_path = var_path(&path)?;
    if let Some(index) = args.check_index.filter(|_| !args.force) {
        api_path.push_str(&format!("?cas={index}"));
    }
    let client = args.api.client()?;
    let written: Result<Variable, ClientError> =
        block_on(async { Ok(client.put(&api_path, &variable).await) })?;
    let written = match written {
        Ok(written) => written,
        Err(error) => {
            if let Some(conflict) = cas_conflict(&error, args.check_index.unwrap_or_default()) {
                return Err(conflict);
            }
            anyhow::bail!("Error creating variable: {error}");
        }
    };
    if format == "none" {
        outln!(
            "Created variable {:?} with modify index {}",
            written.path,
            written.modify_index
        )?;
    } else {
        print_variable(&written, &format)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn get(args: &VarGetArgs) -> anyhow::Result<ExitCode> {
    let api_path = var_path(&args.path)?;
    let client = args.api.client()?;
    let variable: Variable = block_on(async { Ok(client.get(&api_path).await?) })
        .map_err(|err| anyhow::anyhow!("Error retrieving variable: {err:#}"))?;
    if let Some(item) = &args.item {
        let value = variable
            .items
            .get(item)
            .with_context(|| format!("Variable does not contain {item:?} item"))?;
        outln!("{value}")?;
        return Ok(ExitCode::SUCCESS);
    }
    print_variable(&variable, &output_format(args.out.as_deref(), "table")?)?;
    Ok(ExitCode::SUCCESS)
}

fn list(args: &VarListArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let path = format!("/v1/vars?prefix={}", encode(&args.prefix));
    let variables: Vec<VariableMetadata> = block_on(async { Ok(client.get(&path).await?) })
        .map_err(|err| anyhow::anyhow!("Error retrieving vars: {err:#}"))?;
    if args.output.printed(&variables)? {
        return Ok(ExitCode::SUCCESS);
    }
    if variables.is_empty() {
        outln!("No matching variables found")?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = variables
        .iter()
        .map(|variable| {
            vec![
                variable.namespace.clone(),
                variable.path.clone(),
                format_nanos(variable.modify_time),
            ]
        })
        .collect();
    outln!("{}", table(&["Namespace", "Path", "Last Updated"], &rows))?;
    Ok(ExitCode::SUCCESS)
}

fn purge(args: &VarPurgeArgs) -> anyhow::Result<ExitCode> {
    let mut api_path = var_path(&args.path)?;
    if let Some(index) = args.check_index {
        api_path.push_str(&format!("?cas={index}"));
    }
    let client = args.api.client()?;
    let deleted: Result<(), ClientError> =
        block_on(async { Ok(client.delete::<()>(&api_path).await) })?;
    if let Err(error) = deleted {
        if let Some(conflict) = cas_conflict(&error, args.check_index.unwrap_or_default()) {
            return Err(conflict);
        }
        anyhow::bail!("Error purging variable: {error}");
    }
    outln!("Successfully purged variable {:?}!", args.path)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifications_give_a_path_and_items() -> anyhow::Result<()> {
        let (path, items) = parse_spec(r#"{"Path": "app/db", "Items": {"user": "u"}}"#, "json")?;
        assert_eq!(path.as_deref(), Some("app/db"));
        assert_eq!(items.get("user").map(String::as_str), Some("u"));
        let (path, items) = parse_spec("path = \"app\"\nitems {\n  k = \"v\"\n}\n", "hcl")?;
        assert_eq!(path.as_deref(), Some("app"));
        assert_eq!(items.get("k").map(String::as_str), Some("v"));
        assert!(parse_spec("{}", "yaml").is_err());
        Ok(())
    }
}
