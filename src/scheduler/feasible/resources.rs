//! CPU, memory and disk: does the group still fit on the node?
//!
//! Nomad: `nomad/structs/funcs.go` `AllocsFit` (dimension keys "cpu", "memory", "disk").

use crate::scheduler::usage::{NodeCapacity, NodeUsage};
use crate::structs::TaskGroup;

/// What one allocation of a group takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceAsk {
    pub cpu: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
}

impl ResourceAsk {
    pub fn of(group: &TaskGroup) -> Self {
        Self {
            cpu: group.total_cpu(),
            memory_mb: group.total_memory_mb(),
            disk_mb: group
                .ephemeral_disk
                .as_ref()
                .map_or(0, |disk| i64::from(disk.size_mb)),
        }
    }
}

/// `Err(dimension)` if the ask does not fit beside `usage`.
pub fn check_fit(
    capacity: &NodeCapacity,
    usage: &NodeUsage,
    ask: &ResourceAsk,
) -> Result<(), &'static str> {
    if usage.cpu + ask.cpu > capacity.cpu {
        return Err("cpu");
    }
    if usage.memory_mb + ask.memory_mb > capacity.memory_mb {
        return Err("memory");
    }
    if usage.disk_mb + ask.disk_mb > capacity.disk_mb {
        return Err("disk");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_exhausted_dimension() {
        let capacity = NodeCapacity {
            cpu: 1000,
            memory_mb: 1024,
            disk_mb: 2048,
            ..NodeCapacity::default()
        };
        let usage = NodeUsage {
            cpu: 500,
            memory_mb: 512,
            disk_mb: 1024,
            ports: Vec::new(),
            devices: Vec::new(),
            cores: Vec::new(),
        };
        let ask = |cpu, memory_mb, disk_mb| ResourceAsk {
            cpu,
            memory_mb,
            disk_mb,
        };
        let cases = [
            (ask(500, 512, 1024), Ok(())),
            (ask(501, 1, 1), Err("cpu")),
            (ask(1, 513, 1), Err("memory")),
            (ask(1, 1, 1025), Err("disk")),
            (ask(600, 600, 2000), Err("cpu")),
        ];
        for (ask, expected) in cases {
            assert_eq!(check_fit(&capacity, &usage, &ask), expected, "{ask:?}");
        }
    }
}
