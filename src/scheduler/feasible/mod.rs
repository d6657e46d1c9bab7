//! Feasibility: can this node run this task group at all?
//!
//! A chain of checkers, one per file, run in Nomad's order. The node-level ones (ready, datacenter,
//! node pool) choose the candidate nodes once per evaluation; [`GroupFeasibility`] runs the
//! group's static checks (drivers, constraints, host volumes, devices) and caches their verdict per
//! computed node class when no check looks at a node's unique attributes; the plan-dependent ones
//! (distinct hosts and property, resources, ports, device instances) run per placement in the
//! stack.
//!
//! Nomad: `scheduler/feasible.go`, `scheduler/stack.go` `GenericStack`.

pub mod constraint;
pub mod cores;
pub mod datacenter;
pub mod device;
pub mod distinct;
pub mod driver;
pub mod host_volume;
pub mod node_pool;
pub mod ports;
pub mod ready;
pub mod resources;
pub mod version;

use std::collections::HashMap;
use std::sync::Arc;

use self::constraint::CompiledConstraint;
use crate::structs::{Job, Node, TaskGroup};

/// The static checks of one task group: what a node must have, whatever the plan holds.
#[derive(Clone, Debug)]
pub struct GroupFeasibility {
    drivers: Vec<String>,
    constraints: Vec<CompiledConstraint>,
    host_volumes: host_volume::HostVolumeAsks,
    devices: device::DeviceAsk,
    class_cacheable: bool,
    class_cache: HashMap<String, Result<(), Arc<str>>>,
    missing_drivers: Arc<str>,
    missing_host_volumes: Arc<str>,
    missing_devices: Arc<str>,
}

impl GroupFeasibility {
    pub fn new(job: &Job, group: &TaskGroup) -> Self {
        let mut drivers: Vec<String> = group.tasks.iter().map(|task| task.driver.clone()).collect();
        drivers.sort();
        drivers.dedup();
        let constraints: Vec<CompiledConstraint> = job
            .constraints
            .iter()
            .chain(group.constraints.iter())
            .chain(group.tasks.iter().flat_map(|task| task.constraints.iter()))
            .filter(|constraint| {
                !matches!(
                    constraint.operand.as_str(),
                    "distinct_hosts" | "distinct_property"
                )
            })
            .map(CompiledConstraint::new)
            .collect();
        let devices = device::DeviceAsk::of(group);
        // Device instances and their health are the node's own, not its class's.
        let class_cacheable = devices.is_empty()
            && constraints
                .iter()
                .all(CompiledConstraint::is_class_cacheable);
        Self {
            drivers,
            constraints,
            host_volumes: host_volume::HostVolumeAsks::of(group),
            devices,
            class_cacheable,
            class_cache: HashMap::new(),
            missing_drivers: driver::MISSING_DRIVERS.into(),
            missing_host_volumes: host_volume::MISSING_HOST_VOLUMES.into(),
            missing_devices: device::MISSING_DEVICES.into(),
        }
    }

    /// True if some check reads a node's unique attributes, so verdicts can't be shared per class.
    pub fn escapes_computed_class(&self) -> bool {
        !self.class_cacheable
    }

    /// The verdicts cached so far: computed class → feasible.
    pub fn class_verdicts(&self) -> impl Iterator<Item = (&str, bool)> {
        self.class_cache
            .iter()
            .map(|(class, verdict)| (class.as_str(), verdict.is_ok()))
    }

    /// `Err(reason)` with the metric key of the first check the node fails.
    pub fn check(&mut self, node: &Node) -> Result<(), Arc<str>> {
        if self.class_cacheable && !node.computed_class.is_empty() {
            if let Some(verdict) = self.class_cache.get(&node.computed_class) {
                return verdict.clone();
            }
            let verdict = self.check_uncached(node);
            self.class_cache
                .insert(node.computed_class.clone(), verdict.clone());
            return verdict;
        }
        self.check_uncached(node)
    }

    /// The checks that depend on which allocation is placed, not only on the node: the group's
    /// `per_alloc` host volumes for the allocation named `alloc_name`.
    pub fn check_allocation(&self, node: &Node, alloc_name: &str) -> Result<(), Arc<str>> {
        if self.host_volumes.node_has_per_alloc(node, alloc_name) {
            Ok(())
        } else {
            Err(self.missing_host_volumes.clone())
        }
    }

    fn check_uncached(&self, node: &Node) -> Result<(), Arc<str>> {
        if !driver::node_has_drivers(node, &self.drivers) {
            return Err(self.missing_drivers.clone());
        }
        if let Some(failed) = self
            .constraints
            .iter()
            .find(|constraint| !constraint.is_satisfied_by(node))
        {
            return Err(failed.key.clone());
        }
        if !self.host_volumes.node_has_shared(node) {
            return Err(self.missing_host_volumes.clone());
        }
        if !self.devices.node_has_devices(node) {
            return Err(self.missing_devices.clone());
        }
        Ok(())
    }
}

/// True if new allocations of `job` may go to `node` at all (ready, datacenter, pool).
pub fn node_is_candidate(node: &Node, job: &Job) -> bool {
    ready::node_is_ready(node)
        && datacenter::node_in_datacenters(node, &job.datacenters)
        && node_pool::node_in_pool(node, &job.node_pool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{Constraint, DriverInfo, Task};

    #[test]
    fn chain_reports_the_first_failed_check() {
        let constraint = |l: &str, op: &str, r: &str| Constraint {
            l_target: l.to_owned(),
            operand: op.to_owned(),
            r_target: r.to_owned(),
        };
        let job = Job {
            constraints: vec![constraint("${attr.kernel.name}", "=", "linux")],
            ..Job::default()
        };
        let group = TaskGroup {
            name: "web".to_owned(),
            constraints: vec![constraint("${meta.rack}", "=", "r1")],
            tasks: vec![Task {
                name: "server".to_owned(),
                driver: "wasm".to_owned(),
                ..Task::default()
            }],
            ..TaskGroup::default()
        };
        let mut feasibility = GroupFeasibility::new(&job, &group);
        let mut node = Node {
            computed_class: "class-a".to_owned(),
            ..Node::default()
        };
        assert_eq!(
            feasibility.check(&node).map_err(|key| key.to_string()),
            Err("missing drivers".to_owned())
        );
        // Same class: the cached verdict stands even though this node object differs.
        node.drivers.insert(
            "wasm".to_owned(),
            DriverInfo {
                detected: true,
                healthy: true,
                ..DriverInfo::default()
            },
        );
        assert!(feasibility.check(&node).is_err());
        node.computed_class.clear();
        assert_eq!(
            feasibility.check(&node).map_err(|key| key.to_string()),
            Err("${attr.kernel.name} = linux".to_owned())
        );
        node.attributes
            .insert("kernel.name".to_owned(), "linux".to_owned());
        assert_eq!(
            feasibility.check(&node).map_err(|key| key.to_string()),
            Err("${meta.rack} = r1".to_owned())
        );
        node.meta.insert("rack".to_owned(), "r1".to_owned());
        assert_eq!(feasibility.check(&node), Ok(()));
    }
}
