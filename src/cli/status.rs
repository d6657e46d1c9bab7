//! `caravan status [ID]` and `caravan server members`: the cluster at a glance, and a status
//! command for any ID prefix, dispatched to the object it names.
//!
//! Nomad: `command/status.go`, `command/server_members.go`.

use std::process::ExitCode;

use super::block_on;
use super::format::table;
use super::output::outln;
use super::{
    AllocStatusArgs, ApiArgs, ApiOnlyArgs, EvalStatusArgs, JobStatusArgs, NodeStatusArgs, resolve,
};
use crate::api::client::{ClientError, PrefixMatch};
use crate::api::types::agent::ServerMembers;
use crate::api::types::allocs::AllocListStub;
use crate::api::types::jobs::JobListStub;
use crate::api::types::nodes::NodeListStub;
use crate::structs::{Deployment, Evaluation};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// An ID or ID prefix of a job, allocation, evaluation, node or deployment
    pub id: Option<String>,
}

/// The kinds of object an ID prefix may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ObjectKind {
    Job,
    Alloc,
    Eval,
    Node,
    Deployment,
}

impl ObjectKind {
    /// The noun Nomad's messages use.
    fn noun(self) -> &'static str {
        match self {
            ObjectKind::Job => "job",
            ObjectKind::Alloc => "allocation",
            ObjectKind::Eval => "evaluation",
            ObjectKind::Node => "node",
            ObjectKind::Deployment => "deployment",
        }
    }
}

pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let Some(prefix) = args.id.clone() else {
        return block_on(super::job_status::list_jobs(&client));
    };
    let kinds = block_on(async {
        let typed = &client;
        // One or several objects of a kind count as a match of that kind; a kind the agent
        // cannot list (an error) counts as none, as Nomad's `status` searches every context.
        fn found<T>(answer: Result<PrefixMatch<T>, ClientError>) -> bool {
            !matches!(answer, Ok(PrefixMatch::None) | Err(_))
        }
        let mut kinds = Vec::new();
        if found(typed.by_prefix::<JobListStub>("jobs", &prefix).await) {
            kinds.push(ObjectKind::Job);
        }
        if found(typed.by_prefix::<NodeListStub>("nodes", &prefix).await) {
            kinds.push(ObjectKind::Node);
        }
        if found(
            typed
                .by_prefix::<AllocListStub>("allocations", &prefix)
                .await,
        ) {
            kinds.push(ObjectKind::Alloc);
        }
        if found(typed.by_prefix::<Evaluation>("evaluations", &prefix).await) {
            kinds.push(ObjectKind::Eval);
        }
        if found(typed.by_prefix::<Deployment>("deployments", &prefix).await) {
            kinds.push(ObjectKind::Deployment);
        }
        Ok(kinds)
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
            list: super::ListArgs::default(),
            output: super::OutputArgs::default(),
        }),
        [ObjectKind::Alloc] => super::alloc_status::run(&AllocStatusArgs {
            api,
            alloc_id: prefix,
            verbose: false,
            stats: false,
            short: false,
            output: super::OutputArgs::default(),
        }),
        [ObjectKind::Eval] => super::eval_status::status(&EvalStatusArgs {
            api,
            eval_id: prefix,
            monitor: false,
            verbose: false,
            output: super::OutputArgs::default(),
        }),
        [ObjectKind::Deployment] => block_on(async {
            let deployment = resolve::deployment(&client, &prefix).await?;
            outln!(
                "{}",
                super::monitor::deployment_block(&deployment, false, false)
            )?;
            Ok(ExitCode::SUCCESS)
        }),
        several => {
            let names: Vec<&str> = several.iter().map(|kind| kind.noun()).collect();
            anyhow::bail!(
                "Prefix {prefix:?} matched multiple types: {}; use the type's status command",
                names.join(", ")
            )
        }
    }
}

pub fn server_members(args: &ApiOnlyArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let members: ServerMembers = client
            .get("/v1/agent/members")
            .await
            .map_err(|err| anyhow::anyhow!("Error querying servers: {err}"))?;
        let rows: Vec<Vec<String>> = members
            .members
            .iter()
            .map(|member| {
                let tag = |key: &str| member.tags.get(key).cloned().unwrap_or_default();
                vec![
                    member.name.clone(),
                    member.addr.clone(),
                    member.port.to_string(),
                    member.status.clone(),
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
