//! `caravan operator raft list-peers|remove-peer`, `caravan operator snapshot
//! save|inspect|restore`, `caravan operator root keyring` (in `operator_keyring`), `caravan server join|force-leave`.
//!
//! Nomad: `command/operator_raft_list.go`, `operator_raft_remove.go`,
//! `operator_snapshot_{save,inspect,restore}.go`, `server_join.go`, `server_force_leave.go`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::ApiArgs;
use super::block_on;
use super::format::table;
use super::output::outln;
use crate::api::client::encode;
use crate::api::types::client::EmptyResponse;
use crate::api::types::cluster::{JoinResponse, RaftConfiguration, SnapshotHeader};

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Inspects and changes the Raft configuration of the servers
    #[command(subcommand)]
    Raft(RaftCommand),
    /// Saves, inspects and restores snapshots of the cluster's state
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Shows and changes the scheduler configuration (preemption flags are stored, not acted on)
    #[command(subcommand)]
    Scheduler(super::operator_scheduler::SchedulerCommand),
    /// Manages the root keys that seal variables
    #[command(subcommand)]
    Root(super::operator_keyring::RootCommand),
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Saves a point-in-time copy of the whole state to a file
    Save(SnapshotSaveArgs),
    /// Shows what a snapshot file holds (no agent needed)
    Inspect(SnapshotInspectArgs),
    /// Replaces the cluster's state with a snapshot file
    Restore(SnapshotFileArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotFileArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The snapshot file
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct SnapshotSaveArgs {
    #[command(flatten)]
    pub target: SnapshotFileArgs,
    /// Lets any server answer with its own state, not only the leader
    #[arg(long)]
    pub stale: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotInspectArgs {
    /// The snapshot file
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum RaftCommand {
    /// Lists the servers of the Raft configuration
    ListPeers(RaftListArgs),
    /// Removes a server from the Raft configuration
    RemovePeer(RaftRemoveArgs),
}

#[derive(Debug, Args)]
pub struct RaftListArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Asks the agent for what it knows itself rather than the leader's view
    #[arg(long)]
    pub stale: bool,
}

#[derive(Debug, Args)]
pub struct RaftRemoveArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The Raft ID of the server to remove
    #[arg(long = "peer-id", value_name = "ID")]
    pub peer_id: Option<String>,
    /// The RPC address (host:port) of the server to remove
    #[arg(long = "peer-address", value_name = "ADDR")]
    pub peer_address: Option<String>,
}

/// `caravan server join ADDR...`.
#[derive(Debug, Args)]
pub struct ServerJoinArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// RPC addresses (host:port) of servers to join
    #[arg(required = true, value_name = "ADDR")]
    pub addresses: Vec<String>,
}

/// `caravan server force-leave NODE`.
#[derive(Debug, Args)]
pub struct ServerForceLeaveArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The member's name (as `server members` shows it), address or Raft ID
    #[arg(value_name = "NODE")]
    pub node: String,
}

pub fn run(command: &OperatorCommand) -> anyhow::Result<ExitCode> {
    match command {
        OperatorCommand::Raft(RaftCommand::ListPeers(args)) => list_peers(args),
        OperatorCommand::Raft(RaftCommand::RemovePeer(args)) => remove_peer(args),
        OperatorCommand::Snapshot(SnapshotCommand::Save(args)) => snapshot_save(args),
        OperatorCommand::Snapshot(SnapshotCommand::Inspect(args)) => snapshot_inspect(args),
        OperatorCommand::Snapshot(SnapshotCommand::Restore(args)) => snapshot_restore(args),
        OperatorCommand::Scheduler(command) => super::operator_scheduler::run(command),
        OperatorCommand::Root(command) => super::operator_keyring::run(command),
    }
}

fn snapshot_save(save: &SnapshotSaveArgs) -> anyhow::Result<ExitCode> {
    let args = &save.target;
    let client = args.api.client_stale(save.stale)?;
    block_on(async {
        let response = client
            .get_stream("/v1/operator/snapshot")
            .await
            .map_err(|err| anyhow::anyhow!("Failed to get snapshot file: {err}"))?;
        let file = response
            .bytes()
            .await
            .map_err(|err| anyhow::anyhow!("Failed to get snapshot file: {err}"))?;
        let header = read_header(file.as_ref())?;
        // Written beside the target and renamed, so a failed save leaves no partial file.
        let partial = args.file.with_extension("partial");
        std::fs::write(&partial, &file)
            .and_then(|()| std::fs::rename(&partial, &args.file))
            .map_err(|err| {
                anyhow::anyhow!(
                    "Failed to write snapshot file {}: {err}",
                    args.file.display()
                )
            })?;
        outln!(
            "State file written to {} (index {}, {} jobs)",
            args.file.display(),
            header.index,
            header.jobs
        )?;
        Ok(ExitCode::SUCCESS)
    })
}

fn read_header(file: impl std::io::Read) -> anyhow::Result<SnapshotHeader> {
    crate::snapshot_file::read_header(file)
        .map_err(|err| anyhow::anyhow!("Error verifying snapshot: not a caravan snapshot: {err}"))
}

fn snapshot_inspect(args: &SnapshotInspectArgs) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(&args.file).map_err(|err| {
        anyhow::anyhow!("Error opening snapshot file {}: {err}", args.file.display())
    })?;
    let size = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    // Only the header is read: the state after it is not decompressed.
    let header = read_header(file)?;
    outln!(
        "{}",
        super::format::kv(&[
            ("Created", super::format::format_nanos(header.created_at)),
            ("Size", format!("{size} B")),
            ("Index", header.index.to_string()),
            ("Term", header.term.to_string()),
            ("Version", header.version.to_string()),
            ("Jobs", header.jobs.to_string()),
            ("Allocations", header.allocations.to_string()),
            ("Nodes", header.nodes.to_string()),
            ("Evaluations", header.evaluations.to_string()),
            ("Deployments", header.deployments.to_string()),
        ])
    )?;
    Ok(ExitCode::SUCCESS)
}

fn snapshot_restore(args: &SnapshotFileArgs) -> anyhow::Result<ExitCode> {
    let file = std::fs::read(&args.file).map_err(|err| {
        anyhow::anyhow!("Error opening snapshot file {}: {err}", args.file.display())
    })?;
    read_header(file.as_slice())?;
    let client = args.api.client()?;
    block_on(async {
        client
            .put_bytes("/v1/operator/snapshot", file)
            .await
            .map_err(|err| anyhow::anyhow!("Failed to restore snapshot: {err}"))?;
        outln!("Snapshot Restored")?;
        Ok(ExitCode::SUCCESS)
    })
}

fn list_peers(args: &RaftListArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client_stale(args.stale)?;
    block_on(async {
        let configuration: RaftConfiguration = client
            .get("/v1/operator/raft/configuration")
            .await
            .map_err(|err| anyhow::anyhow!("Failed to retrieve raft configuration: {err}"))?;
        let rows: Vec<Vec<String>> = configuration
            .servers
            .iter()
            .map(|server| {
                vec![
                    server.node.clone(),
                    server.id.clone(),
                    server.address.clone(),
                    if server.leader { "leader" } else { "follower" }.to_owned(),
                    server.voter.to_string(),
                    server.raft_protocol.clone(),
                ]
            })
            .collect();
        outln!(
            "{}",
            table(
                &["Node", "ID", "Address", "State", "Voter", "RaftProtocol"],
                &rows
            )
        )?;
        Ok(ExitCode::SUCCESS)
    })
}

fn remove_peer(args: &RaftRemoveArgs) -> anyhow::Result<ExitCode> {
    let query = match (&args.peer_id, &args.peer_address) {
        (Some(id), None) => format!("id={}", encode(id)),
        (None, Some(address)) => format!("address={}", encode(address)),
        _ => anyhow::bail!("Error: exactly one of -peer-id or -peer-address must be given"),
    };
    let client = args.api.client()?;
    block_on(async {
        client
            .delete::<()>(&format!("/v1/operator/raft/peer?{query}"))
            .await
            .map_err(|err| anyhow::anyhow!("Failed to remove raft peer: {err}"))?;
        let which = args
            .peer_id
            .as_deref()
            .or(args.peer_address.as_deref())
            .unwrap_or_default();
        outln!(
            "Removed peer with {} {which:?}",
            if args.peer_id.is_some() {
                "id"
            } else {
                "address"
            }
        )?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn server_join(args: &ServerJoinArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let query: Vec<String> = args
        .addresses
        .iter()
        .map(|address| format!("address={}", encode(address)))
        .collect();
    block_on(async {
        let reply: JoinResponse = client
            .put(
                &format!("/v1/agent/join?{}", query.join("&")),
                &EmptyResponse {},
            )
            .await
            .map_err(|err| anyhow::anyhow!("Error joining: {err}"))?;
        if !reply.error.is_empty() {
            anyhow::bail!("Error joining: {}", reply.error);
        }
        let joined = reply.num_joined;
        outln!("Joined {joined} servers successfully")?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn server_force_leave(args: &ServerForceLeaveArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        client
            .put::<_, ()>(
                &format!("/v1/agent/force-leave?node={}", encode(&args.node)),
                &EmptyResponse {},
            )
            .await
            .map_err(|err| anyhow::anyhow!("Error force-leaving server {}: {err}", args.node))?;
        Ok(ExitCode::SUCCESS)
    })
}
