//! The host-side types of the driver API: what the client agent builds, persists and reads.
//!
//! They mirror the WIT records of `caravan:driver/types` with Rust-friendly shapes (maps, paths,
//! `Duration`s, JSON values) and serde, so the client can persist a [`TaskHandle`] and recover the
//! task after an agent restart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::driver_host::bindings::wit;
use crate::driver_host::error::DriverError;

/// A port the scheduler reserved for the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub label: String,
    pub value: u16,
    pub to: u16,
    pub host_ip: String,
}

/// Resources the scheduler assigned to the task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_mhz: u32,
    pub memory_mb: u32,
    pub memory_max_mb: u32,
}

/// Everything a driver needs to start a task (Nomad: `drivers.TaskConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskConfig {
    /// Unique id of this task instance, conventionally `<alloc-id>/<task-name>`.
    pub id: String,
    pub name: String,
    pub alloc_id: String,
    pub job_name: String,
    pub group_name: String,
    /// The task's `config { ... }` block.
    pub config: serde_json::Value,
    pub env: BTreeMap<String, String>,
    /// The task directory, absolute: the working directory and the scope of capability `fs`.
    pub task_dir: PathBuf,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    pub resources: Resources,
    pub ports: Vec<PortMapping>,
    pub user: Option<String>,
}

/// What the client persists to find a task again (Nomad: `drivers.TaskHandle`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskHandle {
    /// The driver that started the task.
    pub driver: String,
    /// The task's id (`TaskConfig::id`).
    pub id: String,
    pub task_dir: PathBuf,
    /// The driver's own state, opaque to the host (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub driver_state: Vec<u8>,
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitResult {
    pub exit_code: i32,
    /// The signal that ended the task, 0 if none.
    pub signal: i32,
    pub oom_killed: bool,
    pub err: Option<String>,
}

impl ExitResult {
    /// Exit code 0, no signal, no error.
    pub fn successful(&self) -> bool {
        self.exit_code == 0 && self.signal == 0 && !self.oom_killed && self.err.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Running,
    Exited(ExitResult),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub id: String,
    pub state: TaskState,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    Healthy,
    Undetected,
    Unhealthy,
}

/// What a driver found on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub health: Health,
    pub description: String,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FsIsolation {
    None,
    Chroot,
    Image,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub send_signals: bool,
    pub exec: bool,
    pub fs_isolation: FsIsolation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    pub name: String,
    pub version: String,
    pub capabilities: Capabilities,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Resource usage of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStats {
    pub timestamp_ms: u64,
    pub cpu_user_ms: u64,
    pub cpu_system_ms: u64,
    pub memory_rss_bytes: u64,
    pub pids: Vec<u32>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

fn pairs(map: &BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn path_string(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

impl TaskConfig {
    pub(crate) fn to_wit(&self) -> wit::TaskConfig {
        wit::TaskConfig {
            id: self.id.clone(),
            name: self.name.clone(),
            alloc_id: self.alloc_id.clone(),
            job_name: self.job_name.clone(),
            group_name: self.group_name.clone(),
            config_json: if self.config.is_null() {
                String::from("{}")
            } else {
                self.config.to_string()
            },
            env: pairs(&self.env),
            task_dir: path_string(&self.task_dir),
            stdout_path: path_string(&self.stdout_path),
            stderr_path: path_string(&self.stderr_path),
            resources: wit::Resources {
                cpu_mhz: self.resources.cpu_mhz,
                memory_mb: self.resources.memory_mb,
                memory_max_mb: self.resources.memory_max_mb,
            },
            ports: self
                .ports
                .iter()
                .map(|port| wit::PortMapping {
                    label: port.label.clone(),
                    value: port.value,
                    to: port.to,
                    host_ip: port.host_ip.clone(),
                })
                .collect(),
            user: self.user.clone(),
        }
    }
}

impl TaskHandle {
    pub(crate) fn to_wit(&self) -> wit::TaskHandle {
        wit::TaskHandle {
            id: self.id.clone(),
            task_dir: path_string(&self.task_dir),
            driver_state: self.driver_state.clone(),
        }
    }

    pub(crate) fn from_wit(driver: &str, handle: wit::TaskHandle) -> TaskHandle {
        TaskHandle {
            driver: driver.to_owned(),
            id: handle.id,
            task_dir: PathBuf::from(handle.task_dir),
            driver_state: handle.driver_state,
        }
    }
}

impl From<wit::ExitResult> for ExitResult {
    fn from(exit: wit::ExitResult) -> Self {
        ExitResult {
            exit_code: exit.exit_code,
            signal: exit.signal,
            oom_killed: exit.oom_killed,
            err: exit.err,
        }
    }
}

impl From<wit::TaskStatus> for TaskStatus {
    fn from(status: wit::TaskStatus) -> Self {
        let state = match status.state {
            wit::TaskState::Running => TaskState::Running,
            wit::TaskState::Exited(exit) => TaskState::Exited(exit.into()),
            wit::TaskState::Unknown => TaskState::Unknown,
        };
        TaskStatus {
            id: status.id,
            state,
            attributes: status.attributes.into_iter().collect(),
        }
    }
}

impl From<wit::DriverFingerprint> for Fingerprint {
    fn from(fingerprint: wit::DriverFingerprint) -> Self {
        let health = match fingerprint.health {
            wit::Health::Healthy => Health::Healthy,
            wit::Health::Undetected => Health::Undetected,
            wit::Health::Unhealthy => Health::Unhealthy,
        };
        Fingerprint {
            health,
            description: fingerprint.description,
            attributes: fingerprint.attributes.into_iter().collect(),
        }
    }
}

impl From<wit::DriverInfo> for DriverInfo {
    fn from(info: wit::DriverInfo) -> Self {
        let fs_isolation = match info.capabilities.fs_isolation {
            wit::FsIsolation::None => FsIsolation::None,
            wit::FsIsolation::Chroot => FsIsolation::Chroot,
            wit::FsIsolation::Image => FsIsolation::Image,
        };
        DriverInfo {
            name: info.name,
            version: info.version,
            capabilities: Capabilities {
                send_signals: info.capabilities.send_signals,
                exec: info.capabilities.exec,
                fs_isolation,
            },
        }
    }
}

impl From<wit::ExecResult> for ExecResult {
    fn from(result: wit::ExecResult) -> Self {
        ExecResult {
            exit_code: result.exit_code,
            stdout: result.stdout,
            stderr: result.stderr,
        }
    }
}

impl From<wit::TaskResourceUsage> for TaskStats {
    fn from(stats: wit::TaskResourceUsage) -> Self {
        TaskStats {
            timestamp_ms: stats.timestamp_ms,
            cpu_user_ms: stats.cpu_user_ms,
            cpu_system_ms: stats.cpu_system_ms,
            memory_rss_bytes: stats.memory_rss_bytes,
            pids: stats.pids,
        }
    }
}

impl From<wit::DriverError> for DriverError {
    fn from(error: wit::DriverError) -> Self {
        match error {
            wit::DriverError::InvalidConfig(message) => DriverError::InvalidConfig(message),
            wit::DriverError::TaskNotFound(message) => DriverError::TaskNotFound(message),
            wit::DriverError::Unsupported(message) => DriverError::Unsupported(message),
            wit::DriverError::Failed(message) => DriverError::Failed(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_through_json() {
        let handle = TaskHandle {
            driver: String::from("raw_exec"),
            id: String::from("alloc/web"),
            task_dir: PathBuf::from("/tmp/alloc/web"),
            driver_state: b"{\"pid\":42}".to_vec(),
        };
        let json = serde_json::to_string(&handle).expect("serialise");
        assert!(
            json.contains("\"driver_state\":\"7b22706964223a34327d\""),
            "{json}"
        );
        let back: TaskHandle = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, handle);
    }

    #[test]
    fn a_null_config_is_an_empty_object_for_the_driver() {
        let config = TaskConfig::default();
        assert_eq!(config.to_wit().config_json, "{}");
    }
}
