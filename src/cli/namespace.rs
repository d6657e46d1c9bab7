//! `caravan namespace list|status|inspect|apply|delete`, as Nomad's `nomad namespace`
//! (`command/namespace_*.go`).
//!
//! `apply` takes a name with `-description` (and `-quota`), or a namespace specification file
//! (`-` for standard input) in HCL or JSON, written as Nomad's (`name = "web"` and
//! `description = "..."` at the top level, `meta { ... }`) or as a block (`namespace "web" {
//! description = "..." }`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::format::{kv, table};
use super::output::outln;
use super::{ApiArgs, OutputArgs, block_on};
use crate::api::client::encode;
use crate::structs::Namespace;

#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// Lists the namespaces
    List(NamespaceListArgs),
    /// Shows a namespace
    Status(NamespaceShowArgs),
    /// Prints a namespace as API JSON
    Inspect(NamespaceShowArgs),
    /// Creates or updates a namespace from a name and flags, or from a specification file
    Apply(NamespaceApplyArgs),
    /// Deletes a namespace (it must hold no running job and no variable)
    Delete(NamespaceNameArgs),
}

#[derive(Debug, Args)]
pub struct NamespaceListArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct NamespaceNameArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    pub name: String,
}

/// `namespace status` and `namespace inspect` (JSON unless `-t`).
#[derive(Debug, Args)]
pub struct NamespaceShowArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    pub name: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct NamespaceApplyArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The namespace's description
    #[arg(long)]
    pub description: Option<String>,
    /// The quota the namespace is limited by
    #[arg(long)]
    pub quota: Option<String>,
    /// A namespace specification file, HCL or JSON
    #[arg(long = "json")]
    pub json: bool,
    /// The namespace's name, or a specification file (`-` for standard input)
    pub name_or_path: String,
}

pub fn run(command: &NamespaceCommand) -> anyhow::Result<ExitCode> {
    match command {
        NamespaceCommand::List(args) => list(args),
        NamespaceCommand::Status(args) => status(args, false),
        NamespaceCommand::Inspect(args) => status(args, true),
        NamespaceCommand::Apply(args) => apply(args),
        NamespaceCommand::Delete(args) => {
            let client = args.api.client()?;
            let path = format!("/v1/namespace/{}", encode(&args.name));
            block_on(async {
                client.delete::<()>(&path).await?;
                Ok(())
            })
            .map_err(|err| anyhow::anyhow!("Error deleting namespace: {err:#}"))?;
            outln!("Successfully deleted namespace {:?}!", args.name)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(args: &NamespaceListArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let namespaces: Vec<Namespace> = block_on(async { Ok(client.get("/v1/namespaces").await?) })
        .map_err(|err| anyhow::anyhow!("Error retrieving namespaces: {err:#}"))?;
    if args.output.printed(&namespaces)? {
        return Ok(ExitCode::SUCCESS);
    }
    if namespaces.is_empty() {
        outln!("No namespaces found")?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = namespaces
        .iter()
        .map(|namespace| vec![namespace.name.clone(), namespace.description.clone()])
        .collect();
    outln!("{}", table(&["Name", "Description"], &rows))?;
    Ok(ExitCode::SUCCESS)
}

fn status(args: &NamespaceShowArgs, inspect: bool) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let path = format!("/v1/namespace/{}", encode(&args.name));
    let namespace: Namespace = block_on(async { Ok(client.get(&path).await?) })
        .map_err(|err| anyhow::anyhow!("Error retrieving namespace: {err:#}"))?;
    // `inspect` prints JSON unless given a template (Nomad: `namespace_inspect.go`).
    let output = OutputArgs {
        json: args.output.json || inspect,
        template: args.output.template.clone(),
    };
    if output.printed(&namespace)? {
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{}",
        kv(&[
            ("Name", namespace.name.clone()),
            ("Description", namespace.description.clone()),
            ("Quota", namespace.quota.clone()),
        ])
    )?;
    if !namespace.meta.is_empty() {
        let pairs: Vec<(&str, String)> = namespace
            .meta
            .iter()
            .map(|(key, value)| (key.as_str(), value.clone()))
            .collect();
        outln!("\nMetadata\n{}", kv(&pairs))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A namespace specification: Nomad's top-level form or a `namespace "name" { }` block, HCL
/// or JSON.
fn parse_spec(text: &str, json: bool) -> anyhow::Result<Namespace> {
    #[derive(serde::Deserialize, Default, Clone)]
    #[serde(default)]
    struct Spec {
        #[serde(alias = "Name")]
        name: Option<String>,
        #[serde(alias = "Description")]
        description: Option<String>,
        #[serde(alias = "Quota")]
        quota: Option<String>,
        #[serde(alias = "Meta")]
        meta: BTreeMap<String, String>,
        namespace: BTreeMap<String, Box<Spec>>,
    }
    let spec: Spec = if json {
        serde_json::from_str(text).context("Error parsing namespace specification")?
    } else {
        hcl::from_str(text).context("Error parsing namespace specification")?
    };
    let (name, spec) = match spec.namespace.iter().next() {
        Some((name, inner)) => (Some(name.clone()), (**inner).clone()),
        None => (spec.name.clone(), spec),
    };
    let name = spec
        .name
        .clone()
        .or(name)
        .filter(|name| !name.is_empty())
        .context("the namespace specification names no namespace (name = \"...\")")?;
    Ok(Namespace {
        name,
        description: spec.description.unwrap_or_default(),
        quota: spec.quota.unwrap_or_default(),
        meta: spec.meta,
        ..Namespace::default()
    })
}

fn apply(args: &NamespaceApplyArgs) -> anyhow::Result<ExitCode> {
    let target = &args.name_or_path;
    let from_file = target == "-" || Path::new(target).is_file();
    let mut namespace = if from_file {
        let text = if target == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        } else {
            std::fs::read_to_string(target)
                .with_context(|| format!("Error reading file {target:?}"))?
        };
        let json = args.json || target.ends_with(".json");
        parse_spec(&text, json)?
    } else {
        let client = args.api.client()?;
        let path = format!("/v1/namespace/{}", encode(target));
        // Flags change an existing namespace's fields and keep the others (Nomad's apply).
        let existing: Option<Namespace> = block_on(async {
            match client.get(&path).await {
                Ok(namespace) => Ok(Some(namespace)),
                Err(error) if error.status() == Some(404) => Ok(None),
                Err(error) => Err(error.into()),
            }
        })
        .map_err(|err: anyhow::Error| anyhow::anyhow!("Error applying namespace: {err:#}"))?;
        existing.unwrap_or_else(|| Namespace {
            name: target.clone(),
            ..Namespace::default()
        })
    };
    if let Some(description) = &args.description {
        namespace.description = description.clone();
    }
    if let Some(quota) = &args.quota {
        namespace.quota = quota.clone();
    }
    let client = args.api.client()?;
    let path = format!("/v1/namespace/{}", encode(&namespace.name));
    block_on(async {
        client.put::<_, ()>(&path, &namespace).await?;
        Ok(())
    })
    .map_err(|err| anyhow::anyhow!("Error applying namespace specification: {err:#}"))?;
    outln!("Successfully applied namespace {:?}!", namespace.name)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifications_read_as_nomads_and_as_a_block() -> anyhow::Result<()> {
        let top = parse_spec(
            "name = \"dev\"\ndescription = \"for developers\"\nmeta {\n  owner = \"me\"\n}\n",
            false,
        )?;
        assert_eq!(
            (top.name.as_str(), top.description.as_str()),
            ("dev", "for developers")
        );
        assert_eq!(top.meta.get("owner").map(String::as_str), Some("me"));
        let block = parse_spec(
            "namespace \"web\" {\n  description = \"the web\"\n}\n",
            false,
        )?;
        assert_eq!(
            (block.name.as_str(), block.description.as_str()),
            ("web", "the web")
        );
        let json = parse_spec(r#"{"Name": "api", "Description": "d"}"#, true)?;
        assert_eq!(json.name, "api");
        assert!(parse_spec("description = \"nameless\"\n", false).is_err());
        Ok(())
    }
}
