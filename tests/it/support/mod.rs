//! Helpers shared by the integration tests: running the real binary in a temp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `caravan` binary cargo built for these tests.
pub fn caravan_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_caravan"))
}

/// The repository's test data directory.
pub fn test_data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `caravan ARGS` in `dir` with no agent address in the environment.
pub fn caravan(dir: &Path, args: &[&str]) -> anyhow::Result<Run> {
    let output = Command::new(caravan_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("CARAVAN_ADDR")
        .env_remove("NOMAD_ADDR")
        .env_remove("CARAVAN_TOKEN")
        .env_remove("NOMAD_TOKEN")
        .output()?;
    Ok(Run::from(output))
}

/// [`caravan`] off the runtime's workers, for async tests whose agent answers on them.
pub async fn caravan_async(dir: &Path, args: &[&str]) -> anyhow::Result<Run> {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        caravan(&dir, &args)
    })
    .await?
}

/// Runs `caravan ARGS` against the agent at `url` off the runtime's workers: `-address url` goes
/// before the first flag, after the subcommand's words.
pub async fn caravan_at(url: &str, args: &[&str]) -> anyhow::Result<Run> {
    let mut all: Vec<&str> = args.to_vec();
    let position = all
        .iter()
        .position(|arg| arg.starts_with('-'))
        .unwrap_or(all.len());
    all.splice(position..position, ["-address", url]);
    caravan_async(&std::env::temp_dir(), &all).await
}

pub mod cluster;
pub mod dev;
pub mod server;

/// A client agent's config (raw_exec enabled, loopback) naming the server at `server_rpc`,
/// its data in `<dir>/<name>`.
pub fn raw_exec_client_config(dir: &Path, name: &str, http: u16, server_rpc: u16) -> String {
    format!(
        r#"
log_level = "DEBUG"
data_dir  = "{data}"
name      = "{name}"
bind_addr = "127.0.0.1"
client {{
  enabled = true
  servers = ["127.0.0.1:{server_rpc}"]
}}
plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}
ports {{
  http = {http}
}}
"#,
        data = dir.join(name).display()
    )
}

/// A one-server agent's config (`server1`, loopback) whose nodes miss their heartbeat within
/// seconds (`min_heartbeat_ttl = "2s"`, `heartbeat_grace = "1s"`), its data in `<dir>/server1`.
pub fn short_ttl_server_config(dir: &Path, server_http: u16, server_rpc: u16) -> String {
    format!(
        r#"
log_level = "DEBUG"
data_dir  = "{data}"
name      = "server1"
bind_addr = "127.0.0.1"
server {{
  enabled           = true
  bootstrap_expect  = 1
  min_heartbeat_ttl = "2s"
  heartbeat_grace   = "1s"
}}
ports {{
  http = {server_http}
  rpc  = {server_rpc}
}}
"#,
        data = dir.join("server1").display()
    )
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `caravan agent` process, killed with SIGKILL when dropped so a failing test leaves nothing
/// running.
pub struct AgentProcess {
    pub child: std::process::Child,
}

impl AgentProcess {
    /// Starts `caravan agent -config CONFIG`, logging to `<dir>/<name>.log`.
    pub fn start(dir: &Path, name: &str, config: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let child = Command::new(caravan_bin())
            .args(["agent", "-config"])
            .arg(config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Self { child })
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
