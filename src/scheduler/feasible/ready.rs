//! Only ready, eligible, non-draining nodes take new allocations.
//!
//! Nomad: `scheduler/util.go` `readyNodesInDCsAndPool` (the status, eligibility and drain filter).

use crate::structs::Node;

pub fn node_is_ready(node: &Node) -> bool {
    node.is_schedulable() && !node.drain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{DrainStrategy, NodeStatus, SchedulingEligibility};

    #[test]
    fn ready_eligible_and_not_draining() {
        let ready = Node {
            status: NodeStatus::Ready,
            ..Node::default()
        };
        assert!(node_is_ready(&ready));
        let cases = [
            Node {
                status: NodeStatus::Down,
                ..ready.clone()
            },
            Node {
                status: NodeStatus::Initializing,
                ..ready.clone()
            },
            Node {
                scheduling_eligibility: SchedulingEligibility::Ineligible,
                ..ready.clone()
            },
            Node {
                drain_strategy: Some(DrainStrategy::default()),
                ..ready.clone()
            },
        ];
        for node in cases {
            assert!(!node_is_ready(&node), "{node:?}");
        }
    }
}
