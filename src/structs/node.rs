//! The node: a client machine, what it has and what it can run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validation::ValidationErrors;
use super::{NetworkResource, NodeDeviceResource, NodeId, duration, nullable};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    #[default]
    Initializing,
    Ready,
    Down,
    Disconnected,
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Initializing => "initializing",
            Self::Ready => "ready",
            Self::Down => "down",
            Self::Disconnected => "disconnected",
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulingEligibility {
    #[default]
    Eligible,
    Ineligible,
}

impl fmt::Display for SchedulingEligibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eligible => "eligible",
            Self::Ineligible => "ineligible",
        })
    }
}

/// What the node's fingerprint says of one driver.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverInfo {
    #[serde(deserialize_with = "nullable::default")]
    pub attributes: BTreeMap<String, String>,
    pub detected: bool,
    pub healthy: bool,
    pub health_description: String,
    /// RFC 3339 time of the last health change.
    pub update_time: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeCpuResources {
    /// Total MHz (cores × per-core MHz).
    pub cpu_shares: i64,
    pub total_cpu_cores: u32,
    #[serde(deserialize_with = "nullable::default")]
    pub reservable_cpu_cores: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDiskResources {
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
}

/// What the node offers to allocations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeResources {
    pub cpu: NodeCpuResources,
    pub memory: NodeMemoryResources,
    pub disk: NodeDiskResources,
    #[serde(deserialize_with = "nullable::default")]
    pub networks: Vec<NetworkResource>,
    pub min_dynamic_port: i32,
    pub max_dynamic_port: i32,
    /// The device groups the node's device plugins fingerprinted.
    #[serde(deserialize_with = "nullable::default")]
    pub devices: Vec<NodeDeviceResource>,
}

impl NodeResources {
    /// Nomad's default dynamic port range.
    pub const DEFAULT_MIN_DYNAMIC_PORT: i32 = 20000;
    pub const DEFAULT_MAX_DYNAMIC_PORT: i32 = 32000;
}

/// What the operator keeps back from allocations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeReservedResources {
    pub cpu: NodeCpuResources,
    pub memory: NodeMemoryResources,
    pub disk: NodeDiskResources,
    /// Reserved host ports, as a Nomad port spec ("22,80,8000-8100").
    pub reserved_host_ports: String,
}

/// A `host_volume` the client offers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostVolume {
    pub path: String,
    pub read_only: bool,
}

/// A drain in progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DrainStrategy {
    #[serde(with = "duration::nanos")]
    pub deadline: Duration,
    pub ignore_system_jobs: bool,
    /// Unix nanoseconds when the drain must be done; 0 for no deadline.
    pub force_deadline: i64,
    pub started_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: NodeId,
    /// The node's secret, shown only to itself; never listed by the API.
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub datacenter: String,
    pub name: String,
    #[serde(rename = "HTTPAddr")]
    pub http_addr: String,
    #[serde(rename = "TLSEnabled")]
    pub tls_enabled: bool,
    #[serde(deserialize_with = "nullable::default")]
    pub attributes: BTreeMap<String, String>,
    pub node_resources: NodeResources,
    pub reserved_resources: NodeReservedResources,
    #[serde(deserialize_with = "nullable::default")]
    pub links: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable::default")]
    pub meta: BTreeMap<String, String>,
    pub node_class: String,
    pub node_pool: String,
    #[serde(deserialize_with = "nullable::default")]
    pub drivers: BTreeMap<String, DriverInfo>,
    #[serde(deserialize_with = "nullable::default")]
    pub host_volumes: BTreeMap<String, HostVolume>,
    pub status: NodeStatus,
    pub status_description: String,
    /// Unix seconds of the last status change.
    pub status_updated_at: i64,
    pub scheduling_eligibility: SchedulingEligibility,
    pub drain_strategy: Option<DrainStrategy>,
    pub drain: bool,
    pub computed_class: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Node {
    /// The most CPU a node may offer, in MHz (4096 cores at 4 GHz).
    pub const MAX_CPU_MHZ: i64 = 1 << 24;
    /// The most memory a node may offer, in MB (16 TiB).
    pub const MAX_MEMORY_MB: i64 = 1 << 24;
    /// The most disk a node may offer, in MB (64 PiB).
    pub const MAX_DISK_MB: i64 = 1 << 36;

    /// Checks what a registering client claims about itself: resources within sane bounds (a
    /// node offering 10^12 MHz would swallow every placement) and a safe name.
    pub fn validate_registration(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let bounds = [
            (
                "NodeResources.Cpu.CpuShares",
                self.node_resources.cpu.cpu_shares,
                Self::MAX_CPU_MHZ,
            ),
            (
                "NodeResources.Memory.MemoryMB",
                self.node_resources.memory.memory_mb,
                Self::MAX_MEMORY_MB,
            ),
            (
                "NodeResources.Disk.DiskMB",
                self.node_resources.disk.disk_mb,
                Self::MAX_DISK_MB,
            ),
            (
                "ReservedResources.Cpu.CpuShares",
                self.reserved_resources.cpu.cpu_shares,
                Self::MAX_CPU_MHZ,
            ),
            (
                "ReservedResources.Memory.MemoryMB",
                self.reserved_resources.memory.memory_mb,
                Self::MAX_MEMORY_MB,
            ),
            (
                "ReservedResources.Disk.DiskMB",
                self.reserved_resources.disk.disk_mb,
                Self::MAX_DISK_MB,
            ),
        ];
        for (path, value, max) in bounds {
            if !(0..=max).contains(&value) {
                errors.push(path, format!("{value} is out of range 0-{max}"));
            }
        }
        let ports = (
            self.node_resources.min_dynamic_port,
            self.node_resources.max_dynamic_port,
        );
        if ports != (0, 0) && !(1 <= ports.0 && ports.0 <= ports.1 && ports.1 <= 65535) {
            errors.push(
                "NodeResources.MinDynamicPort",
                format!(
                    "dynamic port range {}-{} is not within 1-65535",
                    ports.0, ports.1
                ),
            );
        }
        self.validate_devices(&mut errors);
        if self.name.len() > super::validation::MAX_NAME_LENGTH
            || self.name.chars().any(char::is_control)
        {
            errors.push(
                "Name",
                "node name must be at most 128 bytes without control characters",
            );
        }
        errors.into_result()
    }

    /// Bounds what a client may claim of its devices, so a hostile one cannot bloat the state.
    fn validate_devices(&self, errors: &mut ValidationErrors) {
        let devices = &self.node_resources.devices;
        if devices.len() > NodeDeviceResource::MAX_GROUPS {
            errors.push(
                "NodeResources.Devices",
                format!(
                    "{} device groups, at most {} allowed",
                    devices.len(),
                    NodeDeviceResource::MAX_GROUPS
                ),
            );
            return;
        }
        for (idx, device) in devices.iter().enumerate() {
            let path = format!("NodeResources.Devices[{idx}]");
            if device.vendor.is_empty() || device.device_type.is_empty() || device.name.is_empty() {
                errors.push(&path, "device group needs a vendor, a type and a name");
            }
            if device.instances.len() > NodeDeviceResource::MAX_INSTANCES {
                errors.push(
                    &format!("{path}.Instances"),
                    format!(
                        "{} instances, at most {} allowed",
                        device.instances.len(),
                        NodeDeviceResource::MAX_INSTANCES
                    ),
                );
            }
            if device.attributes.len() > NodeDeviceResource::MAX_ATTRIBUTES {
                errors.push(
                    &format!("{path}.Attributes"),
                    format!(
                        "{} attributes, at most {} allowed",
                        device.attributes.len(),
                        NodeDeviceResource::MAX_ATTRIBUTES
                    ),
                );
            }
            let mut ids: Vec<&str> = device.instances.iter().map(|i| i.id.as_str()).collect();
            ids.sort_unstable();
            if ids.first().is_some_and(|id| id.is_empty())
                || ids.windows(2).any(|pair| pair[0] == pair[1])
            {
                errors.push(
                    &format!("{path}.Instances"),
                    "every instance needs an ID of its own",
                );
            }
        }
    }

    /// True if the scheduler may place new allocations here.
    pub fn is_schedulable(&self) -> bool {
        self.status == NodeStatus::Ready
            && self.scheduling_eligibility == SchedulingEligibility::Eligible
            && self.drain_strategy.is_none()
    }

    /// True if the node has the driver and it is healthy.
    pub fn has_healthy_driver(&self, driver: &str) -> bool {
        self.drivers
            .get(driver)
            .is_some_and(|info| info.detected && info.healthy)
    }
}
