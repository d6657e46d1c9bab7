//! `distinct_hosts` and `distinct_property`: constraints over the plan, not the node alone.
//!
//! At job level they count every allocation of the job, at group level only the group's.
//! `distinct_property`'s right-hand side is how many allocations may share a value (default 1).
//!
//! Nomad: `scheduler/feasible.go` `DistinctHostsIterator`, `DistinctPropertyIterator`,
//! `scheduler/propertyset.go`.

use std::collections::HashMap;
use std::sync::Arc;

use super::constraint::{constraint_key, resolve_target};
use crate::scheduler::proposed::ProposedAllocs;
use crate::structs::{Job, Node, NodeId, TaskGroup};

pub const DISTINCT_HOSTS: &str = "distinct_hosts";

#[derive(Clone, Copy, Debug, Default)]
pub struct DistinctHosts {
    job_level: bool,
    group_level: bool,
}

impl DistinctHosts {
    pub fn of(job: &Job, group: &TaskGroup) -> Self {
        let is_distinct = |constraints: &[crate::structs::Constraint]| {
            constraints.iter().any(|constraint| {
                constraint.operand == DISTINCT_HOSTS && constraint.r_target != "false"
            })
        };
        Self {
            job_level: is_distinct(&job.constraints),
            group_level: is_distinct(&group.constraints),
        }
    }

    pub fn allows(&self, proposed: &ProposedAllocs, node_id: &NodeId, task_group: &str) -> bool {
        if self.job_level && proposed.count_on_node(node_id, None) > 0 {
            return false;
        }
        !(self.group_level && proposed.count_on_node(node_id, Some(task_group)) > 0)
    }
}

/// One `distinct_property` constraint with the counts of its property's values.
#[derive(Clone, Debug)]
pub struct DistinctProperty {
    pub key: Arc<str>,
    target: String,
    limit: u32,
    /// `Some(group)` for a group-level constraint, `None` for a job-level one.
    group: Option<String>,
    counts: HashMap<String, u32>,
}

impl DistinctProperty {
    pub fn all_of(job: &Job, group: &TaskGroup) -> Vec<Self> {
        let make = |constraint: &crate::structs::Constraint, scope: Option<String>| Self {
            key: constraint_key(constraint).into(),
            target: constraint.l_target.clone(),
            limit: constraint.r_target.trim().parse().unwrap_or(1).max(1),
            group: scope,
            counts: HashMap::new(),
        };
        job.constraints
            .iter()
            .filter(|constraint| constraint.operand == "distinct_property")
            .map(|constraint| make(constraint, None))
            .chain(
                group
                    .constraints
                    .iter()
                    .filter(|constraint| constraint.operand == "distinct_property")
                    .map(|constraint| make(constraint, Some(group.name.clone()))),
            )
            .collect()
    }

    /// Counts the property's values over the proposed allocations.
    pub fn populate(
        &mut self,
        proposed: &ProposedAllocs,
        node_by_id: &dyn Fn(&NodeId) -> Option<Arc<Node>>,
    ) {
        self.counts.clear();
        for (node_id, count) in proposed.nodes_with(self.group.as_deref()) {
            if let Some(node) = node_by_id(node_id)
                && let Some(value) = resolve_target(&node, &self.target)
            {
                *self.counts.entry(value.to_owned()).or_default() += count;
            }
        }
    }

    pub fn allows(&self, node: &Node) -> bool {
        match resolve_target(node, &self.target) {
            Some(value) => self.counts.get(value).copied().unwrap_or(0) < self.limit,
            None => false,
        }
    }

    pub fn record(&mut self, node: &Node) {
        if let Some(value) = resolve_target(node, &self.target) {
            *self.counts.entry(value.to_owned()).or_default() += 1;
        }
    }

    /// Undoes [`Self::record`] (or an existing allocation), for a stop in the plan.
    pub fn forget(&mut self, node: &Node) {
        if let Some(value) = resolve_target(node, &self.target)
            && let Some(count) = self.counts.get_mut(value)
        {
            *count = count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::Constraint;

    fn node(id: &str, rack: &str) -> Node {
        let mut node = Node {
            id: NodeId::from(id),
            ..Node::default()
        };
        node.meta.insert("rack".to_owned(), rack.to_owned());
        node
    }

    #[test]
    fn distinct_hosts_at_job_and_group_level() {
        let mut proposed = ProposedAllocs::default();
        proposed.add(&NodeId::from("n1"), "web");
        let mut job = Job::default();
        let group = TaskGroup {
            name: "api".to_owned(),
            ..TaskGroup::default()
        };
        let distinct = Constraint {
            operand: DISTINCT_HOSTS.to_owned(),
            ..Constraint::default()
        };
        assert!(DistinctHosts::of(&job, &group).allows(&proposed, &NodeId::from("n1"), "api"));
        job.constraints.push(distinct.clone());
        assert!(!DistinctHosts::of(&job, &group).allows(&proposed, &NodeId::from("n1"), "api"));
        job.constraints.clear();
        let mut group = group;
        group.constraints.push(distinct);
        let hosts = DistinctHosts::of(&job, &group);
        assert!(hosts.allows(&proposed, &NodeId::from("n1"), "api"));
        proposed.add(&NodeId::from("n1"), "api");
        assert!(!hosts.allows(&proposed, &NodeId::from("n1"), "api"));
        assert!(hosts.allows(&proposed, &NodeId::from("n2"), "api"));
    }

    #[test]
    fn distinct_property_counts_values_up_to_the_limit() {
        let nodes = [node("n1", "r1"), node("n2", "r1"), node("n3", "r2")];
        let lookup = |node_id: &NodeId| {
            nodes
                .iter()
                .find(|node| &node.id == node_id)
                .cloned()
                .map(Arc::new)
        };
        let mut group = TaskGroup {
            name: "web".to_owned(),
            ..TaskGroup::default()
        };
        group.constraints.push(Constraint {
            l_target: "${meta.rack}".to_owned(),
            operand: "distinct_property".to_owned(),
            r_target: "2".to_owned(),
        });
        let mut properties = DistinctProperty::all_of(&Job::default(), &group);
        assert_eq!(properties.len(), 1);
        let property = &mut properties[0];
        assert_eq!(&*property.key, "${meta.rack} distinct_property 2");
        let mut proposed = ProposedAllocs::default();
        proposed.add(&NodeId::from("n1"), "web");
        property.populate(&proposed, &lookup);
        assert!(property.allows(&nodes[1]));
        property.record(&nodes[1]);
        assert!(!property.allows(&nodes[0]));
        assert!(property.allows(&nodes[2]));
        property.forget(&nodes[1]);
        assert!(property.allows(&nodes[0]));
        assert!(!property.allows(&Node::default()));
    }
}
