//! The `caravan` command line: one module per command group, Nomad's commands and flags.
//!
//! Boundary: commands that act on a cluster reach it only through the HTTP API
//! (`-address`, `CARAVAN_ADDR`, `NOMAD_ADDR`); the CLI never opens the agent's state.
//! Flags are parsed (clap derive, Nomad's single-dash spelling accepted through
//! [`args::normalize`]) and then validated by each command.

mod acl;
mod agent;
mod agent_info;
mod agent_monitor;
mod alloc_actions;
mod alloc_exec;
mod alloc_logs;
mod alloc_status;
mod args;
mod config_validate;
mod deployment;
mod eval_status;
mod format;
mod job_diff;
mod job_file;
mod job_init;
mod job_launch;
mod job_restart;
mod job_run;
mod job_scale;
mod job_status;
mod job_validate;
mod monitor;
mod namespace;
mod node_config;
mod node_pool;
mod node_status;
mod operator;
mod operator_keyring;
mod operator_scheduler;
pub mod output;
mod resolve;
mod service;
mod status;
mod tls;
mod var;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use output::outln;

/// The default agent address, as Nomad's.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:4646";

#[derive(Debug, Parser)]
#[command(
    name = "caravan",
    version,
    about = "A WebAssembly-first workload orchestrator in the mould of Nomad",
    long_about = None,
    propagate_version = true,
    disable_help_subcommand = true,
    after_help = "Shortcuts, as Nomad's: run, stop, plan, validate, inspect, init (job ...); \
                  logs, exec, fs (alloc ...); alloc-status, eval-status, node-status, node-drain, \
                  server-members, server-join, server-force-leave, client-config."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a caravan agent: a server, a client, or both
    Agent(AgentArgs),
    /// Interacts with jobs
    #[command(subcommand)]
    Job(JobCommand),
    /// Interacts with allocations
    #[command(subcommand)]
    Alloc(AllocCommand),
    /// Interacts with evaluations
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Interacts with deployments
    #[command(subcommand)]
    Deployment(deployment::DeploymentCommand),
    /// Interacts with nodes
    #[command(subcommand)]
    Node(NodeCommand),
    /// Interacts with the native service catalog
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Interacts with servers
    #[command(subcommand)]
    Server(ServerCommand),
    /// Operates the cluster: Raft peers
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Interacts with ACL policies and tokens
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Interacts with namespaces
    #[command(subcommand)]
    Namespace(namespace::NamespaceCommand),
    /// Interacts with variables
    #[command(subcommand)]
    Var(var::VarCommand),
    /// Interacts with configurations
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Maintains the cluster's state
    #[command(subcommand)]
    System(SystemCommand),
    /// Makes a certificate authority and agent certificates for mutual TLS
    #[command(subcommand)]
    Tls(tls::TlsCommand),
    /// Displays the agent's counters per subsystem (raft, broker, client...)
    AgentInfo(agent_info::AgentInfoArgs),
    /// Streams the agent's log lines as they are written
    Monitor(agent_monitor::MonitorArgs),
    /// Displays the status of jobs, or of the object with the given ID prefix
    Status(status::StatusArgs),
    /// Prints the caravan version
    Version,
    /// Collects one task stream's logs into capped files (started by the client, not by hand)
    #[command(hide = true)]
    Logmon(LogmonArgs),
}

/// `caravan logmon`: the client's log collector process (see `task_runner/log_collector.rs`).
#[derive(Clone, Debug, Args)]
pub struct LogmonArgs {
    /// The allocation's directory
    #[arg(long)]
    pub alloc_dir: std::path::PathBuf,
    #[arg(long)]
    pub task: String,
    /// stdout or stderr
    #[arg(long)]
    pub stream: String,
    #[arg(long)]
    pub max_files: usize,
    /// Bytes per file
    #[arg(long)]
    pub max_file_size: u64,
}

/// `-json` and `-t`: a command prints the data it read as JSON, or through a Go template, instead
/// of its tables, as Nomad's do (the API's objects; JSON indented by four spaces).
#[derive(Clone, Debug, Default, Args)]
pub struct OutputArgs {
    /// Prints the data as JSON, as the API answers it
    #[arg(long, conflicts_with = "template")]
    pub json: bool,
    /// Formats the data with a Go template, e.g. `-t '{{range .}}{{.ID}}{{"\n"}}{{end}}'`
    #[arg(short = 't', value_name = "TEMPLATE")]
    pub template: Option<String>,
}

impl OutputArgs {
    /// Prints `value` if an output format was asked for, and says whether it did; the command
    /// prints its own output otherwise.
    pub fn printed<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<bool> {
        let text = if let Some(template) = &self.template {
            crate::template::format::format_value(template, value)?
        } else if self.json {
            format::indented_json(value)?
        } else {
            return Ok(false);
        };
        outln!("{text}")?;
        Ok(true)
    }

    /// Whether `-json` or `-t` was given.
    pub fn requested(&self) -> bool {
        self.json || self.template.is_some()
    }
}

/// A list command's `-filter`, `-per-page` and `-page-token` (Nomad's list flags).
#[derive(Clone, Debug, Default, Args)]
pub struct ListArgs {
    /// Lists only what matches this expression (Nomad's filter language), e.g.
    /// `Status == "complete"`
    #[arg(long, value_name = "EXPRESSION")]
    pub filter: Option<String>,
    /// How many results to show per page
    #[arg(long, value_name = "COUNT")]
    pub per_page: Option<u32>,
    /// Where the page starts (the token printed under the previous page)
    #[arg(long, value_name = "TOKEN")]
    pub page_token: Option<String>,
}

impl ListArgs {
    /// `path` with the list parameters these flags ask for.
    pub fn path(&self, path: &str) -> String {
        let mut params = Vec::new();
        if let Some(filter) = self.filter.as_deref().filter(|text| !text.is_empty()) {
            params.push(format!("filter={}", crate::api::client::encode(filter)));
        }
        if let Some(per_page) = self.per_page {
            params.push(format!("per_page={per_page}"));
        }
        if let Some(token) = self.page_token.as_deref().filter(|text| !text.is_empty()) {
            params.push(format!("next_token={}", crate::api::client::encode(token)));
        }
        if params.is_empty() {
            return path.to_owned();
        }
        let separator = if path.contains('?') { '&' } else { '?' };
        format!("{path}{separator}{}", params.join("&"))
    }

    /// Nomad's hint under a page that has a next one: the command to run for it.
    pub fn next_page_hint(next_token: Option<&str>) -> Option<String> {
        let token = next_token?;
        let mut args: Vec<String> = Vec::new();
        let mut skip_value = false;
        for arg in std::env::args() {
            if skip_value {
                skip_value = false;
                continue;
            }
            let flag = arg.trim_start_matches('-');
            if arg.starts_with('-') && flag == "page-token" {
                skip_value = true;
                continue;
            }
            if arg.starts_with('-') && flag.starts_with("page-token=") {
                continue;
            }
            args.push(arg);
        }
        Some(format!(
            "\nResults have been paginated. To get the next page run:\n\n{} -page-token {token}",
            args.join(" ")
        ))
    }
}

/// How to reach the agent's HTTP API.
#[derive(Clone, Debug, Args)]
pub struct ApiArgs {
    /// The address of the agent's HTTP API [env: CARAVAN_ADDR, NOMAD_ADDR]
    #[arg(long, value_name = "ADDR")]
    pub address: Option<String>,
    /// The region to forward requests to
    #[arg(long)]
    pub region: Option<String>,
    /// The namespace to act in (`*` lists every namespace) [env: CARAVAN_NAMESPACE,
    /// NOMAD_NAMESPACE]
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The ACL token's secret to act with [env: CARAVAN_TOKEN, NOMAD_TOKEN]
    #[arg(long, value_name = "SECRET_ID")]
    pub token: Option<String>,
    /// The CA certificate that signed the agent's, for https:// addresses [env: CARAVAN_CACERT,
    /// NOMAD_CACERT]
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The certificate to present to an agent that requires one [env: CARAVAN_CLIENT_CERT,
    /// NOMAD_CLIENT_CERT]
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key [env: CARAVAN_CLIENT_KEY, NOMAD_CLIENT_KEY]
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// The name the agent's certificate must hold, instead of the address's host [env:
    /// CARAVAN_TLS_SERVER_NAME, NOMAD_TLS_SERVER_NAME]
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Does not verify the agent's certificate (insecure) [env: CARAVAN_SKIP_VERIFY,
    /// NOMAD_SKIP_VERIFY]
    #[arg(long)]
    pub tls_skip_verify: bool,
}

/// The first of `CARAVAN_<name>`, `NOMAD_<name>` that is set and not empty.
fn env_var(name: &str) -> Option<String> {
    [format!("CARAVAN_{name}"), format!("NOMAD_{name}")]
        .into_iter()
        .find_map(|key| std::env::var(key).ok().filter(|value| !value.is_empty()))
}

impl ApiArgs {
    /// The address from the flag, then `CARAVAN_ADDR`, then `NOMAD_ADDR`, then the default.
    pub fn resolved_address(&self) -> String {
        self.address
            .clone()
            .or_else(|| std::env::var("CARAVAN_ADDR").ok().filter(|a| !a.is_empty()))
            .or_else(|| std::env::var("NOMAD_ADDR").ok().filter(|a| !a.is_empty()))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned())
    }

    /// The token from the flag, then `CARAVAN_TOKEN`, then `NOMAD_TOKEN`.
    pub fn resolved_token(&self) -> Option<String> {
        self.token
            .clone()
            .or_else(|| std::env::var("CARAVAN_TOKEN").ok())
            .or_else(|| std::env::var("NOMAD_TOKEN").ok())
            .filter(|token| !token.is_empty())
    }

    /// The namespace from the flag, then `CARAVAN_NAMESPACE`, then `NOMAD_NAMESPACE`; none: the
    /// agent's `default`.
    pub fn resolved_namespace(&self) -> Option<String> {
        self.namespace
            .clone()
            .or_else(|| std::env::var("CARAVAN_NAMESPACE").ok())
            .or_else(|| std::env::var("NOMAD_NAMESPACE").ok())
            .filter(|namespace| !namespace.is_empty())
    }

    /// The TLS files and checks from the flags, then `CARAVAN_*`, then `NOMAD_*`.
    pub fn resolved_tls(&self) -> crate::tls::CliTls {
        let path = |flag: &Option<PathBuf>, name: &str| {
            flag.clone().or_else(|| env_var(name).map(PathBuf::from))
        };
        crate::tls::CliTls {
            ca_cert: path(&self.ca_cert, "CACERT"),
            client_cert: path(&self.client_cert, "CLIENT_CERT"),
            client_key: path(&self.client_key, "CLIENT_KEY"),
            server_name: self
                .tls_server_name
                .clone()
                .or_else(|| env_var("TLS_SERVER_NAME")),
            skip_verify: self.tls_skip_verify
                || env_var("SKIP_VERIFY").is_some_and(|value| {
                    matches!(value.to_ascii_lowercase().as_str(), "1" | "t" | "true")
                }),
        }
    }

    /// The typed client for the agent these flags name; reads go to the leader.
    pub fn client(&self) -> anyhow::Result<crate::api::client::ApiClient> {
        self.client_stale(false)
    }

    /// [`Self::client`], with reads any server may answer when `stale` (Nomad's `-stale`).
    pub fn client_stale(&self, stale: bool) -> anyhow::Result<crate::api::client::ApiClient> {
        Ok(crate::api::client::ApiClient::new(
            crate::api::client::ClientConfig {
                address: self.resolved_address(),
                region: self.region.clone(),
                namespace: self.resolved_namespace(),
                token: self.resolved_token(),
                stale,
                tls: self.resolved_tls(),
            },
        )?)
    }
}

/// Runs a CLI command's async body on a small runtime.
pub fn block_on<T>(
    future: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?
        .block_on(future)
}

/// HCL2 variables for job files.
#[derive(Clone, Debug, Default, Args)]
pub struct VarArgs {
    /// Sets an HCL2 variable: -var 'key=value' (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Reads HCL2 variables from a file (repeatable)
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// A config file or directory of .hcl/.json files; repeatable, merged in order
    #[arg(long, value_name = "PATH")]
    pub config: Vec<PathBuf>,
    /// Runs a server and a client in one process with in-memory state and every driver enabled
    #[arg(long)]
    pub dev: bool,
    /// The address the agent binds its listeners to
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// The directory the agent keeps its state in
    #[arg(long = "data-dir", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// The directory user drivers (.wasm components) are loaded from
    #[arg(long = "plugin-dir", value_name = "PATH")]
    pub plugin_dir: Option<PathBuf>,
    /// The log level: TRACE, DEBUG, INFO, WARN, ERROR
    #[arg(long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Logs as JSON
    #[arg(long = "log-json")]
    pub log_json: bool,
    /// The agent's name (defaults to the host name)
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// The datacenter of the agent
    #[arg(long, value_name = "DC")]
    pub dc: Option<String>,
    /// The region of the agent
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Enables the server role
    #[arg(long)]
    pub server: bool,
    /// Enables the client role
    #[arg(long)]
    pub client: bool,
    /// The number of servers to wait for before bootstrapping
    #[arg(long = "bootstrap-expect", value_name = "N")]
    pub bootstrap_expect: Option<u32>,
    /// A server to join (host:port of its RPC port), retried until joined (repeatable)
    #[arg(long = "retry-join", value_name = "ADDR")]
    pub retry_join: Vec<String>,
    /// Time between join attempts (a Go duration, default 30s)
    #[arg(long = "retry-interval", value_name = "DURATION")]
    pub retry_interval: Option<String>,
    /// Join attempts before giving up; 0 never gives up
    #[arg(long = "retry-max", value_name = "N")]
    pub retry_max: Option<u32>,
    /// Servers a client registers with, host:port (repeatable)
    #[arg(long = "servers", value_name = "ADDR", value_delimiter = ',')]
    pub servers: Vec<String>,
    /// The node class of a client
    #[arg(long = "node-class", value_name = "CLASS")]
    pub node_class: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Creates an example job file
    Init(JobInitArgs),
    /// Checks a job file for errors without running it
    Validate(JobValidateArgs),
    /// Submits a job file, or prints its API JSON with -output
    Run(JobRunArgs),
    /// Shows a job's status, or lists jobs
    Status(JobStatusArgs),
    /// Stops a running job
    Stop(JobStopArgs),
    /// Dry-runs a job file: what the scheduler would do
    Plan(JobPlanArgs),
    /// Shows a job's versions, with -p the changes between them
    History(JobHistoryArgs),
    /// Lists a job's allocations
    Allocs(JobIdArgs),
    /// Prints a registered job as API JSON
    Inspect(JobIdArgs),
    /// Reverts a job to an earlier version
    Revert(deployment::JobRevertArgs),
    /// Promotes the canaries of a job's latest deployment
    Promote(deployment::JobPromoteArgs),
    /// Lists a job's deployments
    Deployments(deployment::JobDeploymentsArgs),
    /// Interacts with periodic jobs
    #[command(subcommand)]
    Periodic(JobPeriodicCommand),
    /// Dispatches a parameterized job with a payload and meta
    Dispatch(job_launch::JobDispatchArgs),
    /// Forces a new evaluation of a job, optionally rescheduling its failed allocations
    Eval(job_launch::JobEvalArgs),
    /// Changes a task group's count within its scaling policy
    Scale(job_scale::JobScaleArgs),
    /// Lists a job's scaling events
    ScalingEvents(job_scale::JobScalingEventsArgs),
    /// Restarts or reschedules a job's running allocations, in batches
    Restart(job_restart::JobRestartArgs),
}

#[derive(Debug, Subcommand)]
pub enum JobPeriodicCommand {
    /// Launches a child of a periodic job now, whatever its schedule
    Force(job_launch::JobPeriodicForceArgs),
}

#[derive(Debug, Args)]
pub struct JobInitArgs {
    /// Writes a short example without comments
    #[arg(long)]
    pub short: bool,
    /// The file to write
    #[arg(default_value = "example.nomad.hcl")]
    pub filename: PathBuf,
}

#[derive(Debug, Args)]
pub struct JobFileArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    /// The job file (HCL, or JSON with -json)
    pub file: PathBuf,
    /// Reads the job file as API JSON instead of HCL
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JobValidateArgs {
    #[command(flatten)]
    pub job: JobFileArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct JobRunArgs {
    #[command(flatten)]
    pub job: JobFileArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Prints the job as API JSON instead of submitting it
    #[arg(long)]
    pub output: bool,
    /// Returns once the job is submitted instead of monitoring its evaluation
    #[arg(long)]
    pub detach: bool,
    /// Submits only if the job's modify index matches (from `job plan`)
    #[arg(long = "check-index", value_name = "INDEX")]
    pub check_index: Option<u64>,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct JobStatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job ID (or prefix); lists every job when left out
    pub job_id: Option<String>,
    /// Shows only the job's summary
    #[arg(long)]
    pub short: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
    /// Shows every allocation, not only those of the latest version
    #[arg(long = "all-allocs")]
    pub all_allocs: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct JobStopArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job ID (or prefix)
    pub job_id: String,
    /// Removes the job from the state entirely
    #[arg(long)]
    pub purge: bool,
    /// Returns without monitoring the evaluation
    #[arg(long)]
    pub detach: bool,
    /// Answers yes to the confirmation
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct JobPlanArgs {
    #[command(flatten)]
    pub job: JobFileArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Shows the full diff
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct JobIdArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job ID (or prefix)
    pub job_id: String,
    /// Shows full IDs and details
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct JobHistoryArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The job ID (or prefix)
    pub job_id: String,
    /// Shows the differences between each version and the one before it
    #[arg(short = 'p')]
    pub diff: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum AllocCommand {
    /// Shows an allocation's status, task events and resources
    Status(AllocStatusArgs),
    /// Streams a task's stdout or stderr
    Logs(AllocLogsArgs),
    /// Lists or reads files in an allocation's directory
    Fs(AllocFsArgs),
    /// Runs a command inside a running task
    #[command(trailing_var_arg = true)]
    Exec(AllocExecArgs),
    /// Stops and reschedules an allocation
    Stop(AllocIdArgs),
    /// Restarts an allocation's tasks in place
    Restart(AllocTaskArgs),
    /// Sends a signal to an allocation's tasks
    Signal(AllocSignalArgs),
}

#[derive(Debug, Args)]
pub struct AllocIdArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The allocation ID (or prefix)
    pub alloc_id: String,
    /// Returns without monitoring
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct AllocStatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The allocation ID (or prefix)
    pub alloc_id: String,
    /// Shows full IDs and every event detail
    #[arg(long)]
    pub verbose: bool,
    /// Shows resource usage
    #[arg(long)]
    pub stats: bool,
    /// Shows a short summary
    #[arg(long)]
    pub short: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct AllocLogsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The allocation ID (or prefix)
    pub alloc_id: String,
    /// The task (required when the group has several)
    pub task: Option<String>,
    /// Follows the log as it grows
    #[arg(short = 'f')]
    pub follow: bool,
    /// Shows stderr instead of stdout
    #[arg(long)]
    pub stderr: bool,
    /// Shows only the end of the log
    #[arg(long)]
    pub tail: bool,
    /// Lines to show with -tail
    #[arg(short = 'n', value_name = "LINES")]
    pub lines: Option<u64>,
    /// Bytes to show with -tail
    #[arg(short = 'c', value_name = "BYTES")]
    pub bytes: Option<u64>,
}

#[derive(Debug, Args)]
pub struct AllocFsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The allocation ID (or prefix)
    pub alloc_id: String,
    /// The path inside the allocation dir
    #[arg(default_value = "/")]
    pub path: String,
    /// Shows the file's metadata instead of its contents
    #[arg(long)]
    pub stat: bool,
    /// Follows a file as it grows
    #[arg(short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct AllocExecArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The task to run the command in
    #[arg(long)]
    pub task: Option<String>,
    /// Allocates a terminal
    #[arg(short = 't')]
    pub tty: bool,
    /// Passes standard input
    #[arg(short = 'i')]
    pub stdin: bool,
    /// The allocation ID (or prefix)
    pub alloc_id: String,
    /// The command and its arguments
    #[arg(required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AllocTaskArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The allocation ID (or prefix)
    pub alloc_id: String,
    /// Only this task
    pub task: Option<String>,
}

#[derive(Debug, Args)]
pub struct AllocSignalArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The signal to send
    #[arg(short = 's', default_value = "SIGKILL")]
    pub signal: String,
    /// The allocation ID (or prefix)
    pub alloc_id: String,
    /// Only this task
    pub task: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Shows an evaluation's status and placement failures
    Status(EvalStatusArgs),
    /// Lists evaluations
    List(ListCommandArgs),
}

#[derive(Debug, Args)]
pub struct EvalStatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The evaluation ID (or prefix)
    pub eval_id: String,
    /// Monitors the evaluation until it completes
    #[arg(long)]
    pub monitor: bool,
    /// Shows full IDs
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ApiOnlyArgs {
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Garbage-collects every finished job, evaluation, allocation, deployment and down node now
    Gc(ApiOnlyArgs),
}

/// A list command's arguments: the agent, the list flags and the output format.
#[derive(Debug, Args)]
pub struct ListCommandArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub list: ListArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Shows a node's status, or lists nodes
    Status(NodeStatusArgs),
    /// Drains a node of its allocations
    Drain(node_status::NodeDrainArgs),
    /// Marks a node eligible or ineligible for new allocations
    Eligibility(node_status::NodeEligibilityArgs),
    /// Interacts with node pools
    #[command(subcommand)]
    Pool(node_pool::NodePoolCommand),
    /// Shows or changes the servers a client agent calls
    Config(node_config::NodeConfigArgs),
}

#[derive(Debug, Args)]
pub struct NodeStatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The node ID (or prefix); lists every node when left out
    pub node_id: Option<String>,
    /// The node of the agent at -address
    #[arg(long = "self")]
    pub self_node: bool,
    /// Shows the node's allocations
    #[arg(long)]
    pub allocs: bool,
    /// Shows full IDs and attributes
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub list: ListArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Lists the servers of the cluster
    Members(status::ServerMembersArgs),
    /// Joins the agent's server to other servers
    Join(operator::ServerJoinArgs),
    /// Removes a failed server from the cluster
    ForceLeave(operator::ServerForceLeaveArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Checks agent config files or directories
    Validate(ConfigValidateArgs),
}

#[derive(Debug, Args)]
pub struct ConfigValidateArgs {
    /// Config files or directories, merged in order
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Parses `args` (the program name first) and runs the command.
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<ExitCode> {
    let command = Cli::command();
    let args = args::normalize(&command, args::expand_alias(args.into_iter().collect()));
    let matches = match command.try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(err) => {
            let code = if err.use_stderr() { 1 } else { 0 };
            err.print()?;
            return Ok(ExitCode::from(code));
        }
    };
    let cli = Cli::from_arg_matches(&matches)?;
    match cli.command {
        Command::Version => {
            outln!("caravan v{}", env!("CARGO_PKG_VERSION"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(args) => agent::run(&args),
        Command::Logmon(args) => {
            crate::agent::logmon::run(crate::agent::logmon::LogmonArgs {
                alloc_dir: args.alloc_dir,
                task: args.task,
                stream: args.stream,
                max_files: args.max_files,
                max_file_size: args.max_file_size,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Job(JobCommand::Init(args)) => job_init::run(&args),
        Command::Job(JobCommand::Validate(args)) => job_validate::run(&args),
        Command::Job(JobCommand::Run(args)) if args.output => {
            outln!("{}", job_file::api_json(&job_file::load(&args.job)?)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Validate(args)) => config_validate::run(&args),
        Command::Tls(command) => tls::run(&command),
        Command::Job(JobCommand::Run(args)) => nomad_errors(job_run::run(&args)),
        Command::Job(JobCommand::Plan(args)) => nomad_errors(job_run::plan(&args)),
        Command::Job(JobCommand::Status(args)) => nomad_errors(job_status::status(&args)),
        Command::Job(JobCommand::Stop(args)) => nomad_errors(job_status::stop(&args)),
        Command::Job(JobCommand::History(args)) => nomad_errors(job_status::history(&args)),
        Command::Job(JobCommand::Allocs(args)) => nomad_errors(job_status::allocs(&args)),
        Command::Job(JobCommand::Inspect(args)) => nomad_errors(job_status::inspect(&args)),
        Command::Job(JobCommand::Eval(args)) => nomad_errors(job_launch::eval(&args)),
        Command::Job(JobCommand::Restart(args)) => nomad_errors(job_restart::run(&args)),
        Command::Alloc(AllocCommand::Status(args)) => nomad_errors(alloc_status::run(&args)),
        Command::Alloc(AllocCommand::Logs(args)) => nomad_errors(alloc_logs::logs(&args)),
        Command::Alloc(AllocCommand::Fs(args)) => nomad_errors(alloc_logs::fs(&args)),
        Command::Alloc(AllocCommand::Exec(args)) => nomad_errors(alloc_exec::run(&args)),
        Command::Alloc(AllocCommand::Stop(args)) => nomad_errors(alloc_actions::stop(&args)),
        Command::Alloc(AllocCommand::Restart(args)) => nomad_errors(alloc_actions::restart(&args)),
        Command::Alloc(AllocCommand::Signal(args)) => nomad_errors(alloc_actions::signal(&args)),
        Command::Deployment(command) => nomad_errors(deployment::run(&command)),
        Command::Service(command) => nomad_errors(service::run(&command)),
        Command::Job(JobCommand::Revert(args)) => nomad_errors(deployment::job_revert(&args)),
        Command::Job(JobCommand::Promote(args)) => nomad_errors(deployment::job_promote(&args)),
        Command::Job(JobCommand::Deployments(args)) => {
            nomad_errors(deployment::job_deployments(&args))
        }
        Command::Job(JobCommand::Periodic(JobPeriodicCommand::Force(args))) => {
            nomad_errors(job_launch::periodic_force(&args))
        }
        Command::Job(JobCommand::Dispatch(args)) => nomad_errors(job_launch::dispatch(&args)),
        Command::Job(JobCommand::Scale(args)) => nomad_errors(job_scale::scale(&args)),
        Command::Job(JobCommand::ScalingEvents(args)) => {
            nomad_errors(job_scale::scaling_events(&args))
        }
        Command::Eval(EvalCommand::Status(args)) => nomad_errors(eval_status::status(&args)),
        Command::Eval(EvalCommand::List(args)) => nomad_errors(eval_status::list(&args)),
        Command::Node(NodeCommand::Status(args)) => nomad_errors(node_status::status(&args)),
        Command::Node(NodeCommand::Drain(args)) => nomad_errors(node_status::drain(&args)),
        Command::Node(NodeCommand::Pool(command)) => nomad_errors(node_pool::run(&command)),
        Command::Node(NodeCommand::Config(args)) => nomad_errors(node_config::run(&args)),
        Command::Node(NodeCommand::Eligibility(args)) => {
            nomad_errors(node_status::eligibility(&args))
        }
        Command::Server(ServerCommand::Members(args)) => {
            nomad_errors(status::server_members(&args))
        }
        Command::Server(ServerCommand::Join(args)) => nomad_errors(operator::server_join(&args)),
        Command::Server(ServerCommand::ForceLeave(args)) => {
            nomad_errors(operator::server_force_leave(&args))
        }
        Command::Operator(command) => nomad_errors(operator::run(&command)),
        Command::Acl(command) => nomad_errors(acl::run(&command)),
        Command::Namespace(command) => nomad_errors(namespace::run(&command)),
        Command::Var(command) => nomad_errors(var::run(&command)),
        Command::Status(args) => nomad_errors(status::run(&args)),
        Command::AgentInfo(args) => nomad_errors(agent_info::run(&args)),
        Command::Monitor(args) => nomad_errors(agent_monitor::run(&args)),
        Command::System(SystemCommand::Gc(args)) => nomad_errors(system_gc(&args)),
    }
}

/// `caravan system gc`: silent on success, as Nomad's.
fn system_gc(args: &ApiOnlyArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        client
            .put_bytes("/v1/system/gc", Vec::new())
            .await
            .map_err(|err| anyhow::anyhow!("Error running system garbage-collection: {err}"))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// A command that talks to an agent prints its errors as Nomad does, already worded ("Error
/// querying job: ..."), without the `Error: ` prefix the binary puts on other failures.
fn nomad_errors(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match result {
        Err(err) if !output::is_broken_pipe(&err) => {
            let message = format!("{err:#}");
            eprintln!("{message}");
            if let Some(hint) = tls::hint(&message) {
                eprintln!("{hint}");
            }
            Ok(ExitCode::from(1))
        }
        other => other,
    }
}
