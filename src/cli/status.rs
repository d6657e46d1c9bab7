//! `caravan status [ID]` and `caravan server members`: the cluster at a glance, and a status
//! command for any ID prefix, dispatched to the object it names.
//!
//! Nomad: `command/status.go`, `command/server_members.go`.

use std::process::ExitCode;

use serde_json::Value;

use super::api_client::{ApiClient, ObjectKind, block_on, encode, str_of};
use super::format::table;
use super::output::outln;
use super::{
    AllocStatusArgs, ApiOnlyArgs, EvalStatusArgs, JobStatusArgs, NodeStatusArgs, StatusArgs,
};

pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    let Some(prefix) = args.id.clone() else {
        return block_on(super::job_status::list_jobs(&client));
    };
    let kinds = block_on(async {
        let mut found = Vec::new();
        for kind in [
            ObjectKind::Job,
            ObjectKind::Node,
            ObjectKind::Alloc,
            ObjectKind::Eval,
            ObjectKind::Deployment,
        ] {
            let (plural, _) = kind.names();
            let list = client
                .get(&format!("/v1/{plural}?prefix={}", encode(&prefix)))
                .await
                .unwrap_or(Value::Null);
            let matches = list
                .as_array()
                .into_iter()
                .flatten()
                .filter(|item| str_of(item, "ID").starts_with(prefix.as_str()))
                .count();
            if matches > 0 {
                found.push(kind);
            }
        }
        Ok(found)
    })?;
    let api = args.api.clone();
    match kinds.as_slice() {
        [] => anyhow::bail!("No matches found"),
        [ObjectKind::Job] => super::job_status::status(&JobStatusArgs {
            api,
            job_id: Some(prefix),
            short: false,
            verbose: false,
            all_allocs: false,
        }),
        [ObjectKind::Node] => super::node_status::status(&NodeStatusArgs {
            api,
            node_id: Some(prefix),
            self_node: false,
            allocs: false,
            verbose: false,
        }),
        [ObjectKind::Alloc] => super::alloc_status::run(&AllocStatusArgs {
            api,
            alloc_id: prefix,
            verbose: false,
            stats: false,
            short: false,
        }),
        [ObjectKind::Eval] => super::eval_status::status(&EvalStatusArgs {
            api,
            eval_id: prefix,
            monitor: false,
            verbose: false,
        }),
        [ObjectKind::Deployment] => block_on(async {
            let deployment = client.resolve(ObjectKind::Deployment, &prefix).await?;
            outln!(
                "{}",
                super::monitor::deployment_block(&deployment, false, false)
            )?;
            Ok(ExitCode::SUCCESS)
        }),
        several => {
            let names: Vec<&str> = several.iter().map(|kind| kind.names().1).collect();
            anyhow::bail!(
                "Prefix {prefix:?} matched multiple types: {}; use the type's status command",
                names.join(", ")
            )
        }
    }
}

pub fn server_members(args: &ApiOnlyArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let members = client
            .get("/v1/agent/members")
            .await
            .map_err(|err| anyhow::anyhow!("Error querying servers: {err}"))?;
        let rows: Vec<Vec<String>> = members
            .get("Members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|member| {
                let tag = |key: &str| {
                    member
                        .pointer(&format!("/Tags/{key}"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                vec![
                    str_of(member, "Name").to_owned(),
                    str_of(member, "Addr").to_owned(),
                    super::api_client::i64_of(member, "Port").to_string(),
                    str_of(member, "Status").to_owned(),
                    tag("leader"),
                    tag("raft_vsn"),
                    tag("build"),
                    tag("dc"),
                    tag("region"),
                ]
            })
            .collect();
        outln!(
            "{}",
            table(
                &[
                    "Name",
                    "Address",
                    "Port",
                    "Status",
                    "Leader",
                    "Raft Version",
                    "Build",
                    "Datacenter",
                    "Region"
                ],
                &rows
            )
        )?;
        Ok(ExitCode::SUCCESS)
    })
}
