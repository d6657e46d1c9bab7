//! The host-side types of the driver API: what the client agent builds, persists and reads.
//!
//! They mirror the WIT records of `caravan:driver/types` with Rust-friendly shapes (maps, paths,
//! `Duration`s, JSON values) and serde, so the client can persist a [`TaskHandle`] and recover the
//! task after an agent restart.
//!
//! [`TaskScope`] is the host's own record of the task a call concerns: the client builds it from
//! its allocation record and allocation directory and passes it to every task call; nothing in it
//! ever comes from a driver. [`TaskHandle`] is what the driver handed back (its opaque state, and
//! what the host waits on, checked to be the task's own), [`HostRecord`] what the host itself
//! recorded (the task's processes with their start times); the client persists both, apart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::driver_host::bindings::wit;
use crate::driver_host::device_plugin::TaskDevices;
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

/// The host's record of the task a call concerns, built by the client from its own allocation
/// record and allocation directory (never from a persisted handle or anything a driver returned).
/// Every capability a task call uses is scoped by it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskScope {
    /// `<alloc-id>/<task-name>`: the key of the host tables of the task's things.
    pub task_id: String,
    pub alloc_id: String,
    pub task_name: String,
    /// The task directory, absolute: the working directory and the scope of capability `fs`.
    pub task_dir: PathBuf,
    /// The allocation directory (the task directory's parent).
    pub alloc_dir: PathBuf,
    /// The task's log files: every process and workload of the task writes there.
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// The task's `logs { max_files, max_file_size }`: the host writes a WASI workload's output
    /// into the rotated files itself (`host/task_log.rs`).
    pub log_rotation: crate::allocfs::log_files::RotationConfig,
    pub resources: Resources,
    /// The job's `user` for the task, if set.
    pub user: Option<String>,
    /// What the task's device reservations give it besides env (mounts, device nodes, GPUs),
    /// for the start call; the host applies it where the capability can (`host-docker`).
    pub devices: TaskDevices,
    /// The host volumes the task mounts, for the start call: the host gives them to the
    /// container, isolated process or workload it starts for the task, whatever the driver asks.
    pub volumes: Vec<TaskVolume>,
}

/// A client `host_volume` a task mounts (its `volume_mount`): the path from the agent's config,
/// where the task sees it, and whether read-only (the volume's, the group request's or the
/// mount's `read_only`). Nomad: `drivers.MountConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskVolume {
    pub host_path: PathBuf,
    /// Where the task sees it: in the container, the chroot, or the workload's filesystem.
    pub task_path: String,
    pub read_only: bool,
}

impl TaskScope {
    /// The scope of task `task_name` of allocation `alloc_id`, whose directory is
    /// `<alloc_dir>/<task_name>` and whose live log files are `stdout_path` and `stderr_path`.
    pub fn new(
        alloc_id: &str,
        task_name: &str,
        alloc_dir: &std::path::Path,
        stdout_path: PathBuf,
        stderr_path: PathBuf,
    ) -> TaskScope {
        TaskScope {
            task_id: format!("{alloc_id}/{task_name}"),
            alloc_id: alloc_id.to_owned(),
            task_name: task_name.to_owned(),
            task_dir: alloc_dir.join(task_name),
            alloc_dir: alloc_dir.to_path_buf(),
            stdout_path,
            stderr_path,
            log_rotation: crate::allocfs::log_files::RotationConfig::default(),
            resources: Resources::default(),
            user: None,
            devices: TaskDevices::default(),
            volumes: Vec::new(),
        }
    }

    /// The task's memory limit in bytes (`memory_max` when set, else `memory`); `None` when the
    /// scheduler assigned none.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        let mb = match self.resources.memory_max_mb {
            0 => self.resources.memory_mb,
            max => max,
        };
        (mb > 0).then(|| u64::from(mb) << 20)
    }
}

/// What a driver needs to start a task besides its [`TaskScope`] (Nomad: `drivers.TaskConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskConfig {
    pub job_name: String,
    pub group_name: String,
    /// The task's `config { ... }` block.
    pub config: serde_json::Value,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<PortMapping>,
}

/// What the host waits on while a task runs: one of the task's own things, checked when
/// `start-task` returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitOn {
    Process(u32),
    Workload(u64),
    Container(String),
    /// Nothing to wait on: the host polls `inspect-task`.
    Poll,
}

/// What the client persists of a driver's answer to find a task again (Nomad:
/// `drivers.TaskHandle`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskHandle {
    /// The driver that started the task.
    pub driver: String,
    /// The task's id (the [`TaskScope::task_id`] of the start call; the driver's value is not used).
    pub id: String,
    /// The driver's own state, opaque to the host (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub driver_state: Vec<u8>,
    /// What the host waits on.
    pub wait_on: WaitOn,
}

/// A process the host started for a task, as the host recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub pid: u32,
    /// Field 22 of /proc/PID/stat (clock ticks after boot): a reused pid has another.
    pub start_time: u64,
}

/// What the host recorded of a task's things, persisted by the client beside the handle so that
/// after an agent restart the host re-registers them from its own record, not from driver state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub processes: Vec<ProcessRecord>,
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
    pub(crate) fn to_wit(&self, scope: &TaskScope) -> wit::TaskConfig {
        wit::TaskConfig {
            id: scope.task_id.clone(),
            name: scope.task_name.clone(),
            alloc_id: scope.alloc_id.clone(),
            job_name: self.job_name.clone(),
            group_name: self.group_name.clone(),
            config_json: if self.config.is_null() {
                String::from("{}")
            } else {
                self.config.to_string()
            },
            env: pairs(&self.env),
            task_dir: path_string(&scope.task_dir),
            stdout_path: path_string(&scope.stdout_path),
            stderr_path: path_string(&scope.stderr_path),
            resources: wit::Resources {
                cpu_mhz: scope.resources.cpu_mhz,
                memory_mb: scope.resources.memory_mb,
                memory_max_mb: scope.resources.memory_max_mb,
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
            user: scope.user.clone(),
        }
    }
}

impl TaskHandle {
    pub(crate) fn to_wit(&self) -> wit::TaskHandle {
        wit::TaskHandle {
            id: self.id.clone(),
            driver_state: self.driver_state.clone(),
        }
    }

    /// The handle of a started task: the id is the scope's, whatever the driver said.
    pub(crate) fn from_wit(
        driver: &str,
        scope: &TaskScope,
        started: wit::StartedTask,
    ) -> TaskHandle {
        TaskHandle {
            driver: driver.to_owned(),
            id: scope.task_id.clone(),
            driver_state: started.handle.driver_state,
            wait_on: match started.wait_on {
                wit::Waitable::Process(pid) => WaitOn::Process(pid),
                wit::Waitable::Workload(id) => WaitOn::Workload(id),
                wit::Waitable::Container(id) => WaitOn::Container(id),
                wit::Waitable::Poll => WaitOn::Poll,
            },
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
            driver_state: b"{\"pid\":42}".to_vec(),
            wait_on: WaitOn::Process(42),
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
    fn scopes_name_the_task_and_its_memory() {
        let mut scope = TaskScope::new(
            "a1",
            "web",
            std::path::Path::new("/data/alloc/a1"),
            PathBuf::from("/data/alloc/a1/alloc/logs/web.stdout.0"),
            PathBuf::from("/data/alloc/a1/alloc/logs/web.stderr.0"),
        );
        assert_eq!(scope.task_id, "a1/web");
        assert_eq!(scope.task_dir, PathBuf::from("/data/alloc/a1/web"));
        assert_eq!(scope.memory_limit_bytes(), None);
        scope.resources.memory_mb = 64;
        assert_eq!(scope.memory_limit_bytes(), Some(64 << 20));
        scope.resources.memory_max_mb = 128;
        assert_eq!(scope.memory_limit_bytes(), Some(128 << 20));
    }

    #[test]
    fn a_null_config_is_an_empty_object_for_the_driver() {
        let config = TaskConfig::default();
        assert_eq!(config.to_wit(&TaskScope::default()).config_json, "{}");
    }
}
