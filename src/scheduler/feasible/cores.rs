//! Reserved cores (`resources { cores = N }`): which of the node's cores a placement gets.
//!
//! A task asking for cores gets that many whole cores of the node to itself: cores the node
//! offers for reservation (its fingerprinted `ReservableCpuCores` but the operator's reserved
//! ones) that no allocation on the node holds (per the node's usage, which the plan keeps
//! current). Its CPU shares are then the cores' worth of MHz, which must fit beside everything
//! else on the node. The lowest free cores are taken, so a node's reservations stay packed.
//! A node without enough free cores is exhausted in dimension "cores"; one whose CPU cannot take
//! the cores' MHz, in dimension "cpu".
//!
//! Nomad: `scheduler/feasible/rank.go` `BinPackIterator` (the `Cores` branch),
//! `nomad/structs/funcs.go` `AllocsFit` (dimension "cores").

use std::collections::BTreeMap;

use crate::scheduler::feasible::resources::ResourceAsk;
use crate::scheduler::usage::{NodeCapacity, NodeUsage};
use crate::structs::TaskGroup;

/// The exhausted dimension when the node has too few free cores.
pub const CORES: &str = "cores";

/// The tasks of a group that reserve cores, with how many each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreAsk {
    tasks: Vec<(String, u32)>,
}

/// What one placement gets: per task, its cores and their MHz.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreOffer {
    pub tasks: BTreeMap<String, (Vec<u32>, i64)>,
}

impl CoreAsk {
    pub fn of(group: &TaskGroup) -> Self {
        let tasks = group
            .tasks
            .iter()
            .filter_map(|task| {
                let cores = task
                    .resources
                    .as_ref()
                    .map_or(0, |resources| resources.cores);
                u32::try_from(cores)
                    .ok()
                    .filter(|cores| *cores > 0)
                    .map(|cores| (task.name.clone(), cores))
            })
            .collect();
        Self { tasks }
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Picks the cores beside `usage`, or `Err(dimension)`. `ask` is the group's other CPU (its
    /// tasks without cores), which the cores' MHz must fit beside.
    pub fn assign(
        &self,
        capacity: &NodeCapacity,
        usage: &NodeUsage,
        ask: &ResourceAsk,
    ) -> Result<CoreOffer, &'static str> {
        let mut free = capacity
            .reservable_cores
            .iter()
            .copied()
            .filter(|core| !usage.core_in_use(*core));
        let mut offer = CoreOffer::default();
        let mut mhz_total = 0;
        for (task, count) in &self.tasks {
            let cores: Vec<u32> = free.by_ref().take(*count as usize).collect();
            if cores.len() < *count as usize {
                return Err(CORES);
            }
            let mhz = capacity.mhz_per_core * i64::from(*count);
            mhz_total += mhz;
            offer.tasks.insert(task.clone(), (cores, mhz));
        }
        if usage.cpu + ask.cpu + mhz_total > capacity.cpu {
            return Err("cpu");
        }
        Ok(offer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{Resources, Task};

    fn group(asks: &[(&str, i32)]) -> TaskGroup {
        TaskGroup {
            name: "g".to_owned(),
            tasks: asks
                .iter()
                .map(|(name, cores)| Task {
                    name: (*name).to_owned(),
                    resources: Some(Resources {
                        cores: *cores,
                        ..Resources::default()
                    }),
                    ..Task::default()
                })
                .collect(),
            ..TaskGroup::default()
        }
    }

    fn capacity() -> NodeCapacity {
        NodeCapacity {
            cpu: 4000,
            reservable_cores: vec![0, 1, 2, 3],
            mhz_per_core: 1000,
            ..NodeCapacity::default()
        }
    }

    #[test]
    fn tasks_get_the_lowest_free_cores_and_their_mhz() {
        let ask = CoreAsk::of(&group(&[("a", 2), ("b", 0), ("c", 1)]));
        let usage = NodeUsage {
            cores: vec![1],
            cpu: 1000,
            ..NodeUsage::default()
        };
        let offer = ask
            .assign(&capacity(), &usage, &ResourceAsk::default())
            .expect("fits");
        assert_eq!(offer.tasks["a"], (vec![0, 2], 2000));
        assert_eq!(offer.tasks["c"], (vec![3], 1000));
        assert!(!offer.tasks.contains_key("b"));
    }

    #[test]
    fn too_few_free_cores_exhaust_cores_and_too_little_cpu_exhausts_cpu() {
        let ask = CoreAsk::of(&group(&[("a", 3)]));
        let usage = NodeUsage {
            cores: vec![0, 3],
            ..NodeUsage::default()
        };
        assert_eq!(
            ask.assign(&capacity(), &usage, &ResourceAsk::default()),
            Err(CORES)
        );
        // Four free cores, but other tasks already use 2 GHz of the node's 4.
        let usage = NodeUsage {
            cpu: 2000,
            ..NodeUsage::default()
        };
        assert_eq!(
            ask.assign(&capacity(), &usage, &ResourceAsk::default()),
            Err("cpu")
        );
        // A core the operator reserved is not offered.
        let reserved = NodeCapacity {
            reservable_cores: vec![1, 2],
            ..capacity()
        };
        assert_eq!(
            ask.assign(&reserved, &NodeUsage::default(), &ResourceAsk::default()),
            Err(CORES)
        );
    }

    #[test]
    fn a_group_without_cores_asks_nothing() {
        assert!(CoreAsk::of(&group(&[("a", 0)])).is_empty());
    }
}
