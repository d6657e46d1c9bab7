//! A job runs only on nodes of its node pool; the `all` pool spans every node.
//!
//! Nomad: `scheduler/util.go` `readyNodesInDCsAndPool`, `nomad/structs/node_pool.go`.

use crate::structs::Node;
use crate::structs::{NODE_POOL_ALL, NODE_POOL_DEFAULT};

pub fn node_in_pool(node: &Node, pool: &str) -> bool {
    let node_pool = if node.node_pool.is_empty() {
        NODE_POOL_DEFAULT
    } else {
        &node.node_pool
    };
    let pool = if pool.is_empty() {
        NODE_POOL_DEFAULT
    } else {
        pool
    };
    pool == NODE_POOL_ALL || pool == node_pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools() {
        let node = |pool: &str| Node {
            node_pool: pool.to_owned(),
            ..Node::default()
        };
        assert!(node_in_pool(&node(""), "default"));
        assert!(node_in_pool(&node("gpu"), "gpu"));
        assert!(node_in_pool(&node("gpu"), "all"));
        assert!(!node_in_pool(&node("gpu"), "default"));
        assert!(!node_in_pool(&node(""), "gpu"));
    }
}
