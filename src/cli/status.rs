//! `caravan status [ID]` and `caravan server members`: the cluster at a glance, and a status
//! command for any ID prefix, dispatched to the object it names.
//!
//! Nomad: `command/status.go`, `command/server_members.go`.

use std::process::ExitCode;

use super::block_on;
use super::deployment::DeploymentStatusArgs;
use super::format::table;
use super::output::outln;
use super::{AllocStatusArgs, ApiArgs, EvalStatusArgs, JobStatusArgs, NodeStatusArgs, OutputArgs};
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
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
    // Passed on to the status command of the object the ID names.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `caravan server members`.
#[derive(Debug, clap::Args)]
pub struct ServerMembersArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
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
    // Nomad's `status` hands its arguments to the status command of what the ID names, so
    // `-verbose`, `-json` and `-t` mean there what they mean in that command.
    let api = args.api.clone();
    let output = args.output.clone();
    let verbose = args.verbose;
    let job_status = |job_id: Option<String>| {
        super::job_status::status(&JobStatusArgs {
            api: api.clone(),
            job_id,
            short: false,
            verbose,
            all_allocs: false,
            output: output.clone(),
        })
    };
    let Some(prefix) = args.id.clone() else {
        return job_status(None);
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
    match kinds.as_slice() {
        [] => anyhow::bail!("No matches found"),
        [ObjectKind::Job] => job_status(Some(prefix)),
        [ObjectKind::Node] => super::node_status::status(&NodeStatusArgs {
            api,
            node_id: Some(prefix),
            self_node: false,
            allocs: false,
            verbose,
            list: super::ListArgs::default(),
            output,
        }),
        [ObjectKind::Alloc] => super::alloc_status::run(&AllocStatusArgs {
            api,
            alloc_id: prefix,
            verbose,
            stats: false,
            short: false,
            output,
        }),
        [ObjectKind::Eval] => super::eval_status::status(&EvalStatusArgs {
            api,
            eval_id: prefix,
            monitor: false,
            verbose,
            output,
        }),
        [ObjectKind::Deployment] => super::deployment::status(&DeploymentStatusArgs {
            api,
            deployment_id: prefix,
            verbose,
            output,
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

pub fn server_members(args: &ServerMembersArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let members: ServerMembers = client
            .get("/v1/agent/members")
            .await
            .map_err(|err| anyhow::anyhow!("Error querying servers: {err}"))?;
        // Nomad prints the members alone (`Members`), each with its tags.
        if args.output.printed(&members.members)? {
            return Ok(ExitCode::SUCCESS);
        }
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
