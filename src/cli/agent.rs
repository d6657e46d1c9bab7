//! `caravan agent`: loads the configuration (files, `-dev`, flags), sets up logging and runs the
//! agent until a signal.

use std::process::ExitCode;

use anyhow::Context;

use super::AgentArgs;
use crate::agent::config::{AgentConfig, ClientConfig, ServerConfig};
use crate::agent::run::run_agent;

pub fn run(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    let config = load(args)?;
    config.validate()?;
    init_logging(
        config.log_level.as_deref().unwrap_or("INFO"),
        config.log_json.unwrap_or(false),
    );
    raise_open_files_limit();
    // This process is the caravan binary: its clients run log collectors as `caravan logmon`
    // processes that outlive it.
    if let Ok(exe) = std::env::current_exe() {
        crate::agent::logmon::collect_logs_in_processes(exe);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_agent(config, args.dev, &args.config))?;
    Ok(ExitCode::SUCCESS)
}

/// Raises the soft limit of open files to the hard one, as Go (so Nomad) does at start: a client
/// carrying thousands of tasks holds a few descriptors for each.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(soft, hard, error = %err, "cannot raise the limit of open files");
    }
}

/// `-dev` defaults, then config files in order, then flags: later wins.
fn load(args: &AgentArgs) -> anyhow::Result<AgentConfig> {
    if !args.dev && args.config.is_empty() && !args.server && !args.client {
        anyhow::bail!(
            "must specify either server, client or dev mode for the agent (-config FILE, -dev, -server or -client)"
        );
    }
    let mut config = if args.dev {
        AgentConfig::dev()
    } else {
        AgentConfig::default()
    };
    if !args.config.is_empty() {
        config.merge(&AgentConfig::load_paths(&args.config)?)?;
    }
    config.merge(&flags_config(args))?;
    Ok(config)
}

fn flags_config(args: &AgentArgs) -> AgentConfig {
    AgentConfig {
        name: args.node.clone(),
        region: args.region.clone(),
        datacenter: args.dc.clone(),
        data_dir: args.data_dir.clone(),
        plugin_dir: args.plugin_dir.clone(),
        log_level: args.log_level.clone(),
        log_json: args.log_json.then_some(true),
        bind_addr: args.bind.clone(),
        server: ServerConfig {
            enabled: args.server.then_some(true),
            bootstrap_expect: args.bootstrap_expect,
            server_join: crate::agent::config::ServerJoin {
                retry_join: (!args.retry_join.is_empty()).then(|| args.retry_join.clone()),
                retry_interval: args.retry_interval.clone(),
                retry_max: args.retry_max,
                start_join: None,
            },
            ..ServerConfig::default()
        },
        client: ClientConfig {
            enabled: args.client.then_some(true),
            servers: (!args.servers.is_empty()).then(|| args.servers.clone()),
            node_class: args.node_class.clone(),
            ..ClientConfig::default()
        },
        ..AgentConfig::default()
    }
}

/// Logs go to stderr at the configured level, with colour only on a terminal; `RUST_LOG` overrides.
/// The level applies to caravan's own logs; dependencies (openraft, wasmtime, cranelift, hyper)
/// log at WARN unless `RUST_LOG` asks for more. `caravan monitor` watchers get their own level
/// ([`crate::agent::log_stream`]).
fn init_logging(level: &str, json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = level.to_ascii_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,caravan={level}")));
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let stderr = if json {
        stderr.json().with_filter(filter).boxed()
    } else {
        stderr.with_filter(filter).boxed()
    };
    let result = tracing_subscriber::registry()
        .with(stderr)
        .with(crate::agent::log_stream::layer())
        .try_init();
    if let Err(err) = result {
        eprintln!("warning: logging was already set up: {err}");
    }
}
