//! The client agent's routes' messages, `/v1/client/...`: the allocation filesystem, log
//! frames, restart and signal, service check results, resource usage, host stats and `alloc exec` frames (Nomad:
//! `api/fs.go`, `api/allocations.go`, `api/nodes.go` `HostStats`, `api/allocations_exec.go`).
//!
//! Byte payloads (`Data`) are base64 on the wire, as Go encodes a `[]byte`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::structs::CheckStatus;

/// One entry of `GET /v1/client/fs/ls/:alloc`, or the answer of `fs/stat` (Nomad:
/// `api.AllocFileInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocFileInfo {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    /// As `ls -l` shows it: `drwxr-xr-x`, `-rw-r--r--`, `L` for a link.
    pub file_mode: String,
    /// RFC 3339 with nanoseconds.
    pub mod_time: String,
    pub content_type: String,
}

/// One frame of `GET /v1/client/fs/logs/:alloc` without `plain` (Nomad: `api.StreamFrame`),
/// one JSON object per line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StreamFrame {
    /// The offset in `File` just past `Data`.
    pub offset: u64,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
    pub file: String,
    pub file_event: String,
}

/// `PUT /v1/client/allocation/:id/restart` (Nomad: `api.AllocRestartRequest`'s body).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocRestartRequest {
    /// Empty restarts the running tasks (every task with `AllTasks`).
    pub task_name: String,
    pub all_tasks: bool,
}

/// `PUT /v1/client/allocation/:id/signal` (Nomad: `api.AllocSignalRequest`'s body).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocSignalRequest {
    /// Empty signals every task.
    pub task: String,
    /// Empty is `SIGKILL`.
    pub signal: String,
}

/// The empty answer of restart and signal: `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyResponse {}

/// One check's latest result, as `GET /v1/client/allocation/:id/checks` answers it by check ID
/// (Nomad: `structs.CheckQueryResult`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CheckQueryResult {
    #[serde(rename = "ID")]
    pub id: String,
    /// "healthiness" (counts for deployments) or "readiness" (`on_update = "ignore"`).
    pub mode: String,
    pub status: CheckStatus,
    /// The HTTP status of an `http` check, 0 otherwise.
    pub status_code: u16,
    pub output: String,
    /// Unix seconds of the result.
    pub timestamp: i64,
    pub group: String,
    pub task: String,
    pub service: String,
    pub check: String,
}

/// The allocation's check results by check ID.
pub type CheckResults = BTreeMap<String, CheckQueryResult>;

/// Nomad: `api.MemoryStats`, the fields caravan measures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MemoryStats {
    #[serde(rename = "RSS")]
    pub rss: u64,
    pub measured: Vec<String>,
}

/// Nomad: `api.CpuStats`, the fields caravan measures (nanoseconds of CPU time).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CpuStats {
    pub user_mode: f64,
    pub system_mode: f64,
    pub total_ticks: f64,
    pub measured: Vec<String>,
}

/// Nomad: `api.ResourceUsage`; a process of a task (`Pids`) answers `{}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResourceUsage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_stats: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_stats: Option<CpuStats>,
    /// The stats of the devices the task was given (Nomad: `DeviceStats`).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::structs::nullable::default"
    )]
    pub device_stats: Vec<crate::structs::DeviceGroupStats>,
}

/// One task's usage (Nomad: `api.TaskResourceUsage`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskResourceUsage {
    pub resource_usage: ResourceUsage,
    /// Unix nanoseconds.
    pub timestamp: i64,
    pub pids: BTreeMap<String, ResourceUsage>,
}

/// `GET /v1/client/allocation/:id/stats` (Nomad: `api.AllocResourceUsage`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocResourceUsage {
    pub resource_usage: ResourceUsage,
    pub tasks: BTreeMap<String, TaskResourceUsage>,
    /// Unix nanoseconds.
    pub timestamp: i64,
}

/// `GET /v1/client/stats` (Nomad: `api.HostStats`, the fields caravan measures).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostStats {
    pub memory: HostMemoryStats,
    /// Seconds since the host booted.
    pub uptime: u64,
    /// Unix nanoseconds.
    pub timestamp: i64,
    pub alloc_dir_stats: HostDiskStats,
    /// The node's device instances' stats, by group, from their plugins now.
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub device_stats: Vec<crate::structs::DeviceGroupStats>,
}

/// Nomad: `api.HostMemoryStats`, bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostMemoryStats {
    pub total: u64,
    pub available: u64,
    pub used: u64,
    pub free: u64,
}

/// Nomad: `api.HostDiskStats`, bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostDiskStats {
    pub device: String,
    pub mountpoint: String,
    pub size: u64,
    pub used: u64,
    pub available: u64,
    pub used_percent: f64,
}

/// One frame the servers send on `alloc exec`'s WebSocket (Nomad: `api.ExecStreamingOutput`):
/// output, then `exited` with the result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecStreamingOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<ExecStreamingIoOperation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<ExecStreamingIoOperation>,
    #[serde(skip_serializing_if = "is_false")]
    pub exited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ExecStreamingExitResult>,
}

impl ExecStreamingOutput {
    pub fn stdout(data: Vec<u8>) -> Self {
        Self {
            stdout: Some(ExecStreamingIoOperation { data, close: false }),
            ..Self::default()
        }
    }

    pub fn stderr(data: Vec<u8>) -> Self {
        Self {
            stderr: Some(ExecStreamingIoOperation { data, close: false }),
            ..Self::default()
        }
    }

    pub fn exited(exit_code: i32) -> Self {
        Self {
            exited: true,
            result: Some(ExecStreamingExitResult { exit_code }),
            ..Self::default()
        }
    }
}

/// Nomad: `api.ExecStreamingIOOperation`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecStreamingIoOperation {
    #[serde(with = "base64_bytes", skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<u8>,
    #[serde(skip_serializing_if = "is_false")]
    pub close: bool,
}

/// Nomad: `api.ExecStreamingExitResult`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecStreamingExitResult {
    pub exit_code: i32,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// `[]byte` as Go's JSON encodes it: standard base64, padded.
mod base64_bytes {
    use base64::Engine as _;
    use base64::prelude::BASE64_STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64_STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64_STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn bytes_are_standard_padded_base64() {
            let encode = |bytes: &[u8]| {
                let mut out = Vec::new();
                super::serialize(bytes, &mut serde_json::Serializer::new(&mut out))
                    .expect("encodes");
                String::from_utf8(out).expect("utf-8")
            };
            assert_eq!(encode(b""), "\"\"");
            assert_eq!(encode(b"f"), "\"Zg==\"");
            assert_eq!(encode(b"fo"), "\"Zm8=\"");
            assert_eq!(encode(b"hello\n"), "\"aGVsbG8K\"");
        }
    }
}
