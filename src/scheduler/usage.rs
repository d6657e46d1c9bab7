//! What a node offers and what its allocations use: the numbers bin packing works with.
//!
//! [`NodeUsage`] is the sum over a node's non-terminal allocations. A scheduler loads it once per
//! node per evaluation ([`super::State::node_usage`], which a state store may keep as an index) and
//! then keeps it current as its plan stops and places allocations, so a placement never rescans a
//! node's allocations.
//!
//! Nomad: `nomad/structs/funcs.go` `AllocsFit`, `nomad/structs/network.go` `NetworkIndex`,
//! `nomad/structs/devices.go` `DeviceAccounter`.

use crate::structs::{Allocation, DeviceIdTuple, Node, NodeResources};

/// Resources in use on a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeUsage {
    /// CPU in MHz.
    pub cpu: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
    /// Host ports in use, sorted; a port used twice appears twice, so removal is exact.
    pub ports: Vec<u16>,
    /// Device instances in use, as (group, instance ID), sorted; one given twice appears twice.
    pub devices: Vec<(DeviceIdTuple, String)>,
    /// Reserved CPU cores in use (`resources { cores }`), sorted; one given twice appears twice.
    pub cores: Vec<u32>,
}

impl NodeUsage {
    /// The usage of the non-terminal allocations among `allocs`.
    pub fn from_allocs<'a>(allocs: impl IntoIterator<Item = &'a Allocation>) -> Self {
        let mut usage = Self::default();
        for alloc in allocs {
            if !alloc.is_terminal() {
                usage.add(alloc);
            }
        }
        usage
    }

    pub fn add(&mut self, alloc: &Allocation) {
        self.cpu += alloc.allocated_resources.total_cpu();
        self.memory_mb += alloc.allocated_resources.total_memory_mb();
        self.disk_mb += alloc.allocated_resources.shared.disk_mb;
        for port in alloc_ports(alloc) {
            let at = self.ports.partition_point(|used| *used < port);
            self.ports.insert(at, port);
        }
        for instance in alloc_devices(alloc) {
            let at = self.devices.partition_point(|used| *used < instance);
            self.devices.insert(at, instance);
        }
        for core in alloc_cores(alloc) {
            let at = self.cores.partition_point(|used| *used < core);
            self.cores.insert(at, core);
        }
    }

    pub fn remove(&mut self, alloc: &Allocation) {
        self.cpu -= alloc.allocated_resources.total_cpu();
        self.memory_mb -= alloc.allocated_resources.total_memory_mb();
        self.disk_mb -= alloc.allocated_resources.shared.disk_mb;
        for port in alloc_ports(alloc) {
            if let Ok(at) = self.ports.binary_search(&port) {
                self.ports.remove(at);
            }
        }
        for instance in alloc_devices(alloc) {
            if let Ok(at) = self.devices.binary_search(&instance) {
                self.devices.remove(at);
            }
        }
        for core in alloc_cores(alloc) {
            if let Ok(at) = self.cores.binary_search(&core) {
                self.cores.remove(at);
            }
        }
    }

    /// True if an allocation holds reserved core `core`.
    pub fn core_in_use(&self, core: u32) -> bool {
        self.cores.binary_search(&core).is_ok()
    }

    pub fn port_in_use(&self, port: u16) -> bool {
        self.ports.binary_search(&port).is_ok()
    }

    /// True if an allocation holds instance `id` of the device group `group`.
    pub fn device_in_use(&self, group: &DeviceIdTuple, id: &str) -> bool {
        self.devices
            .binary_search_by(|(used_group, used_id)| {
                used_group.cmp(group).then_with(|| used_id.as_str().cmp(id))
            })
            .is_ok()
    }
}

/// The device instances an allocation holds, as (group, instance ID), over all its tasks.
pub fn alloc_devices(alloc: &Allocation) -> Vec<(DeviceIdTuple, String)> {
    alloc
        .allocated_resources
        .tasks
        .values()
        .flat_map(|task| task.devices.iter())
        .flat_map(|device| {
            let group = device.id();
            device
                .device_ids
                .iter()
                .map(move |id| (group.clone(), id.clone()))
        })
        .collect()
}

/// The reserved CPU cores an allocation holds, over all its tasks.
pub fn alloc_cores(alloc: &Allocation) -> Vec<u32> {
    alloc
        .allocated_resources
        .tasks
        .values()
        .flat_map(|task| task.cpu.reserved_cores.iter().copied())
        .collect()
}

/// The host ports an allocation holds, each once.
pub fn alloc_ports(alloc: &Allocation) -> Vec<u16> {
    let resources = &alloc.allocated_resources;
    let from_networks = resources
        .shared
        .networks
        .iter()
        .chain(
            resources
                .tasks
                .values()
                .flat_map(|task| task.networks.iter()),
        )
        .flat_map(|network| network.ports())
        .map(|port| port.value);
    let mut ports: Vec<u16> = resources
        .shared
        .ports
        .iter()
        .map(|port| port.value)
        .chain(from_networks)
        .filter_map(|value| u16::try_from(value).ok())
        .filter(|value| *value != 0)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// What a node offers allocations: its resources minus what the operator reserved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeCapacity {
    pub cpu: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub min_dynamic_port: u16,
    pub max_dynamic_port: u16,
    /// Host ports no allocation may take, sorted.
    pub reserved_ports: Vec<u16>,
    /// The cores tasks may reserve (`resources { cores }`): the node's reservable cores but those
    /// the operator reserved, sorted.
    pub reservable_cores: Vec<u32>,
    /// MHz one core is worth (Nomad: `SharesPerCore`): a task reserving `n` cores uses `n` times
    /// this of the node's CPU.
    pub mhz_per_core: i64,
}

impl NodeCapacity {
    pub fn of(node: &Node) -> Self {
        let resources = &node.node_resources;
        let reserved = &node.reserved_resources;
        let (mut min_port, mut max_port) = (resources.min_dynamic_port, resources.max_dynamic_port);
        if min_port <= 0 || max_port <= 0 || min_port > max_port || max_port > 65535 {
            min_port = NodeResources::DEFAULT_MIN_DYNAMIC_PORT;
            max_port = NodeResources::DEFAULT_MAX_DYNAMIC_PORT;
        }
        let mut reserved_ports = parse_port_spec(&reserved.reserved_host_ports);
        reserved_ports.extend(
            resources
                .networks
                .iter()
                .flat_map(|network| network.reserved_ports.iter())
                .filter_map(|port| u16::try_from(port.value).ok()),
        );
        reserved_ports.sort_unstable();
        reserved_ports.dedup();
        let mut reservable_cores: Vec<u32> = resources
            .cpu
            .reservable_cpu_cores
            .iter()
            .copied()
            .filter(|core| !reserved.cpu.reservable_cpu_cores.contains(core))
            .collect();
        reservable_cores.sort_unstable();
        reservable_cores.dedup();
        let mhz_per_core = match i64::from(resources.cpu.total_cpu_cores) {
            0 => 0,
            cores => resources.cpu.cpu_shares / cores,
        };
        Self {
            cpu: resources.cpu.cpu_shares - reserved.cpu.cpu_shares,
            memory_mb: resources.memory.memory_mb - reserved.memory.memory_mb,
            disk_mb: resources.disk.disk_mb - reserved.disk.disk_mb,
            min_dynamic_port: u16::try_from(min_port).unwrap_or(20000),
            max_dynamic_port: u16::try_from(max_port).unwrap_or(32000),
            reserved_ports,
            reservable_cores,
            mhz_per_core,
        }
    }

    pub fn is_reserved(&self, port: u16) -> bool {
        self.reserved_ports.binary_search(&port).is_ok()
    }
}

/// The address allocations' ports on `node` are bound to: its `unique.network.ip-address`
/// attribute, else the first address of its networks.
pub fn host_ip(node: &Node) -> String {
    node.attributes
        .get("unique.network.ip-address")
        .filter(|ip| !ip.is_empty())
        .cloned()
        .or_else(|| {
            node.node_resources
                .networks
                .iter()
                .map(|network| network.ip.clone())
                .find(|ip| !ip.is_empty())
        })
        .unwrap_or_default()
}

/// Parses Nomad's port spec, `"22,80,8000-8100"`; malformed parts are skipped.
pub fn parse_port_spec(spec: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for part in spec
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        match part.split_once('-') {
            Some((low, high)) => {
                if let (Ok(low), Ok(high)) = (low.trim().parse::<u16>(), high.trim().parse::<u16>())
                {
                    ports.extend(low..=high);
                }
            }
            None => {
                if let Ok(port) = part.parse::<u16>() {
                    ports.push(port);
                }
            }
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_spec() {
        assert_eq!(
            parse_port_spec("22, 80,8000-8002,x,"),
            [22, 80, 8000, 8001, 8002]
        );
        assert!(parse_port_spec("").is_empty());
    }
}
