//! Filling `AllocMetric`, the scheduler's explanation of a placement or of its failure.
//!
//! Nomad: `nomad/structs/structs.go` `AllocMetric.FilterNode`, `ExhaustedNode`.

use crate::structs::{AllocMetric, Node, SortedVecMap};

fn bump(map: &mut SortedVecMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// The node failed a feasibility check keyed `reason` (a constraint's text, "missing drivers"...).
pub fn filter_node(metric: &mut AllocMetric, node: &Node, reason: &str) {
    metric.nodes_filtered += 1;
    if !node.node_class.is_empty() {
        bump(&mut metric.class_filtered, &node.node_class);
    }
    bump(&mut metric.constraint_filtered, reason);
}

/// The node lacked room in `dimension` ("cpu", "memory", "disk", "network: port collision"...).
pub fn exhaust_node(metric: &mut AllocMetric, node: &Node, dimension: &str) {
    metric.nodes_exhausted += 1;
    if !node.node_class.is_empty() {
        bump(&mut metric.class_exhausted, &node.node_class);
    }
    bump(&mut metric.dimension_exhausted, dimension);
}
