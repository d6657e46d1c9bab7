//! What a task asks of its node: CPU, memory, disk, network, devices.

use serde::{Deserialize, Serialize};

use super::validation::ValidationErrors;
use super::{NetworkResource, NumaResource, RequestedDevice, nullable};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    /// CPU in MHz.
    #[serde(rename = "CPU")]
    pub cpu: i32,
    /// Dedicated cores; exclusive of `cpu`.
    pub cores: i32,
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i32,
    /// Oversubscription ceiling in MB; 0 means none.
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: i32,
    #[serde(rename = "DiskMB")]
    pub disk_mb: i32,
    #[serde(deserialize_with = "nullable::default")]
    pub networks: Vec<NetworkResource>,
    #[serde(deserialize_with = "nullable::default")]
    pub devices: Vec<RequestedDevice>,
    #[serde(rename = "NUMA")]
    pub numa: Option<NumaResource>,
    /// The size of the task's in-memory secrets dir, in MB; `None` is the client's default.
    #[serde(rename = "SecretsMB")]
    pub secrets_mb: Option<i32>,
}

impl Resources {
    /// Nomad's `memory_max = -1` (`MemoryNoLimit`): no memory limit at all.
    pub const MEMORY_NO_LIMIT: i32 = -1;
    /// Nomad's default CPU ask in MHz.
    pub const DEFAULT_CPU: i32 = 100;
    /// Nomad's default memory ask in MB.
    pub const DEFAULT_MEMORY_MB: i32 = 300;
    /// The smallest memory ask Nomad accepts.
    pub const MIN_MEMORY_MB: i32 = 10;

    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        if self.cpu < 0 {
            errors.push(
                &format!("{path}.CPU"),
                format!("cpu can't be negative, got {}", self.cpu),
            );
        }
        if self.cpu > 0 && self.cores > 0 {
            errors.push(path, "cpu and cores can't both be set");
        }
        if self.disk_mb < 0 {
            errors.push(
                &format!("{path}.DiskMB"),
                format!("disk can't be negative, got {}", self.disk_mb),
            );
        }
        if let Some(secrets_mb) = self.secrets_mb
            && secrets_mb < 0
        {
            errors.push(
                &format!("{path}.SecretsMB"),
                format!("SecretsMB value ({secrets_mb}) cannot be negative"),
            );
        }
        if self.cores < 0 {
            errors.push(&format!("{path}.Cores"), "cores can't be negative");
        }
        if self.memory_mb != 0 && self.memory_mb < Self::MIN_MEMORY_MB {
            errors.push(
                &format!("{path}.MemoryMB"),
                format!(
                    "minimum memory is {} MB, got {}",
                    Self::MIN_MEMORY_MB,
                    self.memory_mb
                ),
            );
        }
        for (idx, device) in self.devices.iter().enumerate() {
            device.validate(&format!("{path}.Devices[{idx}]"), errors);
        }
        if self.memory_max_mb == Self::MEMORY_NO_LIMIT {
            // Nomad accepts it (`MemoryNoLimit`); caravan's drivers always set a memory limit.
            errors.push(
                &format!("{path}.MemoryMaxMB"),
                "memory_max = -1 (no memory limit) is not supported by caravan: its tasks always run with a memory limit; set memory_max to a size in MB",
            );
        } else if self.memory_max_mb != 0 && self.memory_max_mb < self.memory_mb {
            errors.push(
                &format!("{path}.MemoryMaxMB"),
                format!(
                    "memory_max ({}) must be at least memory ({})",
                    self.memory_max_mb, self.memory_mb
                ),
            );
        }
    }
}
