//! The job's allocations as the plan would leave them, counted per node and task group.
//!
//! Existing non-terminal allocations, minus those the plan stops, plus those it places. Distinct
//! hosts, distinct property, job anti-affinity and spread all read these counts; keeping them
//! incrementally makes each of those checks O(1) per node instead of a scan of the job's allocations.
//!
//! Nomad: `scheduler/context.go` `ProposedAllocs`, `scheduler/propertyset.go`.

use super::fast_hash::FastMap;
use crate::structs::{Allocation, NodeId};

#[derive(Clone, Debug, Default)]
pub struct ProposedAllocs {
    by_node: FastMap<NodeId, FastMap<String, u32>>,
}

impl ProposedAllocs {
    /// Counts the non-terminal allocations among `allocs` (all of one job).
    pub fn from_allocs<'a>(allocs: impl IntoIterator<Item = &'a Allocation>) -> Self {
        let mut proposed = Self::default();
        for alloc in allocs {
            if !alloc.is_terminal() {
                proposed.add(&alloc.node_id, &alloc.task_group);
            }
        }
        proposed
    }

    pub fn add(&mut self, node_id: &NodeId, task_group: &str) {
        let groups = self.by_node.entry(node_id.clone()).or_default();
        match groups.get_mut(task_group) {
            Some(count) => *count += 1,
            None => {
                groups.insert(task_group.to_owned(), 1);
            }
        }
    }

    pub fn remove(&mut self, node_id: &NodeId, task_group: &str) {
        if let Some(groups) = self.by_node.get_mut(node_id)
            && let Some(count) = groups.get_mut(task_group)
        {
            *count = count.saturating_sub(1);
        }
    }

    /// Allocations on the node of `task_group`, or of the whole job when `None`.
    pub fn count_on_node(&self, node_id: &NodeId, task_group: Option<&str>) -> u32 {
        let Some(groups) = self.by_node.get(node_id) else {
            return 0;
        };
        match task_group {
            Some(task_group) => groups.get(task_group).copied().unwrap_or(0),
            None => groups.values().sum(),
        }
    }

    /// Every (node, allocations there) of `task_group` (or of the job when `None`), non-zero only.
    pub fn nodes_with(&self, task_group: Option<&str>) -> impl Iterator<Item = (&NodeId, u32)> {
        self.by_node.iter().filter_map(move |(node_id, groups)| {
            let count = match task_group {
                Some(task_group) => groups.get(task_group).copied().unwrap_or(0),
                None => groups.values().sum(),
            };
            (count > 0).then_some((node_id, count))
        })
    }
}
