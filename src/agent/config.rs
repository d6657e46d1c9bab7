//! The agent configuration: Nomad's HCL (or JSON) agent config files, merged in order.
//!
//! `caravan agent -config a.hcl -config dir/` reads each file (a directory contributes its `*.hcl`
//! and `*.json` files in lexical order) and merges them as Nomad does: a later file's scalars
//! override earlier ones, blocks merge key by key, lists are replaced. Each file is checked on its
//! own first, so an unknown key is reported against the file and line that holds it.
//!
//! Invariant: every key Nomad's agent config accepts that caravan does not act on is still parsed
//! and kept (so real configs load), and every key Nomad does not know is rejected by name.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::task_runner::artifact_hook::ArtifactLimits;
use crate::structs::duration::parse_go_duration;

/// The merged agent configuration. Field names are the HCL keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub region: Option<String>,
    pub datacenter: Option<String>,
    pub name: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub plugin_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub log_json: Option<bool>,
    pub log_file: Option<PathBuf>,
    pub bind_addr: Option<String>,
    pub enable_debug: Option<bool>,
    pub ports: Ports,
    pub addresses: Addresses,
    pub advertise: Addresses,
    pub server: ServerConfig,
    pub client: ClientConfig,
    pub plugin: BTreeMap<String, PluginConfig>,
    pub acl: AclConfig,
    pub tls: TlsConfig,
    pub ui: UiConfig,
    pub telemetry: Option<Value>,
    pub consul: Option<Value>,
    pub vault: Option<Value>,
    pub leave_on_interrupt: Option<bool>,
    pub leave_on_terminate: Option<bool>,
    pub disable_update_check: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ports {
    pub http: Option<u16>,
    pub rpc: Option<u16>,
    pub serf: Option<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Addresses {
    pub http: Option<String>,
    pub rpc: Option<String>,
    pub serf: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerJoin {
    pub retry_join: Option<Vec<String>>,
    pub retry_max: Option<u32>,
    pub retry_interval: Option<String>,
    pub start_join: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub enabled: Option<bool>,
    pub bootstrap_expect: Option<u32>,
    pub data_dir: Option<PathBuf>,
    pub num_schedulers: Option<u32>,
    pub server_join: ServerJoin,
    pub retry_join: Option<Vec<String>>,
    pub start_join: Option<Vec<String>>,
    pub heartbeat_grace: Option<String>,
    pub min_heartbeat_ttl: Option<String>,
    pub max_heartbeats_per_second: Option<f64>,
    pub node_gc_threshold: Option<String>,
    pub job_gc_threshold: Option<String>,
    pub eval_gc_threshold: Option<String>,
    pub batch_eval_gc_threshold: Option<String>,
    pub deployment_gc_threshold: Option<String>,
    pub job_gc_interval: Option<String>,
    pub raft_protocol: Option<u32>,
    /// Entries after which a Raft snapshot is taken and the log compacted.
    pub raft_snapshot_threshold: Option<u64>,
    /// Entries kept in the log behind a snapshot.
    pub raft_trailing_logs: Option<u64>,
    pub encrypt: Option<String>,
    /// Limits on the work one request can cause (see `server::limits`); each at least 1.
    pub job_max_task_groups: Option<u64>,
    pub job_max_tasks_per_group: Option<u64>,
    /// The sum of a job's group counts.
    pub job_max_placements: Option<u64>,
    /// Bytes of a job as JSON.
    pub job_max_size: Option<u64>,
    /// Bytes of any HTTP request body.
    pub max_request_body_size: Option<u64>,
    /// The scheduler configuration a new cluster starts with.
    pub default_scheduler_config: SchedulerConfigBlock,
}

/// `server { default_scheduler_config { ... } }` (Nomad's keys).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfigBlock {
    /// `binpack` or `spread`.
    pub scheduler_algorithm: Option<String>,
    pub memory_oversubscription_enabled: Option<bool>,
    pub reject_job_registration: Option<bool>,
    pub pause_eval_broker: Option<bool>,
    pub preemption_config: PreemptionConfigBlock,
}

/// `default_scheduler_config { preemption_config { ... } }`: stored and shown only, caravan's
/// scheduler does not preempt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreemptionConfigBlock {
    pub system_scheduler_enabled: Option<bool>,
    pub sysbatch_scheduler_enabled: Option<bool>,
    pub batch_scheduler_enabled: Option<bool>,
    pub service_scheduler_enabled: Option<bool>,
}

impl SchedulerConfigBlock {
    /// The configuration this block describes, over Nomad's defaults.
    pub fn to_config(&self) -> Result<crate::structs::SchedulerConfiguration, String> {
        let defaults = crate::structs::SchedulerConfiguration::default();
        let preemption = &self.preemption_config;
        let default_preemption = defaults.preemption_config;
        Ok(crate::structs::SchedulerConfiguration {
            scheduler_algorithm: match &self.scheduler_algorithm {
                Some(text) => text.parse()?,
                None => defaults.scheduler_algorithm,
            },
            preemption_config: crate::structs::PreemptionConfig {
                system_scheduler_enabled: preemption
                    .system_scheduler_enabled
                    .unwrap_or(default_preemption.system_scheduler_enabled),
                sysbatch_scheduler_enabled: preemption
                    .sysbatch_scheduler_enabled
                    .unwrap_or(default_preemption.sysbatch_scheduler_enabled),
                batch_scheduler_enabled: preemption
                    .batch_scheduler_enabled
                    .unwrap_or(default_preemption.batch_scheduler_enabled),
                service_scheduler_enabled: preemption
                    .service_scheduler_enabled
                    .unwrap_or(default_preemption.service_scheduler_enabled),
            },
            memory_oversubscription_enabled: self
                .memory_oversubscription_enabled
                .unwrap_or(defaults.memory_oversubscription_enabled),
            reject_job_registration: self
                .reject_job_registration
                .unwrap_or(defaults.reject_job_registration),
            pause_eval_broker: self.pause_eval_broker.unwrap_or(defaults.pause_eval_broker),
            create_index: 0,
            modify_index: 0,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostVolumeConfig {
    pub path: Option<PathBuf>,
    pub read_only: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReservedConfig {
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
    pub disk: Option<u32>,
    pub reserved_ports: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    pub enabled: Option<bool>,
    pub servers: Option<Vec<String>>,
    pub server_join: ServerJoin,
    pub state_dir: Option<PathBuf>,
    pub alloc_dir: Option<PathBuf>,
    pub node_class: Option<String>,
    pub node_pool: Option<String>,
    pub meta: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub host_volume: BTreeMap<String, HostVolumeConfig>,
    pub network_interface: Option<String>,
    pub cpu_total_compute: Option<u32>,
    pub memory_total_mb: Option<u32>,
    /// Nomad's `disk_free_mb`: overrides the fingerprinted free disk the scheduler packs into.
    pub disk_free_mb: Option<u32>,
    pub min_dynamic_port: Option<u16>,
    pub max_dynamic_port: Option<u16>,
    pub max_kill_timeout: Option<String>,
    pub gc_interval: Option<String>,
    pub reserved: ReservedConfig,
    pub artifact: ArtifactConfig,
}

/// `client { artifact { ... } }` (Nomad's block of the same name).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArtifactConfig {
    /// Absolute directories `file://` artifact sources may be read from (beneath, never through
    /// a symbolic link); `file://` sources are refused when empty.
    pub file_allowlist: Option<Vec<PathBuf>>,
    /// A download must complete within this (Go duration; default 30m).
    pub http_read_timeout: Option<String>,
    /// The largest download (`100GB`, `512MiB`, as go-humanize reads them; default 100GB).
    pub http_max_size: Option<String>,
    /// Bytes one archive may unpack to (default 100GB).
    pub decompression_size_limit: Option<String>,
    /// Entries one archive may unpack to (default 4096).
    pub decompression_file_count_limit: Option<u64>,
    /// A git clone must complete within this (default 30m).
    pub git_timeout: Option<String>,
    /// Nomad's getters caravan does not have (GCS, Mercurial, S3): parsed and kept.
    pub gcs_timeout: Option<String>,
    pub hg_timeout: Option<String>,
    pub s3_timeout: Option<String>,
    /// Nomad's artifact sandbox settings: caravan's fetches are confined by `allocfs` instead.
    pub disable_artifact_inspection: Option<bool>,
    pub disable_filesystem_isolation: Option<bool>,
    pub filesystem_isolation_extra_paths: Option<Vec<String>>,
    pub set_environment_variables: Option<String>,
}

impl ArtifactConfig {
    /// The limits the artifact hook applies, Nomad's defaults where unset.
    pub fn limits(&self) -> Result<ArtifactLimits, String> {
        let defaults = ArtifactLimits::default();
        let duration = |key: &str, value: &Option<String>, default: Duration| match value {
            Some(text) => {
                parse_go_duration(text).map_err(|err| format!("client.artifact.{key}: {err}"))
            }
            None => Ok(default),
        };
        let size = |key: &str, value: &Option<String>, default: u64| match value {
            Some(text) => parse_bytes(text).map_err(|err| format!("client.artifact.{key}: {err}")),
            None => Ok(default),
        };
        Ok(ArtifactLimits {
            http_read_timeout: duration(
                "http_read_timeout",
                &self.http_read_timeout,
                defaults.http_read_timeout,
            )?,
            http_max_size: size("http_max_size", &self.http_max_size, defaults.http_max_size)?,
            decompression_size_limit: size(
                "decompression_size_limit",
                &self.decompression_size_limit,
                defaults.decompression_size_limit,
            )?,
            decompression_file_count_limit: self
                .decompression_file_count_limit
                .unwrap_or(defaults.decompression_file_count_limit),
            git_timeout: duration("git_timeout", &self.git_timeout, defaults.git_timeout)?,
        })
    }
}

/// A byte size as go-humanize's `ParseBytes` reads it: a number (decimals allowed), optional
/// space, and a unit: `B`, SI `kB`/`KB`/`K`, `MB`/`M`, ... (powers of 1000) or IEC `KiB`/`Ki`,
/// `MiB`/`Mi`, ... (powers of 1024), case-insensitive; no unit means bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (like \"100GB\" or \"512MiB\")"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "p" | "pb" => 1e15,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024f64.powi(2),
        "gi" | "gib" => 1024f64.powi(3),
        "ti" | "tib" => 1024f64.powi(4),
        "pi" | "pib" => 1024f64.powi(5),
        other => return Err(format!("{text:?}: unknown size unit {other:?}")),
    };
    let bytes = number * multiplier;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    // A whole, non-negative number of bytes below u64::MAX: the cast is exact enough.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes as u64)
}

/// `plugin "NAME" { config { ... } }`: the driver's own settings, handed to it as JSON, and the
/// capability grants the host reads from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginConfig {
    pub config: Option<Value>,
    pub args: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AclConfig {
    pub enabled: Option<bool>,
    pub token_ttl: Option<String>,
    pub policy_ttl: Option<String>,
    pub role_ttl: Option<String>,
    pub replication_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// HTTPS on the HTTP API port.
    pub http: Option<bool>,
    /// TLS on the RPC port and between agents; internal routes need a CA-signed certificate.
    pub rpc: Option<bool>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Peers must hold `server.<region>.nomad` (servers) or `client.<region>.nomad`.
    pub verify_server_hostname: Option<bool>,
    /// Every HTTPS caller must present a certificate the CA signed.
    pub verify_https_client: Option<bool>,
    /// Parsed and kept; rustls's defaults (TLS 1.2 and 1.3, its cipher suites) apply.
    pub tls_min_version: Option<String>,
    pub tls_cipher_suites: Option<String>,
    pub tls_prefer_server_cipher_suites: Option<bool>,
    pub rpc_upgrade_mode: Option<bool>,
}

impl TlsConfig {
    /// True when the block turns TLS on for either port.
    pub fn enabled(&self) -> bool {
        self.http == Some(true) || self.rpc == Some(true)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    pub enabled: Option<bool>,
}

/// Why a configuration could not be loaded or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax or schema error, located in its file.
    #[error("{file}:{line}:{column}: {message}")]
    Located {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A schema error whose position could not be found.
    #[error("{file}: {message}")]
    File { file: String, message: String },
    /// The merged configuration is not usable.
    #[error("invalid agent configuration: {0}")]
    Invalid(String),
}

/// The `file://` artifact sources `-dev` allows: the Wasm guests built beside the running
/// binary (`<target>/wasm-guests`, where `wasm-examples/jobs` and `scripts/demo.sh` take them).
fn dev_artifact_dirs() -> Option<Vec<PathBuf>> {
    let exe = std::env::current_exe().ok()?;
    let guests = exe.parent()?.parent()?.join("wasm-guests");
    Some(vec![guests])
}

/// Default ports, as Nomad's.
pub const DEFAULT_HTTP_PORT: u16 = 4646;
pub const DEFAULT_RPC_PORT: u16 = 4647;
pub const DEFAULT_SERF_PORT: u16 = 4648;

impl AgentConfig {
    /// Loads and merges every path in order; a directory contributes its `.hcl` and `.json` files
    /// sorted by name.
    pub fn load_paths(paths: &[PathBuf]) -> Result<Self, ConfigError> {
        let mut merged = Value::Object(serde_json::Map::new());
        for file in expand_paths(paths)? {
            let value = load_file_value(&file)?;
            merge_values(&mut merged, value);
        }
        serde_json::from_value(merged).map_err(|err| ConfigError::Invalid(err.to_string()))
    }

    /// Parses one configuration from text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let value = parse_value(text, file)?;
        serde_json::from_value(value).map_err(|err| ConfigError::Invalid(err.to_string()))
    }

    /// The configuration `caravan agent -dev` runs with: a server and a client in one process on
    /// loopback, every built-in driver enabled (raw_exec included), state in a temporary dir.
    pub fn dev() -> Self {
        let mut plugin = BTreeMap::new();
        plugin.insert(
            "raw_exec".to_owned(),
            PluginConfig {
                config: Some(serde_json::json!({ "enabled": true })),
                args: None,
            },
        );
        Self {
            name: Some("dev".to_owned()),
            log_level: Some("DEBUG".to_owned()),
            bind_addr: Some("127.0.0.1".to_owned()),
            server: ServerConfig {
                enabled: Some(true),
                bootstrap_expect: Some(1),
                ..ServerConfig::default()
            },
            client: ClientConfig {
                enabled: Some(true),
                // Nomad's dev mode: tasks' ports and the node's address are on loopback.
                network_interface: Some("lo".to_owned()),
                artifact: ArtifactConfig {
                    file_allowlist: dev_artifact_dirs(),
                    ..ArtifactConfig::default()
                },
                ..ClientConfig::default()
            },
            plugin,
            ..Self::default()
        }
    }

    /// Overlays `other` on `self` with the same rules as merging files.
    pub fn merge(&mut self, other: &Self) -> Result<(), ConfigError> {
        let mut merged =
            serde_json::to_value(&*self).map_err(|err| ConfigError::Invalid(err.to_string()))?;
        let overlay =
            serde_json::to_value(other).map_err(|err| ConfigError::Invalid(err.to_string()))?;
        merge_values(&mut merged, strip_nulls(overlay));
        *self =
            serde_json::from_value(merged).map_err(|err| ConfigError::Invalid(err.to_string()))?;
        Ok(())
    }

    pub fn server_enabled(&self) -> bool {
        self.server.enabled.unwrap_or(false)
    }

    pub fn client_enabled(&self) -> bool {
        self.client.enabled.unwrap_or(false)
    }

    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or("global")
    }

    pub fn datacenter(&self) -> &str {
        self.datacenter.as_deref().unwrap_or("dc1")
    }

    pub fn bind_addr(&self) -> &str {
        self.bind_addr.as_deref().unwrap_or("0.0.0.0")
    }

    pub fn http_port(&self) -> u16 {
        self.ports.http.unwrap_or(DEFAULT_HTTP_PORT)
    }

    pub fn rpc_port(&self) -> u16 {
        self.ports.rpc.unwrap_or(DEFAULT_RPC_PORT)
    }

    /// The address the HTTP API listens on (`addresses.http` or `bind_addr`, and `ports.http`).
    pub fn http_addr(&self) -> Result<SocketAddr, ConfigError> {
        let host = self.addresses.http.as_deref().unwrap_or(self.bind_addr());
        socket_addr(host, self.http_port(), "addresses.http")
    }

    /// The address servers listen on for Raft and client RPC.
    pub fn rpc_addr(&self) -> Result<SocketAddr, ConfigError> {
        let host = self.addresses.rpc.as_deref().unwrap_or(self.bind_addr());
        socket_addr(host, self.rpc_port(), "addresses.rpc")
    }

    /// The `tls` block for [`crate::tls::AgentTls::load`]; `None` when TLS is off. Nomad's
    /// defaults: every switch off.
    pub fn tls_settings(&self) -> Option<crate::tls::TlsSettings> {
        let tls = &self.tls;
        if !tls.enabled() {
            return None;
        }
        Some(crate::tls::TlsSettings {
            http: tls.http.unwrap_or(false),
            rpc: tls.rpc.unwrap_or(false),
            ca_file: tls.ca_file.clone().unwrap_or_default(),
            cert_file: tls.cert_file.clone().unwrap_or_default(),
            key_file: tls.key_file.clone().unwrap_or_default(),
            verify_server_hostname: tls.verify_server_hostname.unwrap_or(false),
            verify_https_client: tls.verify_https_client.unwrap_or(false),
            region: self.region().to_owned(),
        })
    }

    /// Checks what merging cannot: the agent has a role, values are in range, durations parse,
    /// server addresses are `host:port`. Returns every problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if !self.server_enabled() && !self.client_enabled() {
            problems.push("must enable server or client (server { enabled = true } or client { enabled = true })".to_owned());
        }
        if let Some(level) = &self.log_level
            && !matches!(
                level.to_ascii_uppercase().as_str(),
                "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" | "OFF"
            )
        {
            problems.push(format!(
                "log_level {level:?} is not one of TRACE, DEBUG, INFO, WARN, ERROR, OFF"
            ));
        }
        for (key, host) in [
            ("bind_addr", self.bind_addr.as_deref()),
            ("addresses.http", self.addresses.http.as_deref()),
            ("addresses.rpc", self.addresses.rpc.as_deref()),
        ] {
            if let Some(host) = host
                && host.parse::<IpAddr>().is_err()
                && !is_hostname(host)
            {
                problems.push(format!("{key} {host:?} is not an IP address or host name"));
            }
        }
        for (key, port) in [
            ("ports.http", self.ports.http),
            ("ports.rpc", self.ports.rpc),
            ("ports.serf", self.ports.serf),
        ] {
            if port == Some(0) {
                problems.push(format!("{key} must not be 0"));
            }
        }
        if self.ports.http.is_some() && self.ports.http == self.ports.rpc {
            problems.push(format!(
                "ports.http and ports.rpc are both {}",
                self.http_port()
            ));
        }
        if self.server_enabled() && self.server.bootstrap_expect == Some(0) {
            problems.push("server.bootstrap_expect must be at least 1".to_owned());
        }
        if let Err(err) = self.server.default_scheduler_config.to_config() {
            problems.push(format!(
                "server.default_scheduler_config.scheduler_algorithm: {err}"
            ));
        }
        for (key, value) in [
            (
                "server.job_max_task_groups",
                self.server.job_max_task_groups,
            ),
            (
                "server.job_max_tasks_per_group",
                self.server.job_max_tasks_per_group,
            ),
            ("server.job_max_placements", self.server.job_max_placements),
            ("server.job_max_size", self.server.job_max_size),
            (
                "server.raft_snapshot_threshold",
                self.server.raft_snapshot_threshold,
            ),
            (
                "server.max_request_body_size",
                self.server.max_request_body_size,
            ),
        ] {
            if value == Some(0) {
                problems.push(format!("{key} must be at least 1"));
            }
        }
        for (key, value) in [
            ("server.heartbeat_grace", &self.server.heartbeat_grace),
            ("server.min_heartbeat_ttl", &self.server.min_heartbeat_ttl),
            (
                "server.server_join.retry_interval",
                &self.server.server_join.retry_interval,
            ),
            ("server.job_gc_interval", &self.server.job_gc_interval),
            ("server.job_gc_threshold", &self.server.job_gc_threshold),
            ("server.eval_gc_threshold", &self.server.eval_gc_threshold),
            (
                "server.batch_eval_gc_threshold",
                &self.server.batch_eval_gc_threshold,
            ),
            (
                "server.deployment_gc_threshold",
                &self.server.deployment_gc_threshold,
            ),
            ("server.node_gc_threshold", &self.server.node_gc_threshold),
            ("client.max_kill_timeout", &self.client.max_kill_timeout),
            ("client.gc_interval", &self.client.gc_interval),
        ] {
            if let Some(text) = value
                && let Err(err) = parse_go_duration(text)
            {
                problems.push(format!("{key}: {err}"));
            }
        }
        if self.client_enabled() && !self.server_enabled() {
            let servers = self.client.servers.as_deref().unwrap_or_default();
            let joins = self
                .client
                .server_join
                .retry_join
                .as_deref()
                .unwrap_or_default();
            if servers.is_empty() && joins.is_empty() {
                problems.push("client.servers must name at least one server (\"host:port\") when this agent is not a server".to_owned());
            }
            for server in servers {
                if let Err(err) = parse_server_address(server) {
                    problems.push(format!("client.servers: {err}"));
                }
            }
        }
        if let (Some(min), Some(max)) = (self.client.min_dynamic_port, self.client.max_dynamic_port)
            && min > max
        {
            problems.push(format!(
                "client.min_dynamic_port ({min}) is greater than client.max_dynamic_port ({max})"
            ));
        }
        if let Err(err) = self.client.artifact.limits() {
            problems.push(err);
        }
        for dir in self.client.artifact.file_allowlist.iter().flatten() {
            if !dir.is_absolute() {
                problems.push(format!(
                    "client.artifact.file_allowlist entry {} must be absolute",
                    dir.display()
                ));
            }
        }
        for (name, volume) in &self.client.host_volume {
            match &volume.path {
                None => problems.push(format!("client.host_volume {name:?} has no path")),
                Some(path) if !path.is_absolute() => problems.push(format!(
                    "client.host_volume {name:?} path {} must be absolute",
                    path.display()
                )),
                Some(_) => {}
            }
        }
        for (name, plugin) in &self.plugin {
            if let Some(config) = &plugin.config
                && !config.is_object()
            {
                problems.push(format!("plugin {name:?}: config must be a block"));
            }
        }
        if self.tls.enabled() {
            for (key, value) in [
                ("tls.ca_file", &self.tls.ca_file),
                ("tls.cert_file", &self.tls.cert_file),
                ("tls.key_file", &self.tls.key_file),
            ] {
                if value.is_none() {
                    problems.push(format!("{key} is required when TLS is enabled"));
                }
            }
        }
        match problems.len() {
            0 => Ok(()),
            1 => Err(ConfigError::Invalid(problems.remove(0))),
            _ => Err(ConfigError::Invalid(format!(
                "{} problems:\n  * {}",
                problems.len(),
                problems.join("\n  * ")
            ))),
        }
    }
}

/// Parses a `client.servers` entry: `host:port`, or a bare host that takes the default RPC port.
pub fn parse_server_address(text: &str) -> Result<(String, u16), String> {
    if text.is_empty() {
        return Err("server address is empty".to_owned());
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("server address {text:?} has an invalid port"))?;
            (host.trim_start_matches('[').trim_end_matches(']'), port)
        }
        _ => (text, DEFAULT_RPC_PORT),
    };
    if host.parse::<IpAddr>().is_err() && !is_hostname(host) {
        return Err(format!("server address {text:?} has an invalid host"));
    }
    Ok((host.to_owned(), port))
}

fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
        })
}

fn socket_addr(host: &str, port: u16, key: &str) -> Result<SocketAddr, ConfigError> {
    let ip: IpAddr = match host {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        _ => host
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("{key} {host:?} is not an IP address")))?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// Durations in the config, parsed.
pub fn duration_or(value: Option<&str>, default: Duration) -> Duration {
    value
        .and_then(|text| parse_go_duration(text).ok())
        .unwrap_or(default)
}

fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        if metadata.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| ConfigError::Io {
                path: path.clone(),
                source,
            })?;
            let mut dir_files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.is_file()
                        && matches!(
                            path.extension().and_then(|e| e.to_str()),
                            Some("hcl" | "json")
                        )
                })
                .collect();
            dir_files.sort();
            files.extend(dir_files);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn load_file_value(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    let file = path.display().to_string();
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        let value = serde_json::from_str(&text).map_err(|err| ConfigError::Located {
            file: file.clone(),
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        })?;
        check_schema(&value, &text, &file)?;
        Ok(value)
    } else {
        parse_value(&text, &file)
    }
}

fn parse_value(text: &str, file: &str) -> Result<Value, ConfigError> {
    let value: Value = hcl::from_str(text).map_err(|err| match err {
        hcl::Error::Parse(parse) => ConfigError::Located {
            file: file.to_owned(),
            line: parse.location().line(),
            column: parse.location().column(),
            message: parse.message().to_owned(),
        },
        other => ConfigError::File {
            file: file.to_owned(),
            message: other.to_string(),
        },
    })?;
    let value = flatten_repeated_blocks(value);
    // Check the file on its own, so schema errors name it and its line.
    check_schema(&value, text, file)?;
    Ok(value)
}

fn check_schema(value: &Value, text: &str, file: &str) -> Result<(), ConfigError> {
    match serde_json::from_value::<AgentConfig>(value.clone()) {
        Ok(_) => Ok(()),
        Err(err) => {
            let message = err.to_string();
            match offending_key(&message).and_then(|key| locate_key(text, key)) {
                Some((line, column)) => Err(ConfigError::Located {
                    file: file.to_owned(),
                    line,
                    column,
                    message,
                }),
                None => Err(ConfigError::File {
                    file: file.to_owned(),
                    message,
                }),
            }
        }
    }
}

/// The key named by a serde error such as "unknown field `foo`, expected ...".
fn offending_key(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

/// The 1-based line and column of the first place `key` is used as an attribute or block name.
fn locate_key(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(line_idx, line)| {
        let trimmed = line.trim_start();
        let rest = trimmed.strip_prefix(key).or_else(|| {
            trimmed
                .strip_prefix('"')
                .and_then(|t| t.strip_prefix(key))
                .and_then(|t| t.strip_prefix('"'))
        })?;
        let next = rest.trim_start().chars().next();
        matches!(next, Some('=' | '{' | '"' | ':'))
            .then(|| (line_idx + 1, line.len() - trimmed.len() + 1))
    })
}

/// HCL yields a list when a block is written twice (`server {}` twice); merge such lists of
/// objects into one object, later blocks overriding earlier ones, as Nomad does. What a `plugin`
/// block's `config` holds is the plugin's own and goes to it as written: a list of objects there
/// (`devices = [{...}, {...}]`) stays a list.
fn flatten_repeated_blocks(value: Value) -> Value {
    flatten_blocks(value, &[])
}

fn flatten_blocks(value: Value, path: &[&str]) -> Value {
    let plugin_config = matches!(path, ["plugin", _, "config"]);
    match value {
        Value::Object(map) if plugin_config => Value::Object(map),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let mut inner = path.to_vec();
                    inner.push(key.as_str());
                    let value = flatten_blocks(value, &inner);
                    (key, value)
                })
                .collect(),
        ),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let mut merged = Value::Object(serde_json::Map::new());
            for item in items {
                let item = if plugin_config {
                    item
                } else {
                    flatten_blocks(item, path)
                };
                merge_values(&mut merged, item);
            }
            merged
        }
        other => other,
    }
}

/// Merges `overlay` into `base`: objects key by key, anything else replaced.
fn merge_values(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge_values(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key, strip_nulls(value)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests;
